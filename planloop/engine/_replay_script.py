"""Where a replay is in its recorded run, and what the run recorded at that point.

A :class:`Script` follows the replayed run's events (which transition comes
next, which step is being called, which steps have ended) and gives back what
the recorded run did there: the next transition's event, its model calls, a
step's recorded result. A :class:`ReplayTool` answers each call with the
recorded result of the step being called (the step the ``step_started`` event
just before the call names), or raises a stand-in for its recorded error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Set
from typing import Any

from planloop.engine._recorded import BUILTIN_EXITS, Recorded
from planloop.engine.events import Acted, Event, Planned
from planloop.engine.loop import StateHandler
from planloop.engine.plan import Plan
from planloop.engine.planner import RunContext, StopRun
from planloop.engine.retry import RetryPolicy
from planloop.engine.states import RunStatus, StepStatus, StopReason
from planloop.engine.steps import StepResult
from planloop.engine.tooling import ToolSpec
from planloop.engine.trace import (
    ModelCalled,
    StepFinished,
    StepStarted,
    Trace,
    Transitioned,
    Usage,
)
from planloop.errors import RunError

__all__ = ["ReplayTool", "Script"]


class _Diverged(RunError):
    """The replayed run asked for something the recorded run did not do."""


class _Attempt(Exception):
    """A try of a step that the recorded run retried."""


class _Replayed(Exception):
    """Base of the stand-ins for recorded errors (named as the recorded type)."""

    recorded: StepResult | None = None


class Script(Recorded):
    """The recorded run, and how far the replay has followed it."""

    def __init__(self, trace: Trace) -> None:
        super().__init__(trace)
        self.seen = 0
        self.models_done = 0
        self.step: tuple[int, str, int] | None = None
        self.finished: dict[tuple[int, str], asyncio.Future[None]] = {}

    def observe(self, event: Any) -> None:
        """Follow one event of the replayed run."""
        kind = type(event)
        if kind is StepStarted:
            self.step = (event.act, event.step_id, event.attempt)
        elif kind is Transitioned:
            self.seen += 1
        elif kind is StepFinished:
            done = self._finished_future((event.act, event.result.step_id))
            if not done.done():
                done.set_result(None)

    def _finished_future(self, key: tuple[int, str]) -> asyncio.Future[None]:
        done = self.finished.get(key)
        if done is None:
            done = self.finished[key] = asyncio.get_running_loop().create_future()
        return done

    async def in_recorded_order(self, key: tuple[int, str]) -> None:
        """Wait until the step that ended just before ``key`` in the recorded act has ended.

        Parallel steps then end in the recorded order, so that what depends on it
        (which failure stops the run, the order of observations) is reproduced.
        """
        before = self.ended_before.get(key)
        if before is not None:
            await self._finished_future(before)

    def next_transition(self, state: str) -> Transitioned:
        """The recorded transition the replay is about to make, out of ``state``."""
        k = self.seen
        if k >= len(self.transitions):
            raise _Diverged(
                f"replay diverged: the replay is in state {state!r} after {k} transitions, "
                f"where the recorded run had ended"
            )
        recorded = self.transitions[k]
        if recorded.source != state:
            raise _Diverged(
                f"replay diverged: transition #{k} leaves {state!r} in the replay but "
                f"{recorded.source!r} in the recorded run"
            )
        return recorded

    async def replay_model_calls(self, ctx: RunContext) -> None:
        """Record the model calls the recorded run made before its next transition."""
        upto = min(self.seen, len(self.model_calls) - 1)
        while self.models_done <= upto:
            for call in self.model_calls[self.models_done]:
                with contextlib.suppress(_Replayed):
                    await ctx.record_model_call(
                        call.model, _model_call(call), messages=call.messages
                    )
            self.models_done += 1

    def event_for(self, recorded: Transitioned) -> Event:
        """The event behind a recorded transition, for a state with its own handler."""
        name, payload = recorded.event, recorded.payload
        if name == "Planned":
            return Planned(plan=self.plan_from(payload))
        if name == "Acted":
            return Acted(results=tuple(self.act_results.get(self.acts_within(self.seen), ())))
        return self.event_types[name].model_validate(payload)

    def plan_from(self, payload: Mapping[str, Any]) -> Plan:
        """The plan of a recorded ``Planned`` transition, its steps tried as often."""
        data = dict(payload["plan"])
        data["steps"] = [_replayed_step(step) for step in data.get("steps", ())]
        return Plan.model_validate(data)

    async def end_here(self, recorded: Transitioned) -> Any:
        """Raise what stopped the recorded run at ``recorded`` (a ``Stopped`` transition)."""
        reason = recorded.payload.get("reason")
        if reason == StopReason.error:
            raise RunError(self.ended.error or "the recorded run stopped with an error")
        if reason == StopReason.max_execution_time:
            await asyncio.Event().wait()  # until the replay's own deadline stops it
        if reason is not None:  # a planner or a handler asked for this stop (StopRun, Stopped)
            raise StopRun(reason, recorded.payload.get("output"))
        raise _Diverged(
            f"replay diverged: the recorded run stopped ({reason}) at transition "
            f"#{self.seen}, where the replay did not"
        )

    def handler(self, state: str) -> StateHandler:
        """A handler for ``state`` that makes the recorded transition out of it."""

        async def handle(ctx: RunContext) -> Event:
            recorded = self.next_transition(state)
            await self.replay_model_calls(ctx)
            last = self.seen == len(self.transitions) - 1
            if recorded.event == "Stopped" and last and self.ended.status is RunStatus.stopped:
                await self.end_here(recorded)
            return self.event_for(recorded)

        return handle

    def builtin_handler_suffices(self, state: str) -> bool:
        """Whether the loop's own handler of ``state`` makes every transition recorded out of it."""
        builtin = BUILTIN_EXITS.get(state)
        exits = {t.event for t in self.transitions if t.source == state}
        return builtin is not None and exits <= builtin


