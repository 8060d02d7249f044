"""Resuming a stored run: rebuilding it from its events, deciding what it paused at,
and finishing an act that was cut short.

A resumed run is a fresh :class:`~planloop.engine._run.Run` given the stored
trace; :func:`restore` reads the trace back into it (steps, observations, the
plan in progress, which of its steps ended) and applies the decision, if any.
The act then goes on through :func:`act_in_rounds`, which also runs plans with
approval steps. Both see the run only through :class:`Resumable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from planloop.engine.durable import CHECKPOINT_VERSION, Approve, Decision, DurablePlanner, Edit
from planloop.engine.events import Acted, Continued, Event, Planned, Rejected
from planloop.engine.plan import Plan, Step, resolve_refs
from planloop.engine.planner import RunContext
from planloop.engine.scheduler import ActOutcome
from planloop.engine.states import LoopState, StepStatus
from planloop.engine.steps import StepResult
from planloop.engine.trace import RunResumed, StepFinished, TraceEvent, Transitioned
from planloop.errors import CannotResume, InvalidPlan, PauseForApproval

if TYPE_CHECKING:
    from planloop.engine.config import LoopConfig

__all__ = ["Resumable", "act_in_rounds", "restore"]


class Resumable(Protocol):
    """What resuming a run and finishing its act need of it.

    :class:`planloop.engine._run.Run` is one.
    """

    @property
    def run_id(self) -> str: ...

    @property
    def cfg(self) -> LoopConfig: ...

    @property
    def ctx(self) -> RunContext: ...

    @property
    def acts(self) -> int:
        """Acts entered so far (the number of the act in progress)."""

    def clock(self) -> float:
        """Seconds since the run started."""

    def recorded(self) -> list[TraceEvent]:
        """Every event recorded so far."""

    def record(self, event: TraceEvent) -> None:
        """Add ``event`` to the trace."""

    def absorb_recorded(self, event: Event, plan: Plan | None, iteration: int) -> None:
        """Turn ``event`` (which entered ``observe``) into observations again."""

    def continue_at(
        self,
        state: str,
        *,
        acts: int,
        plan: Plan | None,
        steps: Sequence[StepResult],
        last_event: Event | None,
        done: dict[str, StepResult] | None,
    ) -> None:
        """Go on from ``state``; ``done``: the steps of the act in progress that ended."""

    def attach_store(self, *, seq: int) -> None:
        """Write every event from now on to the store, numbered from ``seq``."""

    def checkpoint(self) -> None:
        """Note (or write) the run's state."""

    def fire(self, event: Event) -> None:
        """Move the machine by ``event``."""

    async def execute(self, plan: Plan) -> None:
        """Run ``plan``'s steps into the act's outcome."""


async def act_in_rounds(
    run: Resumable,
    plan: Plan,
    gates: Mapping[str, str],
    ended: dict[str, StepResult],
    outcome: ActOutcome,
) -> None:
    """An act with steps that ended earlier (a resumed run) or approval steps.

    Each round runs what does not wait for an undecided approval step; when an
    approval step is reached, the run pauses (:class:`PauseForApproval`).
    """
    outcome.results.extend(ended.values())
    deps_of = dict(zip((s.id for s in plan.steps), plan.index.deps, strict=True))
    while True:
        waiting = {g for g in gates if g not in ended}
        rest = rest_of_act(run, plan, ended, outcome, hold=waiting)
        if rest.steps:
            await run.execute(rest)
            ended.update((r.step_id, r) for r in outcome.results)
        waiting = {g for g in gates if g not in ended}
        if not waiting:
            return
        ready = {
            g: gates[g]
            for g in waiting
            if all(d in ended and ended[d].status is StepStatus.succeeded for d in deps_of[g])
        }
        if ready:
            raise PauseForApproval(ready)
        # Each approval step left waits behind a failure: the next round skips them.
        gates = {}


