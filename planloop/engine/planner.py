"""What runs in the ``plan`` state: the :class:`Planner` protocol and its context."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict

from planloop.engine._trusted import trusted_maker
from planloop.engine.plan import Plan
from planloop.engine.steps import Action, StepResult
from planloop.engine.tooling import ToolLike
from planloop.engine.trace import ModelCalled, Usage

if TYPE_CHECKING:
    from planloop.engine.trace import Trace

__all__ = ["Answer", "Planner", "RunContext"]

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
    """

    def __init__(
        self,
        *,
        run_id: str,
        input: Any,
        tools: Mapping[str, ToolLike],
        trace: Trace,
        start: float,
    ) -> None:
        self.run_id = run_id
        self.input = input
        self.tools = tools
        self.trace = trace
        self.iteration = 0
        self.intermediate_steps: Sequence[tuple[Action, Any]] = ()
        self.all_steps: list[tuple[Action, Any]] = []
        self.last_results: Sequence[StepResult] = ()
        self.final = False
        self.model_calls = 0
        self.tokens = 0
        self.state: dict[Any, Any] = {}
        self._start = start

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._start

    async def record_model_call(self, model: str, call: Awaitable[R], *, messages: int = 0) -> R:
        """Await a model call and record it in the trace (duration, usage, error).

        The awaited value's ``usage`` attribute, when it is a :class:`Usage`,
        counts towards the run's token budget.
        """
        t0 = self.elapsed()
        self.model_calls += 1
        try:
            value = await call
        except Exception as exc:
            self.trace.append(
                ModelCalled(
                    t=t0,
                    model=model,
                    duration=self.elapsed() - t0,
                    messages=messages,
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
            raise
        usage = getattr(value, "usage", None)
        if isinstance(usage, Usage):
            self.tokens += usage.total_tokens
        else:
            usage = None
        duration = self.elapsed() - t0
        if type(model) is str and type(messages) is int:  # the engine's own values: no validation
            called = _new_model_called(
                {
                    "t": t0,
                    "kind": "model_called",
                    "model": model,
                    "duration": duration,
                    "messages": messages,
                    "usage": usage,
                    "error": None,
                }
            )
        else:
            called = ModelCalled(
                t=t0, model=model, duration=duration, messages=messages, usage=usage
            )
        self.trace.append(called)
        return value


_new_model_called = trusted_maker(ModelCalled)


@runtime_checkable
class Planner(Protocol):
    """Decides the next move in the ``plan`` state.

    ``plan`` returns a :class:`Plan` to execute or an :class:`Answer`, or raises
    :class:`~planloop.errors.OutputParserError` when the model's output cannot be
    read. ``final_answer`` is called once when a run stops at a limit with
    ``early_stopping_method="generate"``.
    """

    async def plan(self, ctx: RunContext) -> Plan | Answer: ...

    async def final_answer(self, ctx: RunContext) -> Answer: ...
