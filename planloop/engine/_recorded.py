"""What a recorded trace says, read once and indexed for a replay, with its consistency checks.

A trace that cannot be replayed (it has no start, has not ended, was cancelled,
records a machine that is not valid or a state path its machine does not
allow, or stopped at its time limit where the stop depends on timing) raises
:class:`~planloop.errors.ReplayError` here, before anything runs.
"""

from __future__ import annotations

import re
from typing import cast

from pydantic import ConfigDict

from planloop.engine.events import (
    Acted,
    Answered,
    Continued,
    Event,
    Planned,
    Rejected,
    ReturnedDirect,
    Stopped,
)
from planloop.engine.spec import MachineSpec
from planloop.engine.states import LoopState, StepStatus, StopReason
from planloop.engine.steps import StepResult
from planloop.engine.trace import (
    ModelCalled,
    RunEnded,
    RunStarted,
    StepFinished,
    StepStarted,
    Trace,
    Transitioned,
)
from planloop.errors import InvalidSpec, ReplayError

__all__ = ["BUILTIN_EXITS", "TOOL_HINT", "Recorded", "custom_event"]

_BUILTIN_EVENTS: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (Planned, Answered, Rejected, Acted, Continued, ReturnedDirect, Stopped)
}

BUILTIN_EXITS: dict[str, frozenset[str]] = {
    LoopState.plan: frozenset({"Planned", "Answered", "Rejected", "Stopped"}),
    LoopState.act: frozenset({"Acted", "Stopped"}),
    LoopState.observe: frozenset({"Continued", "ReturnedDirect", "Stopped"}),
}
"""The events the loop's own handler of each built-in state can produce; a recorded
run that left one of these states by another event had a handler there."""

TOOL_HINT = "; set handle_tool_error on the tool"
"""How the loop ends the error of a failed tool of the runnable (not of a plan's callable)."""

_NOT_A_TOOL = re.compile(r" is not a valid tool, try one of \[(.*)\]\.\Z", re.DOTALL)