@dataclass
class _ReadBack:
    """What a run's recorded events say about where it was."""

    plan: Plan | None = None
    acts: int = 0
    steps: list[StepResult] = field(default_factory=list)
    by_act: dict[int, list[StepResult]] = field(default_factory=dict)
    into_observe: Event | None = None
    last_event: Event | None = None


def restore(run: Resumable, checkpoint: Mapping[str, Any], decision: Decision | None) -> None:
    """Rebuild the run from its stored trace and checkpoint, then apply ``decision``."""
    if checkpoint.get("version") != CHECKPOINT_VERSION:
        raise CannotResume(
            f"run {run.run_id!r}: its checkpoint has version "
            f"{checkpoint.get('version')!r}, this planloop reads {CHECKPOINT_VERSION}",
            run_id=run.run_id,
        )
    state = str(checkpoint["state"])
    found = _read_back(run)
    ctx = run.ctx
    ctx.iteration = int(checkpoint["iteration"])
    ctx.model_calls = int(checkpoint["model_calls"])
    ctx.tokens = int(checkpoint["tokens"])
    ctx.last_results = tuple(found.by_act.get(found.acts, ()))
    acts, plan, last_event, done = found.acts, found.plan, found.last_event, None
    if state == LoopState.act and plan is not None:
        acts -= 1  # the act in progress is entered again
        plan = runnable(run, plan, checkpoint.get("callable_steps", ()))
        done = {r.step_id: r for r in found.by_act.get(found.acts, ())}
    elif state == LoopState.observe:
        last_event = found.into_observe
    pending = checkpoint.get("paused")
    # The decision is checked before anything is written: a bad one leaves the run paused.
    decided: Event | list[StepResult] | None = None
    if pending is not None and decision is not None:
        if "approval" in pending:
            decided = decide_approval(run, pending["approval"], decision)
        else:
            decided = decide(run, pending, decision)
    approved = decided if isinstance(decided, list) else []
    if done is not None:
        done.update((result.step_id, result) for result in approved)
    run.continue_at(
        state,
        acts=acts,
        plan=decided.plan if isinstance(decided, Planned) else plan,
        steps=[*found.steps, *approved],
        last_event=last_event,
        done=done,
    )
    _record_resumption(run, state, pending is not None, decision)
    if run.cfg.on_resume is not None:
        run.cfg.on_resume(ctx.model_calls)  # the model goes on after the recorded calls
    for result in approved:
        stored = found.plan
        deps = stored.dependencies(stored.by_id[result.step_id]) if stored else ()
        run.record(StepFinished(t=run.clock(), act=found.acts, result=result, depends_on=deps))
    if isinstance(decided, Event):
        run.fire(decided)
    else:
        run.checkpoint()


def _read_back(run: Resumable) -> _ReadBack:
    """Steps, observations, plans and acts, from the run's recorded events."""
    found = _ReadBack()
    durable = _durable(run)
    for event in run.recorded():
        if isinstance(event, StepFinished):
            result = event.result if durable is None else durable.restore_result(event.result)
            found.steps.append(result)
            found.by_act.setdefault(event.act, []).append(result)
        elif isinstance(event, Transitioned):
            if event.source == LoopState.observe and found.into_observe is not None:
                run.absorb_recorded(found.into_observe, found.plan, event.iteration)
                found.into_observe = None
            rebuilt = _rebuilt_event(event, found.plan, found.by_act.get(found.acts, ()))
            if isinstance(rebuilt, Planned):
                found.plan = rebuilt.plan
            if event.target == LoopState.act:
                found.acts += 1
            if event.target == LoopState.observe:
                found.into_observe = rebuilt
            found.last_event = rebuilt
    return found


def _record_resumption(
    run: Resumable, state: str, paused: bool, decision: Decision | None
) -> None:
    store = run.cfg.store
    assert store is not None
    run.attach_store(seq=len(run.recorded()))
    store.reopen_run(run.run_id)
    run.record(
        RunResumed(
            t=run.clock(),
            state=state,
            after="pause" if paused else "crash",
            decision=None if decision is None else _decision_json(decision),
        )
    )