def _replayed_step(step: Any) -> Any:
    step = dict(step)
    retry = step.get("retry")
    if isinstance(retry, dict):
        # The recorded policy's exception types were stored as text; a replayed
        # step only has to be tried as often, without waiting: the stand-in
        # failures of the tries before the recorded last one are retried, the
        # recorded error itself never (the run may have stopped retrying it).
        step["retry"] = RetryPolicy(
            attempts=int(retry.get("attempts", 1)),
            initial_interval=0,
            max_interval=0,
            jitter=0,
            retry_on=(_Attempt,),
        )
    return step


_ERROR_TYPES: dict[str, type[_Replayed]] = {}


def _replayed_error(name: str, text: str) -> _Replayed:
    """An error that reads as the recorded ``"<name>: <message>"`` text."""
    cls = _ERROR_TYPES.get(name)
    if cls is None:
        namespace = {"__module__": "planloop.engine.replay"}
        cls = _ERROR_TYPES[name] = type(name, (_Replayed,), namespace)
    if text.startswith(f"{name}: "):
        text = text[len(name) + 2 :]
    elif text == name:
        text = ""
    return cls(text)


def _recorded_error(recorded: StepResult) -> _Replayed:
    """The stand-in for the error a step's recorded result holds."""
    error = _replayed_error(recorded.error_type or "Exception", recorded.error or "")
    error.recorded = recorded
    return error


class _ModelAnswer:
    __slots__ = ("usage",)

    def __init__(self, usage: Usage | None) -> None:
        self.usage = usage


async def _model_call(call: ModelCalled) -> _ModelAnswer:
    if call.error is not None:
        name, _, _ = call.error.partition(": ")
        raise _replayed_error(name, call.error)
    return _ModelAnswer(call.usage)


class ReplayTool:
    """A tool of a recorded name: each call gives back that step's recorded result."""

    def __init__(self, name: str, script: Script) -> None:
        self._name = name
        self._script = script
        self._spec = ToolSpec(name=name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def return_direct(self) -> bool:
        return self._name in self._script.direct

    @property
    def is_async(self) -> bool:
        # Async, so that the scheduler calls it right after recording the step's
        # start, in the same task: that start says which step is being called.
        return True

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    def _recorded(self) -> tuple[StepResult | None, int]:
        step = self._script.step
        if step is None:
            return None, 1
        act, step_id, attempt = step
        return self._script.results.get((act, step_id)), attempt

    def validate_args(
        self, args: Mapping[str, Any], *, partial: Set[str] = frozenset()
    ) -> dict[str, Any]:
        recorded, _ = self._recorded()
        if recorded is not None and recorded.error_type == "ToolArgumentsError" and not partial:
            from planloop.errors import ToolArgumentsError

            error = ToolArgumentsError(self._name, ())
            error.args = (recorded.error or "",)
            raise error
        return dict(args)

    def call(self, kwargs: dict[str, Any]) -> Any:
        recorded, attempt = self._recorded()
        return _play(self._script, recorded, attempt, self._script.step)

    def handle_error(self, error: BaseException) -> Any | None:
        recorded = error.recorded if isinstance(error, _Replayed) else None
        if recorded is not None and not recorded.fatal:
            return recorded.output
        return None


async def _play(
    script: Script, recorded: StepResult | None, attempt: int, step: tuple[int, str, int] | None
) -> Any:
    if recorded is None or step is None:
        raise _Diverged(f"replay diverged: step {step} did not run in the recorded run")
    if recorded.status is StepStatus.cancelled:
        await asyncio.Event().wait()  # it was running when the time limit struck
    if attempt < recorded.attempts:
        raise _Attempt(f"try {attempt} of {recorded.attempts}")
    await script.in_recorded_order(step[:2])
    if recorded.status is StepStatus.succeeded:
        return recorded.output
    raise _recorded_error(recorded)
