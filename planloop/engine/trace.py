"""The typed record of one run: every transition, step and model call, in order.

Times are seconds since the run started. ``to_json`` / ``from_json`` round-trip
losslessly for JSON values; other Python objects (a tool's custom return type)
are stored as their ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from planloop.engine._trusted import trusted, trusted_maker
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

    The step records of a run that nothing listened to (no store, no
    ``on_event``) are built when the trace is first read; reading, dumping,
    copying and comparing it all see every event.

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

    _listeners: list[Callable[[Any], None]] = []

    # Step events a run recorded through a StepLog with nobody listening are kept as
    # flat rows until the trace is read: then ``events`` is absent from the instance
    # dict, the events before the rows are under "_base" and the rows under
    # "_journal". Reading ``events`` (or dumping, copying, comparing, pickling the
    # trace) builds the records in order and puts ``events`` back. A 10,000-step
    # workflow that nobody asks for its trace never makes its 20,000 step records,
    # and the cyclic garbage collector never visits them during the run.

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            if name == "events":
                return self._settle()
            return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "events":
            self._settle()  # the rows belong to the list being replaced
        super().__setattr__(name, value)

    def _settle(self) -> list[Any]:
        """``events``, with any rows a StepLog left built into records."""
        d = self.__dict__
        events: list[Any] | None = d.get("events")
        if events is not None:
            return events
        events = d.pop("_base")
        rows: list[Any] = d.pop("_journal")
        add = events.append
        i, n = 0, len(rows)
        while i < n:
            tag = rows[i]
            if tag == _EVENT:
                add(rows[i + 1])
                i += 2
            elif tag == _STARTED:
                add(make_started(*rows[i + 1 : i + 8]))
                i += 8
            elif tag == _FINISHED:
                add(make_finished(*rows[i + 1 : i + 5]))
                i += 5
            elif tag == _TRANSITIONED:
                t, source, target, name, of, dump, iteration = rows[i + 1 : i + 8]
                add(make_transitioned(t, source, target, name, dump(of), iteration))
                i += 8
            else:
                add(make_model_called(*rows[i + 1 : i + 6]))
                i += 6
        # Back in its place among the fields: a dump writes them in the dict's order.
        d["events"] = events
        ordered = {name: d.pop(name) for name in type(self).model_fields if name in d}
        d.update(ordered)
        return events

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        self._settle()  # also when the trace is dumped as a field of a RunResult
        return handler(self)

    def __copy__(self) -> Trace:
        self._settle()
        return super().__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Trace:
        self._settle()
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        self._settle()
        return super().__getstate__()

    def __iter__(self) -> Any:
        self._settle()
        return super().__iter__()

    def __repr_args__(self) -> Any:
        self._settle()
        return super().__repr_args__()

    @classmethod
    def _new(cls, run_id: str) -> Trace:
        """``Trace(run_id=run_id)``, not validated (a run starts with one)."""
        if type(run_id) is not str:
            return cls(run_id=run_id)
        return trusted(
            cls,
            {"run_id": run_id, "events": [], "children": {}},
            private={"_listeners": []},
            fields_set={"run_id"},
        )

    def append(self, event: Any) -> None:
        """Record ``event`` (runs only append; nothing is ever rewritten)."""
        d = self.__dict__
        events = d.get("events")
        if events is not None:
            events.append(event)
        else:  # after a StepLog's rows, in order
            d["_journal"].extend((_EVENT, event))
        # Read through the private dict: pydantic's attribute hook costs a microsecond.
        private = self.__pydantic_private__
        if private:
            for listener in private["_listeners"]:
                listener(event)

    def step_log(self) -> StepLog:
        """What the scheduler records step events through (see :class:`StepLog`)."""
        return StepLog(self)

    def subscribe(self, listener: Callable[[Any], None]) -> None:
        """Call ``listener(event)`` for every event appended from now on."""
        self._settle()  # a listener is given records as they are made, never rows
        self._listeners = [*self._listeners, listener]

    def unsubscribe(self, listener: Callable[[Any], None]) -> None:
        """Stop calling ``listener`` (a listener not subscribed is ignored)."""
        self._listeners = [x for x in self._listeners if x is not listener]

    @property
    def started(self) -> RunStarted | None:
        d = self.__dict__
        events = d.get("events")
        if events is None:  # rows wait to be built; the first event is not one of them
            events = d["_base"] or d["_journal"][1:2]
        first = events[0] if events else None
        return first if isinstance(first, RunStarted) else None

    @property
    def ended(self) -> RunEnded | None:
        # Read where it is without building rows: a run reads it to make its result.
        d = self.__dict__
        events = d.get("events")
        last = (events[-1] if events else None) if events is not None else d["_journal"][-1]
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

    def to_json(self, *, indent: int | None = None) -> str:
        """The trace as JSON text (non-JSON values are stored as their ``repr``)."""
        return self.model_dump_json(indent=indent, fallback=repr)

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
        return f"Trace(run_id={self.run_id!r}, events={self._count()}{end})"

    def _count(self) -> int:
        """How many events, without building any row."""
        d = self.__dict__
        events = d.get("events")
        if events is not None:
            return len(events)
        rows, n, i = d["_journal"], len(d["_base"]), 0
        while i < len(rows):
            n += 1
            i += _ROW_LENGTH[rows[i]]
        return n

    def _repr_svg_(self) -> str | None:
        from planloop.engine._display import svg_of

        return svg_of(self)

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, str]:
        from planloop.engine._display import mimebundle_of

        return mimebundle_of(self, repr(self), include, exclude)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return (
            self.run_id == other.run_id
            and self.events == other.events
            and self.children == other.children
        )

    __hash__ = None  # type: ignore[assignment]


_EVENT, _STARTED, _FINISHED, _TRANSITIONED, _CALLED = 0, 1, 2, 3, 4
"""Tags of a StepLog row: a record made already, a step's start, a step's end, a
transition, a model call that returned."""
_ROW_LENGTH = (2, 8, 5, 8, 6)
"""Each row's length, its tag included, by tag."""