def runnable(run: Resumable, plan: Plan, callables: Sequence[str] = ()) -> Plan:
    restore = run.cfg.restore_plan
    if restore is not None:
        return restore(plan)
    durable = _durable(run)
    if durable is not None:
        return durable.restore_plan(plan, run.ctx)
    if callables:
        # Steps that ran Python callables (a plan-and-execute sub-agent, say) were
        # stored by name only; running them by that name would fail every step.
        raise CannotResume(
            f"run {run.run_id!r} has an unfinished plan whose steps "
            f"{list(callables)} run Python callables, which {run.cfg.name!r} cannot "
            "rebuild from the store; start a new run instead",
            run_id=run.run_id,
        )
    return plan


def decide_approval(
    run: Resumable, questions: Mapping[str, str], decision: Decision
) -> list[StepResult]:
    """The results of the approval steps the run paused at, as ``decision`` says."""
    if isinstance(decision, Edit):
        raise CannotResume(
            f"run {run.run_id!r} is paused at approval steps {sorted(questions)}; "
            "decide them with Approve() or Reject(message=...), not Edit",
            run_id=run.run_id,
        )
    now = run.clock()
    results = []
    for step_id in questions:
        if isinstance(decision, Approve):
            fields: dict[str, Any] = {"status": StepStatus.succeeded, "output": True}
        else:
            text = f"rejected by a person: {decision.message}"
            fields = {
                "status": StepStatus.failed,
                "output": decision.message,
                "error": text,
                "error_type": "Rejected",
            }
        results.append(
            StepResult(
                step_id=step_id,
                tool="approval",
                attempts=1,
                started_at=now,
                ended_at=now,
                **fields,
            )
        )
    return results


def decide(run: Resumable, pending: Mapping[str, Any], decision: Decision) -> Event:
    """The event ``decision`` fires in place of the one the run paused before."""
    name, source = str(pending["event"]), str(pending["source"])
    event_type = next((t for t in run.cfg.spec.transitions if t.__name__ == name), None)
    if event_type is None:
        raise CannotResume(
            f"run {run.run_id!r} is paused before a {name} event, which this "
            "machine does not have",
            run_id=run.run_id,
        )
    event: Event
    if isinstance(decision, Approve):
        if event_type is Planned:
            plan = runnable(
                run,
                stored_plan(pending["payload"]["plan"]),
                pending.get("callable_steps", ()),
            )
            event = Planned(plan=plan)
        else:
            event = event_type.model_validate(pending["payload"])
    elif isinstance(decision, Edit):
        if event_type is not Planned:
            raise CannotResume(
                f"run {run.run_id!r} is paused before a {name} event, not a plan; "
                "an Edit decision replaces a plan. Use Approve() or Reject(message=...)",
                run_id=run.run_id,
            )
        plan = _edited_plan(run, decision)
        problems = plan.problems(run.cfg.tools or None, max_steps=run.cfg.max_plan_steps)
        if problems:
            raise InvalidPlan(problems)
        event = Planned(plan=plan)
    else:
        if "Rejected" not in run.cfg.spec.accepted(source):
            raise CannotResume(
                f"run {run.run_id!r} is paused in state {source!r}, which does not "
                "accept Rejected; use Approve() or Edit(plan=...)",
                run_id=run.run_id,
            )
        event = Rejected(error="rejected by a person", feedback=decision.message)
    return event


def _durable(run: Resumable) -> DurablePlanner | None:
    planner = run.cfg.planner
    return planner if isinstance(planner, DurablePlanner) else None


def _edited_plan(run: Resumable, decision: Edit) -> Plan:
    durable = _durable(run)
    if durable is not None:
        return durable.edited_plan(decision, run.ctx)
    if decision.plan is None:
        raise CannotResume(
            f"run {run.run_id!r} plans with tools, not step texts: Edit(steps=...) "
            "is for plan-and-execute runs; pass Edit(plan=Plan([...])) instead",
            run_id=run.run_id,
        )
    return decision.plan


