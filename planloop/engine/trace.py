"""The typed record of one run: every transition, step and model call, in order.

Times are seconds since the run started. ``to_json`` / ``from_json`` round-trip
losslessly for JSON values, with two exceptions that :meth:`Trace.to_json` describes:
secrets are redacted (unless ``redact=False``), and strings UTF-8 cannot hold
are written with their lone surrogates replaced. Other Python objects (a tool's
custom return type) are stored as their ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planloop.engine._json import dump_json
from planloop.engine.redact import default_redactor
from planloop.engine.spec import SpecSummary
from planloop.engine.states import LoopState, RunStatus, StopReason
from planloop.engine.steps import StepResult
from planloop.errors import TraceError

if TYPE_CHECKING:
    from planloop.engine.replay import Replay

__all__ = [
    "Limits",
    "ModelCalled",
    "RunEnded",
    "RunPaused",
    "RunResumed",
    "RunStarted",
    "StepFinished",
    "StepLog",
    "StepStarted",
    "Trace",
    "TraceError",
    "TraceEvent",
    "Transitioned",
    "Usage",
]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    t: float
    """Seconds since the run started."""


class Limits(BaseModel):
    """The limits a run was started with (recorded so invariants can be checked)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_iterations: int | None = 15
    max_execution_time: float | None = None
    max_model_calls: int | None = None
    max_tokens: int | None = None