_new_started = trusted_maker(StepStarted)
_new_finished = trusted_maker(StepFinished)
_new_transitioned = trusted_maker(Transitioned)
_new_model_called = trusted_maker(ModelCalled)


def make_model_called(
    t: float, model: str, duration: float, messages: int, usage: Usage | None
) -> ModelCalled:
    """A :class:`ModelCalled` of a call that returned, from values the engine made."""
    return _new_model_called(
        {
            "t": t,
            "kind": "model_called",
            "model": model,
            "duration": duration,
            "messages": messages,
            "usage": usage,
            "error": None,
        }
    )


def make_transitioned(
    t: float, source: str, target: str, event: str, payload: dict[str, Any], iteration: int
) -> Transitioned:
    """A :class:`Transitioned` from values the engine made (not validated again)."""
    return _new_transitioned(
        {
            "t": t,
            "kind": "transitioned",
            "source": source,
            "target": target,
            "event": event,
            "payload": payload,
            "iteration": iteration,
        }
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
    """A :class:`StepStarted` from values the scheduler made (not validated again)."""
    return _new_started(
        {
            "t": t,
            "kind": "step_started",
            "act": act,
            "step_id": step_id,
            "tool": tool,
            "args": args,
            "attempt": attempt,
            "depends_on": deps,
        }
    )


def make_finished(t: float, act: int, result: StepResult, deps: tuple[str, ...]) -> StepFinished:
    """A :class:`StepFinished` from values the scheduler made (not validated again)."""
    return _new_finished(
        {"t": t, "kind": "step_finished", "act": act, "result": result, "depends_on": deps}
    )


class StepLog:
    """Records step events, transitions and model calls for the engine, as rows while
    nobody listens.

    Over a trace (:meth:`Trace.step_log`): while the trace has no listeners (a
    store, a progress display, ``on_event``), a step's start or end, a transition
    or a model call is kept as a row of the values it is made from, and the records
    are built when the trace is first read (``Trace._settle``), equal to the ones
    :meth:`Trace.append` would have been given; with a listener, each record is
    appended as it happens. Over a plain ``record(event)`` callable
    (``StepLog(record=...)``), always so.
    """

    __slots__ = ("_dict", "_private", "_record", "trace")

    def __init__(
        self, trace: Trace | None = None, *, record: Callable[[Any], None] | None = None
    ) -> None:
        self.trace = trace
        """The trace this logs into (``None`` over a ``record`` callable)."""
        if trace is not None:
            self._record: Callable[[Any], None] = trace.append
            self._dict: dict[str, Any] | None = trace.__dict__
            self._private: dict[str, Any] | None = trace.__pydantic_private__
        elif record is not None:
            self._record, self._dict, self._private = record, None, None
        else:
            raise TypeError("StepLog needs a trace or a record callable")

    def _rows(self) -> list[Any] | None:
        """Where a row goes, or None when the record must be made now."""
        d, private = self._dict, self._private
        if d is None or (private and private["_listeners"]):
            return None
        rows: list[Any] | None = d.get("_journal")
        if rows is None:
            d["_base"] = d.pop("events")
            rows = d["_journal"] = []
        return rows

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
        rows = self._rows()
        if rows is None:
            self._record(make_started(t, act, step_id, tool, args, attempt, deps))
        else:
            rows.extend((_STARTED, t, act, step_id, tool, args, attempt, deps))

    def finished(self, t: float, act: int, result: StepResult, deps: tuple[str, ...]) -> None:
        """Record a :class:`StepFinished` with these fields."""
        rows = self._rows()
        if rows is None:
            self._record(make_finished(t, act, result, deps))
        else:
            rows.extend((_FINISHED, t, act, result, deps))

    def transitioned(
        self,
        t: float,
        source: str,
        target: str,
        event: str,
        of: Any,
        dump: Callable[[Any], dict[str, Any]],
        iteration: int,
    ) -> None:
        """Record a :class:`Transitioned` whose payload is ``dump(of)``.

        A row keeps ``of`` and makes the payload when the trace is read, so ``of``
        must not change from here on (the engine passes frozen events whose
        values it made itself), and ``dump`` must not raise.
        """
        rows = self._rows()
        if rows is None:
            self._record(make_transitioned(t, source, target, event, dump(of), iteration))
        else:
            rows.extend((_TRANSITIONED, t, source, target, event, of, dump, iteration))

    def model_called(
        self, t: float, model: str, duration: float, messages: int, usage: Usage | None
    ) -> None:
        """Record a :class:`ModelCalled` of a call that returned, with these fields."""
        rows = self._rows()
        if rows is None:
            self._record(make_model_called(t, model, duration, messages, usage))
        else:
            rows.extend((_CALLED, t, model, duration, messages, usage))


def _state(name: str) -> str:
    try:
        return LoopState(name)
    except ValueError:
        return name