def _decision_json(decision: Decision) -> dict[str, Any]:
    return decision.as_json() if isinstance(decision, Edit) else decision.model_dump(mode="json")


def rest_of_act(
    run: Resumable, plan: Plan, ended: dict[str, StepResult], outcome: ActOutcome, *, hold: set[str]
) -> Plan:
    """The steps that have not ended and do not wait for ``hold``, with the outputs
    of the steps in ``ended`` bound into their arguments.

    A step whose dependency failed (or was skipped) ends ``skipped`` here, and
    is added to ``ended`` and ``outcome``.
    """
    outputs = {sid: r.output for sid, r in ended.items() if r.status is StepStatus.succeeded}
    deps_of = dict(zip((s.id for s in plan.steps), plan.index.deps, strict=True))
    held = set(hold)
    rest: list[Step] = []
    for step in _topological(plan):
        if step.id in ended:
            continue
        if step.id in held or any(d in held for d in deps_of[step.id]):
            held.add(step.id)
            continue
        deps = deps_of[step.id]
        blocker = next((d for d in deps if d in ended and d not in outputs), None)
        if blocker is not None:
            result = StepResult(
                step_id=step.id,
                status=StepStatus.skipped,
                error=f"dependency {blocker!r} {ended[blocker].status.value}",
                tool=step.tool_name,
                args=step.args,
                ended_at=run.clock(),
            )
            ended[step.id] = result
            outcome.results.append(result)
            run.record(StepFinished(t=run.clock(), act=run.acts, result=result, depends_on=deps))
            continue
        rest.append(
            step.model_copy(
                update={
                    "args": _bind_outputs(plan, step.args, outputs),
                    "depends_on": tuple(d for d in step.depends_on if d not in ended),
                }
            )
        )
    return Plan(rest, log=plan.log)


def _rebuilt_event(event: Transitioned, plan: Plan | None, results: Sequence[StepResult]) -> Event:
    """The loop event behind a recorded transition, as far as a resumed run needs it."""
    name, payload = event.event, event.payload
    if name == "Planned":
        return Planned(plan=stored_plan(payload["plan"]))
    if name == "Acted":
        return Acted(results=tuple(results))
    if name == "Rejected":
        return Rejected.model_validate(payload)
    if name == "Continued":
        return Continued()
    return _Recorded()


class _Recorded(Event):
    """A transition whose event a resumed run does not need again."""


def stored_plan(data: Any) -> Plan:
    """A plan read back from a trace payload.

    A retry policy's ``retry_on`` classes are stored as their ``repr`` and cannot
    be read back: such a step comes back without its policy (a workflow's steps
    are then replaced by its own, with their policies; see ``restore_plan``).
    """
    try:
        return Plan.model_validate(data)
    except ValidationError:
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            raise
        steps = [
            {k: v for k, v in step.items() if k != "retry"} if isinstance(step, dict) else step
            for step in data["steps"]
        ]
        return Plan.model_validate({**data, "steps": steps})


def _topological(plan: Plan) -> list[Step]:
    steps, index = plan.steps, plan.index
    waiting = list(index.indegree)
    order = [i for i in range(len(steps)) if not waiting[i]]
    for i in order:
        for j in index.dependents[i]:
            waiting[j] -= 1
            if not waiting[j]:
                order.append(j)
    return [steps[i] for i in order]


def _bind_outputs(plan: Plan, value: Any, outputs: Mapping[str, Any]) -> Any:
    """``value`` with the references to steps in ``outputs`` replaced by their outputs."""
    if type(value) is dict:
        if len(value) == 1 and "$ref" in value:
            head, _ = plan._split_ref(str(value["$ref"]))
            return resolve_refs(plan, value, outputs) if head in outputs else value
        return {k: _bind_outputs(plan, v, outputs) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_bind_outputs(plan, v, outputs) for v in value)
    return value

