"""What a trace holds, per act: its steps, the plan they came from, and rejected outputs.

A trace is a flat list of events; a picture wants them grouped. ``timeline``
groups them in one pass into acts (the steps each ran, with their results)
and rejected planner outputs, in the order they happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from planloop.engine.plan import Plan
from planloop.engine.steps import StepResult
from planloop.engine.trace import RunPaused, StepFinished, StepStarted, Trace, Transitioned
from planloop.visualize.extract import tool_name

__all__ = ["Act", "Folded", "Rejection", "StepView", "ordered_steps", "paused", "timeline"]

_REJECTED = "Rejected"


@dataclass
class StepView:
    """One step of an act as the trace tells it: started, finished, or only planned."""

    step_id: str
    tool: str = ""
    started: bool = False
    result: StepResult | None = None
    depends_on: tuple[str, ...] = ()
    waiting: bool = False
    """It waits for a decision: an approval step, or a step of a plan waiting to run."""
    args: dict[str, Any] | None = None
    """Its arguments, when they are worth drawing (a step waiting to run)."""


@dataclass
class Act:
    """One pass through ``act``: its steps by id, its plan, its first and last event times.

    ``waiting`` names the steps that wait for a decision; ``before`` is set on the
    plan of a run paused before entering that state (an act not yet begun).
    """

    number: int
    steps: dict[str, StepView] = field(default_factory=dict)
    plan: Plan | None = None
    first_t: float | None = None
    last_t: float | None = None
    waiting: frozenset[str] = frozenset()
    before: str | None = None


@dataclass
class Rejection:
    """A planner output the loop rejected, numbered from 1."""

    number: int
    event: Transitioned


@dataclass
class Folded:
    """The acts and rejections a long run's picture leaves out, counted."""

    entries: Sequence[Act | Rejection]


def timeline(trace: Trace) -> list[Act | Rejection]:
    """Acts and rejected planner outputs, in the order they happened."""
    acts: dict[int, Act] = {}
    entries: list[Act | Rejection] = []
    rejected = 0
    pending_plan: Plan | None = None
    for event in trace.events:
        if isinstance(event, Transitioned):
            if event.event == _REJECTED:
                rejected += 1
                entries.append(Rejection(rejected, event))
            elif "plan" in event.payload:
                pending_plan = _plan_from_payload(event.payload["plan"])
        elif isinstance(event, StepStarted | StepFinished):
            act = acts.get(event.act)
            if act is None:
                act = acts[event.act] = Act(event.act, plan=pending_plan)
                entries.append(act)
                pending_plan = None
            act.first_t = event.t if act.first_t is None else min(act.first_t, event.t)
            act.last_t = event.t if act.last_t is None else max(act.last_t, event.t)
            if isinstance(event, StepStarted):
                step = act.steps.setdefault(event.step_id, StepView(event.step_id))
                step.tool = step.tool or event.tool
                step.started = True
                step.depends_on = step.depends_on or event.depends_on
            else:
                result = event.result
                step = act.steps.setdefault(result.step_id, StepView(result.step_id))
                step.tool = result.tool or step.tool
                step.result = result
                step.depends_on = event.depends_on or step.depends_on
    pause = paused(trace)
    if pause is not None:
        _add_waiting(pause, acts, entries, pending_plan)
    return entries


def _add_waiting(
    pause: RunPaused, acts: dict[int, Act], entries: list[Act | Rejection], plan: Plan | None
) -> None:
    """Mark what the run's last pause waits for: approval steps, or a plan not yet begun."""
    number = max(acts, default=0) + 1
    if pause.reason == "approval":
        questions = pause.pending.get("approval")
        waiting = frozenset(questions) if isinstance(questions, dict) else frozenset()
        if plan is not None:  # no step of the act began before its approval step
            entries.append(Act(number, plan=plan, waiting=waiting))
        elif acts:
            acts[number - 1].waiting = waiting
        return
    payload = pause.pending.get("payload")
    waiting_plan = _plan_from_payload(payload.get("plan")) if isinstance(payload, dict) else None
    if waiting_plan is not None:
        ids = frozenset(step.id for step in waiting_plan.steps)
        entries.append(Act(number, plan=waiting_plan, waiting=ids, before=pause.state))


def _plan_from_payload(data: Any) -> Plan | None:
    # The payload is the plan dumped as JSON; a trace from elsewhere may hold
    # something else, and then the steps are simply shown in the order they ran.
    if not isinstance(data, dict):
        return None
    try:
        return Plan.model_validate(data)
    except ValueError:
        return None


def ordered_steps(act: Act) -> list[StepView]:
    """The act's steps in its plan's order, planned steps that never started included."""
    # Steps end in whatever order they finish; the plan's order is stable.
    if act.plan is None:
        return list(act.steps.values())
    ordered: dict[str, StepView] = {}
    for step in act.plan.steps:
        if step.id in ordered:
            continue
        found = act.steps.get(step.id)
        if found is None:
            found = StepView(step.id, tool_name(step), depends_on=act.plan.dependencies(step))
            if step.id in act.waiting:
                found.waiting = True
                found.args = step.args if act.before is not None else None
        if not found.depends_on:
            found.depends_on = act.plan.dependencies(step)
        ordered[step.id] = found
    for step_id, view in act.steps.items():
        ordered.setdefault(step_id, view)
    return list(ordered.values())


def paused(trace: Trace) -> RunPaused | None:
    """The pause a run is waiting in (its last event), if it is paused."""
    last = trace.events[-1] if trace.events else None
    return last if isinstance(last, RunPaused) else None