class Usage(BaseModel):
    """Tokens a model call used."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class RunStarted(_Record):
    kind: Literal["run_started"] = "run_started"
    run_id: str
    name: str = ""
    input: Any = None
    started_at: datetime
    limits: Limits
    machine: SpecSummary


class Transitioned(_Record):
    kind: Literal["transitioned"] = "transitioned"
    source: str
    target: str
    event: str
    payload: dict[str, Any] = Field(default_factory=dict)
    iteration: int = 0


class StepStarted(_Record):
    kind: Literal["step_started"] = "step_started"
    act: int
    step_id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    attempt: int = 1
    depends_on: tuple[str, ...] = ()


class StepFinished(_Record):
    kind: Literal["step_finished"] = "step_finished"
    act: int
    result: StepResult
    depends_on: tuple[str, ...] = ()


class ModelCalled(_Record):
    kind: Literal["model_called"] = "model_called"
    model: str = ""
    duration: float = 0.0
    messages: int = 0
    usage: Usage | None = None
    error: str | None = None


class RunEnded(_Record):
    kind: Literal["run_ended"] = "run_ended"
    status: RunStatus
    stop_reason: StopReason | None = None
    output: Any = None
    iterations: int = 0
    error: str | None = None


class RunPaused(_Record):
    """The run stopped for now and can be resumed: before entering ``state``
    (``interrupt_before``), or at an approval step.

    ``pending`` is what waits for a decision: the event that would have entered
    ``state`` (its name and payload), or the approval step's id and question.
    """

    kind: Literal["run_paused"] = "run_paused"
    state: str
    reason: Literal["interrupt", "approval"] = "interrupt"
    pending: dict[str, Any] = Field(default_factory=dict)


class RunResumed(_Record):
    """The run went on from its last checkpoint, after a pause or a crash."""

    kind: Literal["run_resumed"] = "run_resumed"
    state: str
    after: Literal["pause", "crash"] = "pause"
    decision: dict[str, Any] | None = None


TraceEvent = Annotated[
    RunStarted
    | Transitioned
    | StepStarted
    | StepFinished
    | ModelCalled
    | RunPaused
    | RunResumed
    | RunEnded,
    Field(discriminator="kind"),
]


class Trace(BaseModel):
    """Everything one run did, in order.

    A run records into a :class:`~planloop.engine.recorder.TraceRecorder`, which
    makes this trace when it is read; ``events`` is a plain list of typed records.

    Example:
        >>> from planloop import Agent, FunctionPlanner, Answer
        >>> agent = Agent(None, [], planner=FunctionPlanner(lambda ctx: Answer("hi")))
        >>> trace = agent.run_sync("hello").trace
        >>> [str(s) for s in trace.states]
        ['plan', 'finish']
        >>> Trace.from_json(trace.to_json()) == trace
        True
    """

    model_config = ConfigDict(extra="forbid")

    run_id: str
    events: list[TraceEvent] = Field(default_factory=list)
    children: dict[str, Trace] = Field(default_factory=dict)
    """Traces of sub-agent runs, by the id of the step that ran them."""

    def append(self, event: Any) -> None:
        """Add ``event`` at the end."""
        self.events.append(event)

    @property
    def started(self) -> RunStarted | None:
        first = self.events[0] if self.events else None
        return first if isinstance(first, RunStarted) else None

    @property
    def ended(self) -> RunEnded | None:
        last = self.events[-1] if self.events else None
        return last if isinstance(last, RunEnded) else None

    @property
    def machine(self) -> SpecSummary | None:
        """The spec the run used, as names."""
        started = self.started
        return started.machine if started else None

    @property
    def input(self) -> Any:
        started = self.started
        return started.input if started else None

    @property
    def transitions(self) -> list[Transitioned]:
        return [e for e in self.events if isinstance(e, Transitioned)]

    @property
    def states(self) -> list[str]:
        """The path of states, first to last (built-in states as :class:`LoopState`)."""
        started = self.started
        if started is None:
            return []
        path = [_state(started.machine.initial)]
        path.extend(_state(e.target) for e in self.events if isinstance(e, Transitioned))
        return path

    @property
    def status(self) -> RunStatus | None:
        ended = self.ended
        return ended.status if ended else None

    @property
    def stop_reason(self) -> StopReason | None:
        ended = self.ended
        return ended.stop_reason if ended else None

    @property
    def output(self) -> Any:
        ended = self.ended
        return ended.output if ended else None

    @property
    def iterations(self) -> int:
        """Passes through ``observe``."""
        return sum(1 for e in self.events if isinstance(e, Transitioned) and e.target == "observe")

    @property
    def step_results(self) -> list[StepResult]:
        """Every step result of the run, in the order the steps ended."""
        return [e.result for e in self.events if isinstance(e, StepFinished)]

    @property
    def duration(self) -> float:
        return self.events[-1].t if self.events else 0.0

    def iter_acts(self) -> Iterator[tuple[int, list[StepStarted | StepFinished]]]:
        """Step events grouped by act (one act per plan executed)."""
        groups: dict[int, list[StepStarted | StepFinished]] = {}
        for e in self.events:
            if isinstance(e, StepStarted | StepFinished):
                groups.setdefault(e.act, []).append(e)
        yield from groups.items()

    def replay(self) -> Replay:
        """Run this recorded run again through the loop, calling no model and no tool.

        See :mod:`planloop.engine.replay` for what replays exactly.

        Raises:
            ReplayError: the trace cannot be replayed (it has not ended, is corrupt, ...).
        """
        from planloop.engine._sync import run_sync
        from planloop.engine.replay import replay_trace

        return run_sync(replay_trace(self))

    def to_json(self, *, indent: int | None = None, redact: bool = True) -> str:
        """The trace as JSON text, secrets redacted: what to save, share or draw later.

        * **Secrets.** With ``redact=True`` (the default) the process-wide
          redactor (:func:`~planloop.engine.redact.default_redactor`, the one
          stores and diagrams use) writes ``"[redacted]"`` for the value under
          any key that looks like a secret (``api_key``, ``token``,
          ``password``, ...) and for every literal given to
          :func:`~planloop.register_secret` (an ``OpenAIChat`` registers its API
          key). ``redact=False`` writes every value as the run holds it, for
          tests and for JSON that stays in this process. The trace itself
          (``result.trace``) always keeps the real values.
        * **Values that are not JSON** (a tool's custom return type) are
          written as their ``repr``.
        * **Strings UTF-8 cannot hold** (a lone surrogate, as ``os.listdir``
          gives for a file name that is not UTF-8) are written with each lone
          surrogate replaced by U+FFFD: ``"report-\\udc80.txt"`` becomes
          ``"report-\\ufffd.txt"``, which every JSON reader takes.

        Example:
            >>> trace = Trace(run_id="r", events=[
            ...     StepStarted(t=0, act=1, step_id="s", tool="get", args={"api_key": "sk-1"})])
            >>> Trace.from_json(trace.to_json()).events[0].args
            {'api_key': '[redacted]'}
            >>> Trace.from_json(trace.to_json(redact=False)).events[0].args
            {'api_key': 'sk-1'}

        Raises:
            TraceError: a value has no JSON form (its ``repr`` raises, a list
                contains itself); the message names the event and field.
        """
        text = dump_json(self, indent=indent)
        return default_redactor().redact_json(text, indent=indent) if redact else text

    @classmethod
    def from_json(cls, text: str | bytes) -> Trace:
        """Read a trace written by :meth:`to_json`.

        Raises:
            TraceError: the text is not JSON, or not a valid trace; the message
                says where.
        """
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            lines = []
            for err in exc.errors()[:10]:
                where = ".".join(str(p) for p in err["loc"]) or "(top level)"
                lines.append(f"  - at {where}: {err['msg']}")
            more = exc.error_count() - len(lines)
            if more > 0:
                lines.append(f"  - ... and {more} more")
            detail = "\n".join(lines)
            raise TraceError(f"not a valid planloop trace:\n{detail}") from None

    def __repr__(self) -> str:
        # Short on purpose: asyncio reprs a run's task (and so its result) on the way
        # out of asyncio.run, and a full dump of a long trace takes seconds.
        ended = self.ended
        end = f", status={ended.status.value!r}" if ended else ""
        return f"Trace(run_id={self.run_id!r}, events={len(self.events)}{end})"

    def _repr_svg_(self) -> str | None:
        from planloop.engine._display import svg_of

        return svg_of(self)

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, str]:
        from planloop.engine._display import mimebundle_of

        return mimebundle_of(self, repr(self), include, exclude)


def make_run_ended(
    t: float,
    status: RunStatus,
    reason: StopReason | None,
    output: Any,
    iterations: int,
    error: str | None,
) -> RunEnded:
    """A :class:`RunEnded` with every field given."""
    return RunEnded(
        t=t,
        kind="run_ended",
        status=status,
        stop_reason=reason,
        output=output,
        iterations=iterations,
        error=error,
    )


def make_model_called(
    t: float, model: str, duration: float, messages: int, usage: Usage | None
) -> ModelCalled:
    """A :class:`ModelCalled` of a call that returned."""
    return ModelCalled(
        t=t,
        kind="model_called",
        model=model,
        duration=duration,
        messages=messages,
        usage=usage,
        error=None,
    )


def make_transitioned(
    t: float, source: str, target: str, event: str, payload: dict[str, Any], iteration: int
) -> Transitioned:
    """A :class:`Transitioned` with every field given."""
    return Transitioned(
        t=t,
        kind="transitioned",
        source=source,
        target=target,
        event=event,
        payload=payload,
        iteration=iteration,
    )


def make_started(
    t: float,
    act: int,
    step_id: str,
    tool: str,
    args: dict[str, Any],
    attempt: int,
    deps: tuple[str, ...],
) -> StepStarted:
    """A :class:`StepStarted` with every field given."""
    return StepStarted(
        t=t,
        kind="step_started",
        act=act,
        step_id=step_id,
        tool=tool,
        args=args,
        attempt=attempt,
        depends_on=deps,
    )


def make_finished(t: float, act: int, result: StepResult, deps: tuple[str, ...]) -> StepFinished:
    """A :class:`StepFinished` with every field given."""
    return StepFinished(t=t, kind="step_finished", act=act, result=result, depends_on=deps)


class StepLog:
    """Where the scheduler records each step's start and end.

    This one makes each record at once and passes it to ``record``. A run
    records through its :class:`~planloop.engine.recorder.TraceRecorder`, a
    StepLog that keeps the values as rows while nobody listens.
    """

    __slots__ = ("_record",)

    def __init__(self, *, record: Callable[[Any], None]) -> None:
        self._record = record

    def started(
        self,
        t: float,
        act: int,
        step_id: str,
        tool: str,
        args: dict[str, Any],
        attempt: int,
        deps: tuple[str, ...],
    ) -> None:
        """Record a :class:`StepStarted` with these fields."""
        self._record(make_started(t, act, step_id, tool, args, attempt, deps))

    def finished(self, t: float, act: int, result: StepResult, deps: tuple[str, ...]) -> None:
        """Record a :class:`StepFinished` with these fields."""
        self._record(make_finished(t, act, result, deps))


def _state(name: str) -> str:
    try:
        return LoopState(name)
    except ValueError:
        return name