class Recorded:
    """A recorded run, indexed: its transitions, model calls and step results.

    Attributes:
        started, ended: the run's first and last events.
        transitions: every ``transitioned`` event, in order.
        model_calls: the model calls made before each transition (``[k]``: before
            transition ``k``; the last list: after the last one).
        results: each step's result by ``(act, step id)``.
        ended_before: for a step, the step of the same act that ended just before it.
        act_results: each act's step results in the order they ended.
        direct: names of the tools whose result ended the run (``return_direct``).
        tool_names: the tools the run had, as far as the trace shows them.
        deadline_struck: a step was cancelled by the run's time limit.
        spec: the run's machine, rebuilt from the trace.
        event_types: each recorded event name's type (plain events for custom ones).
    """

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.started, self.ended = _ends(trace)
        self.transitions: list[Transitioned] = []
        self.model_calls: list[list[ModelCalled]] = [[]]
        self.results: dict[tuple[int, str], StepResult] = {}
        self.ended_before: dict[tuple[int, str], tuple[int, str]] = {}
        self.act_results: dict[int, list[StepResult]] = {}
        self.direct: set[str] = set()
        self.tool_names = self._read_events()
        # A cancelled step waits in the replay until what cancelled it strikes again: a
        # step that failed, or the time limit. The run may then have ended for another
        # reason (the final answer after the deadline failed), so the limit is kept
        # whenever a step was cancelled: without it such a step would wait forever.
        self.deadline_struck = self.started.limits.max_execution_time is not None and any(
            r.status is StepStatus.cancelled for r in self.results.values()
        )
        self._check_cancelled_steps()
        self.event_types: dict[str, type[Event]] = {}
        self.spec = self._spec()
        self._check_path()

    def _check_cancelled_steps(self) -> None:
        """A cancelled step replays by waiting for the time limit: there must be one."""
        if self.deadline_struck:
            return
        cancelled = [k for k, r in self.results.items() if r.status is StepStatus.cancelled]
        if cancelled:
            act, step_id = cancelled[0]
            raise ReplayError(
                f"run {self.trace.run_id!r}: step {step_id!r} of act {act} was cancelled, "
                "but the run had no time limit to cancel it and was not cancelled itself; "
                "the trace is inconsistent and cannot be replayed",
                run_id=self.trace.run_id,
            )

    def _read_events(self) -> list[str]:
        """Index the trace's events; the tool names the run had, those it listed first."""
        names: dict[str, None] = {}
        listed: list[str] | None = None
        acts = 0
        for event in self.trace.events:
            if isinstance(event, Transitioned):
                self.transitions.append(event)
                self.model_calls.append([])
                if event.target == LoopState.act:
                    acts += 1
                if event.event == "ReturnedDirect":
                    self.direct.update(r.tool for r in self.act_results.get(acts, ()))
            elif isinstance(event, ModelCalled):
                self.model_calls[-1].append(event)
            elif isinstance(event, StepStarted):
                names.setdefault(event.tool)
            elif isinstance(event, StepFinished):
                result = self._add_result(event)
                if result.error_type == "ToolNotFound":
                    found = _NOT_A_TOOL.search(str(result.output))
                    if found is not None and listed is None:
                        listed = [n for n in found.group(1).split(", ") if n]
                    names.pop(result.tool, None)
                elif result.started_at is not None:
                    names.setdefault(result.tool)
        return [*(listed or []), *(n for n in names if n not in (listed or ()))]

    def _add_result(self, event: StepFinished) -> StepResult:
        result = event.result
        key = (event.act, result.step_id)
        before = self.act_results.setdefault(event.act, [])
        if before and key not in self.results:
            self.ended_before[key] = (event.act, before[-1].step_id)
        self.results[key] = result
        before.append(result)
        return result

    def _spec(self) -> MachineSpec:
        summary = self.started.machine
        types = self.event_types
        for rule in summary.transitions:
            if rule.event not in types:
                types[rule.event] = _BUILTIN_EVENTS.get(rule.event) or custom_event(rule.event)
        edges: dict[type[Event], dict[str, str]] = {}
        for rule in summary.transitions:
            edges.setdefault(types[rule.event], {})[rule.source] = rule.target
        try:
            return MachineSpec(
                states=summary.states,
                transitions=edges,
                initial=summary.initial,
                terminal=summary.terminal,
            )
        except InvalidSpec as exc:
            raise ReplayError(
                f"run {self.trace.run_id!r} records a machine that is not valid: {exc}",
                run_id=self.trace.run_id,
            ) from None

    def _check_path(self) -> None:
        run_id = self.trace.run_id
        summary = self.started.machine
        rules = {(r.source, r.event, r.target) for r in summary.transitions}
        state = summary.initial
        for i, t in enumerate(self.transitions):
            for name in (t.source, t.target):
                if name not in summary.states:
                    raise ReplayError(
                        f"run {run_id!r}: transition #{i} names state {name!r}, which its "
                        f"machine does not have (states: {', '.join(summary.states)})",
                        run_id=run_id,
                    )
            if t.source != state:
                raise ReplayError(
                    f"run {run_id!r}: transition #{i} leaves {t.source!r}, but the run was in "
                    f"{state!r}; the trace is corrupt",
                    run_id=run_id,
                )
            if (t.source, t.event, t.target) not in rules:
                raise ReplayError(
                    f"run {run_id!r}: transition #{i} {t.source} --{t.event}--> {t.target} is "
                    "not a transition of its machine",
                    run_id=run_id,
                )
            state = t.target
        self._check_time_stop()

    def _check_time_stop(self) -> None:
        if self.ended.stop_reason is not StopReason.max_execution_time:
            return
        last = self.transitions[-1] if self.transitions else None
        where = last.source if last is not None else self.started.machine.initial
        if self.started.limits.max_execution_time is None or where == LoopState.observe:
            raise ReplayError(
                f"run {self.trace.run_id!r} stopped at its time limit in state {where!r}, "
                "which a replay cannot reproduce (it depends on how long the run took there)",
                run_id=self.trace.run_id,
            )

    def acts_within(self, transitions: int) -> int:
        """How many acts began in the first ``transitions`` transitions."""
        return sum(1 for t in self.transitions[:transitions] if t.target == LoopState.act)

    def failed_step_that_stopped(self) -> StepResult | None:
        """The step whose failure stopped the run (``on_tool_error="stop"``), if one did."""
        last = self.transitions[-1] if self.transitions else None
        error = self.ended.error or ""
        if last is None or last.source != LoopState.observe or last.event != "Stopped":
            return None
        acts = self.acts_within(len(self.transitions))
        return next(
            (
                r
                for r in self.act_results.get(acts, ())
                if r.fatal and error.startswith(f"step {r.step_id!r} ({r.tool}) raised ")
            ),
            None,
        )


def _ends(trace: Trace) -> tuple[RunStarted, RunEnded]:
    """The run's first and last events, or the reason it cannot be replayed."""
    run_id = trace.run_id
    started, ended = trace.started, trace.ended
    count = sum(1 for event in trace.events if isinstance(event, RunEnded))
    if count > 1 or (count and ended is None):
        where = f"records {count} ends" if count > 1 else "records its end before its last event"
        raise ReplayError(
            f"run {run_id!r} {where}; a run ends once, with its last event. The trace is "
            "corrupt and cannot be replayed",
            run_id=run_id,
        )
    if started is None:
        raise ReplayError(
            f"trace {run_id!r} does not start with a run_started event; only a recorded "
            "run can be replayed",
            run_id=run_id,
        )
    if ended is None:
        raise ReplayError(
            f"run {run_id!r} has not ended (it is paused, or its process died); resume "
            "it to its end, then replay it",
            run_id=run_id,
        )
    if ended.stop_reason is StopReason.cancelled:
        raise ReplayError(
            f"run {run_id!r} was cancelled; a cancelled run cannot be replayed",
            run_id=run_id,
        )
    return started, ended


def custom_event(name: str) -> type[Event]:
    """A plain event type named ``name`` that carries whatever payload was recorded."""
    config = ConfigDict(frozen=True, extra="allow", arbitrary_types_allowed=True)
    namespace = {"model_config": config, "__module__": "planloop.engine.replay"}
    return cast(type[Event], type(name, (Event,), namespace))
