"""What runs in the ``plan`` state: the :class:`Planner` protocol and its context."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

from planloop.engine.plan import Plan
from planloop.engine.states import StepStatus
from planloop.engine.steps import Action, StepResult
from planloop.engine.tooling import ToolLike
from planloop.engine.trace import ModelCalled, Usage
from planloop.errors import StopRun

if TYPE_CHECKING:
    from planloop.engine.recorder import TraceRecorder
    from planloop.engine.trace import Trace

__all__ = ["Answer", "Planner", "RunContext", "StopRun"]

R = TypeVar("R")


class Answer(BaseModel):
    """A planner's final answer.

    Example:
        >>> Answer("42").output
        '42'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    output: Any
    log: str = ""

    def __init__(self, output: Any = None, /, **data: Any) -> None:
        if "output" not in data:
            data["output"] = output
        super().__init__(**data)


class RunContext:
    """What a planner or a state handler sees of the run in progress.

    Attributes:
        input: the run's input.
        intermediate_steps: ``(action, observation)`` pairs so far, after
            ``trim_intermediate_steps`` (read-only: without trimming this is the
            same list as ``all_steps``, which grows as the run goes on).
        all_steps: the untrimmed pairs.
        iteration: passes through ``observe`` so far.
        tools: the tools by name.
        last_results: step results of the latest act.
        final: ``True`` when the run is stopping and the planner is asked for a
            final answer from what it has (``early_stopping_method="generate"``).

    Example:
        >>> from planloop import Agent, FunctionPlanner, Plan, Step
        >>> def words(text: str) -> int:
        ...     return len(text.split())
        >>> def plan(ctx):
        ...     if not ctx.intermediate_steps:
        ...         return Plan(steps=[Step(id="n", tool="words", args={"text": ctx.input})])
        ...     action, observation = ctx.intermediate_steps[-1]
        ...     return Answer(f"{action.tool}: {observation} (after {ctx.iteration} pass)")
        >>> agent = Agent(None, [words], planner=FunctionPlanner(plan), store=False)
        >>> agent.run_sync("to be or not").output
        'words: 4 (after 1 pass)'
    """

    def __init__(
        self,
        *,
        run_id: str,
        input: Any,
        tools: Mapping[str, ToolLike],
        recorder: TraceRecorder,
        start: float,
    ) -> None:
        self.run_id = run_id
        self.input = input
        self.tools = tools
        self._recorder = recorder
        self.iteration = 0
        self._visible: Sequence[tuple[Action, Any]] | None = None
        self._steps: list[tuple[Action, Any]] = []
        # Acts whose (action, observation) pairs nobody has read yet: a workflow
        # never reads them, and a 10,000-step act would make 30,000 objects for them.
        self._unread: list[tuple[Plan, Sequence[StepResult], int]] = []
        self.last_results: Sequence[StepResult] = ()
        self.final = False
        self.model_calls = 0
        self.tokens = 0
        self.state: dict[Any, Any] = {}
        self._start = start

    @property
    def trace(self) -> Trace:
        """The run's trace so far, kept complete as the run goes on once read."""
        return self._recorder.trace()

    @property
    def all_steps(self) -> list[tuple[Action, Any]]:
        """The untrimmed ``(action, observation)`` pairs (the engine appends to it)."""
        if self._unread:
            self._read_acts()
        return self._steps

    @property
    def intermediate_steps(self) -> Sequence[tuple[Action, Any]]:
        """The pairs after ``trim_intermediate_steps`` (``all_steps`` itself when untrimmed)."""
        visible = self._visible
        return self.all_steps if visible is None else visible

    @intermediate_steps.setter
    def intermediate_steps(self, steps: Sequence[tuple[Action, Any]]) -> None:
        self._visible = None if steps is self._steps else steps

    def _add_act(self, plan: Plan, results: Sequence[StepResult]) -> None:
        """Note an act's pairs, to be made when they are first read (the engine's own)."""
        self._unread.append((plan, results, self.iteration))

    def _read_acts(self) -> None:
        succeeded = StepStatus.succeeded
        for plan, results, iteration in self._unread:
            steps = plan.steps
            if len(steps) == 1:
                ordered: Sequence[StepResult] = results
            else:
                by_id = {r.step_id: r for r in results}
                ordered = [by_id[step.id] for step in steps]
            log = plan.log
            self._steps.extend(
                (
                    Action(
                        tool=res.tool,
                        tool_input=res.args if res.started_at is not None else step.args,
                        log=log,
                        step_id=step.id,
                        iteration=iteration,
                    ),
                    res.output if res.status is succeeded else res.observation,
                )
                for step, res in zip(steps, ordered, strict=True)
            )
        self._unread.clear()

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._start

    async def record_model_call(self, model: str, call: Awaitable[R], *, messages: int = 0) -> R:
        """Await a model call and record it in the trace (duration, usage, error).

        The awaited value's ``usage`` attribute, when it is a :class:`Usage`,
        counts towards the run's token budget; so does that of an exception the
        call raised (an :class:`~planloop.errors.OutputParserError` for an answer
        the server sent but the adapter could not read carries one).
        """
        start = self._start
        t0 = time.perf_counter() - start
        self.model_calls += 1
        try:
            value = await call
        except Exception as exc:
            spent = getattr(exc, "usage", None)
            if isinstance(spent, Usage):
                self.tokens += spent.total_tokens
            else:
                spent = None
            self._recorder.append(
                ModelCalled(
                    t=t0,
                    model=model,
                    duration=self.elapsed() - t0,
                    messages=messages,
                    usage=spent,
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
            raise
        duration = time.perf_counter() - start - t0
        usage = getattr(value, "usage", None)
        if isinstance(usage, Usage):
            self.tokens += usage.total_tokens
        else:
            usage = None
        if type(model) is str and type(messages) is int:
            # Valid as they are, so the record may be made later; other values are
            # checked now, where the caller sees what was wrong.
            self._recorder.model_called(t0, model, duration, messages, usage)
        else:
            self._recorder.append(
                ModelCalled(t=t0, model=model, duration=duration, messages=messages, usage=usage)
            )
        return value


@runtime_checkable
class Planner(Protocol):
    """Decides the next move in the ``plan`` state.

    ``plan`` returns a :class:`Plan` to execute or an :class:`Answer`, raises
    :class:`~planloop.errors.OutputParserError` when the model's output cannot be
    read, or raises :class:`StopRun` to stop the run with a reason.
    ``final_answer`` is called once when a run stops at a limit with
    ``early_stopping_method="generate"``.

    Example:
        >>> from planloop import Agent
        >>> class Echo:
        ...     async def plan(self, ctx):
        ...         return Answer(f"you said {ctx.input}")
        ...     async def final_answer(self, ctx):
        ...         return Answer("out of time")
        >>> isinstance(Echo(), Planner)
        True
        >>> Agent(None, planner=Echo(), store=False).run_sync("hi").output
        'you said hi'
    """

    async def plan(self, ctx: RunContext) -> Plan | Answer: ...

    async def final_answer(self, ctx: RunContext) -> Answer: ...
