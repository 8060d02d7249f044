"""One run of the agent loop: its machine, context and recording (:class:`Run`).

What a run *does* in each state is in :mod:`planloop.engine._builtin`, how it is
driven to the end in :mod:`planloop.engine._drive`. This module holds what the
run keeps: where it is, what it recorded, where it writes, and how it ends. A
resumed run is rebuilt through the few public methods :mod:`planloop.engine._resume`
uses (see its :class:`~planloop.engine._resume.Resumable`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from planloop.engine.config import LoopConfig
from planloop.engine.durable import CHECKPOINT_VERSION, Recorder, definition_hash
from planloop.engine.events import (
    Acted,
    Answered,
    Event,
    Planned,
    Rejected,
    ReturnedDirect,
    Stopped,
)
from planloop.engine.machine import Machine
from planloop.engine.pending import Pending
from planloop.engine.plan import Plan
from planloop.engine.planner import RunContext, StopRun
from planloop.engine.recorder import TraceRecorder, payload_of
from planloop.engine.result import RunResult
from planloop.engine.scheduler import TOOL_NOT_FOUND, ActOutcome, execute_plan
from planloop.engine.spec import MachineSpec
from planloop.engine.states import LoopState, RunStatus, StepStatus, StopReason
from planloop.engine.steps import Action, StepResult
from planloop.engine.trace import (
    Limits,
    RunPaused,
    RunStarted,
    Trace,
    TraceEvent,
    make_run_ended,
)
from planloop.errors import ModelError, ModelFailed, PlannerFailed, RunError, StepFailed

__all__ = ["Run"]

_NOT_HANDLED = frozenset({TOOL_NOT_FOUND, "ToolArgumentsError", "InvalidReference"})
"""Error types of a failed step that its tool's ``handle_tool_error`` never saw."""


class Run:
    """The state of one run, from its start (or resumption) to its result."""

    def __init__(
        self,
        cfg: LoopConfig,
        input: Any,
        run_id: str,
        on_event: Callable[[Any], None] | None,
        *,
        trace: Trace | None = None,
        owner: str | None = None,
    ) -> None:
        """``trace``: what a resumed run recorded before (time goes on from its last event);
        ``owner``: the lease a new run is created holding (see ``store._lease``)."""
        self.cfg = cfg
        self.owner = owner
        self.start = time.perf_counter()
        if trace is not None:
            self.start -= trace.events[-1].t if trace.events else 0.0
        self.recorder = TraceRecorder(run_id, trace=trace)
        self.store: Recorder | None = None
        """Writes the run's events and checkpoints, when it has a store."""
        if on_event is not None:
            self.recorder.subscribe(on_event)
        self.machine = Machine(cfg.spec)
        self.ctx = RunContext(
            run_id=run_id, input=input, tools=cfg.tools, recorder=self.recorder, start=self.start
        )
        self.steps: list[StepResult] = []
        self.acts = 0
        self.plan: Plan | None = None
        self.outcome: ActOutcome | None = None
        self.act_errors: Mapping[str, BaseException] = {}
        self.last_event: Event | None = None
        self.failure: RunError | None = None
        limit = cfg.limits.max_execution_time
        self.deadline = None if limit is None else self.start + limit
        self.paused: dict[str, Any] | None = None
        self.pause_record: RunPaused | None = None
        """The record of the pause this run is waiting in (made by ``pause*``)."""
        self.resumed_done: dict[str, StepResult] | None = None
        self.ended: tuple[RunStatus, StopReason | None, Any, int] | None = None
        """How the run ended: status, stop reason, output, iterations."""
        self.driving = False

    @property
    def run_id(self) -> str:
        return self.recorder.run_id

    def clock(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.start

    def record(self, event: TraceEvent) -> None:
        """Add ``event``, a record made already, to the trace."""
        self.recorder.append(event)

    def recorded(self) -> list[TraceEvent]:
        """Every event recorded so far."""
        return self.recorder.trace().events

    def fire(self, event: Event) -> None:
        """Move the machine by ``event``, record the transition, note a checkpoint."""
        machine = self.machine
        source = machine.state
        target = machine.fire(event)
        self.recorder.transitioned(self.clock(), source, target, event, self.ctx.iteration)
        self.last_event = event
        if self.store is not None:
            self.checkpoint()

    async def execute(self, plan: Plan) -> None:
        """Run ``plan``'s steps into the act's outcome."""
        await execute_plan(
            plan,
            self.cfg.tools,
            act=self.acts,
            clock=self.clock,
            record=self.recorder.append,
            max_concurrency=self.cfg.max_concurrency,
            outcome=self.outcome,
            log=self.recorder,
        )

    # --- observations ---------------------------------------------------------

    def absorb(self, event: Event | None) -> StepResult | None:
        """Turn what happened before ``observe`` into observations; a return_direct result.

        Raises:
            StopRun: a step failed with an error nothing handled (``on_tool_error="stop"``).
        """
        ctx = self.ctx
        if isinstance(event, Rejected):
            feedback = event.feedback
            log, iteration = event.llm_output, ctx.iteration
            action = Action(tool="_Exception", tool_input=feedback, log=log, iteration=iteration)
            ctx.all_steps.append((action, feedback))
        elif isinstance(event, Acted) and self.plan is not None:
            return self._absorb_act(self.plan, event.results)
        return None

    def _absorb_act(self, plan: Plan, results: Sequence[StepResult]) -> StepResult | None:
        ctx = self.ctx
        ctx._add_act(plan, results)
        ctx.last_results = results
        fatal = next((r for r in results if r.fatal), None)
        if fatal is not None and self.cfg.on_tool_error == "stop":
            hint = (
                "; set handle_tool_error on the tool, or on_tool_error='observe' on the "
                "agent, to turn such errors into observations"
                if fatal.tool in self.cfg.tools
                else ""
            )
            failure = StepFailed(
                f"step {fatal.step_id!r} ({fatal.tool}) raised {fatal.error}{hint}",
                step_id=fatal.step_id,
                tool=fatal.tool,
            )
            failure.__cause__ = self.act_errors.get(fatal.step_id)
            self.failure = failure
            raise StopRun(StopReason.error)
        if len(plan.steps) == 1:
            res = results[0]
            tool = self.cfg.tools.get(res.tool)
            ok = res.status is StepStatus.succeeded
            handled = res.status is StepStatus.failed and res.error_type not in _NOT_HANDLED
            if tool is not None and tool.return_direct and (ok or handled):
                return res
        return None

    # --- resuming (see planloop.engine._resume.Resumable) -----------------------

    def absorb_recorded(self, event: Event, plan: Plan | None, iteration: int) -> None:
        """Turn ``event`` (which entered ``observe``) into observations again."""
        self.plan, self.ctx.iteration = plan, iteration
        failure = self.failure
        try:
            self.absorb(event)
        except StopRun:  # that run went on to stop; what it recorded is kept
            self.failure = failure

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
        self.machine = Machine(self.cfg.spec, state=state)
        self.acts = acts
        self.plan = plan
        self.steps.extend(steps)
        self.last_event = last_event
        self.resumed_done = done

    # --- the start, and the store ---------------------------------------------

    def begin(self) -> None:
        """Record the start of a new run (in the store too, if there is one)."""
        cfg = self.cfg
        started_at = datetime.now(UTC)
        if cfg.store is not None:
            # A run on a store with leases is created holding its owner's (run_loop's).
            lease = {} if self.owner is None else {"owner": self.owner}
            cfg.store.create_run(
                self.run_id,
                name=cfg.name,
                started_at=started_at,
                definition=cfg.definition,
                definition_hash=definition_hash(cfg),
                **lease,
            )
            self.attach_store(seq=0)
        values = (self.run_id, cfg.name, self.ctx.input, started_at, cfg.limits, cfg.spec)
        self.recorder.later(make_run_started, *values)
        self.checkpoint()

    def attach_store(self, *, seq: int) -> None:
        """Write every event from now on to the store, numbered from ``seq``."""
        store = self.cfg.store
        assert store is not None
        self.store = Recorder(store, self.run_id, seq=seq, trace=self.recorder.trace())
        self.recorder.subscribe(self.store)

    def checkpoint(self, *, now: bool = False) -> None:
        """Note the state after a transition; write it at once when ``now`` or not driving."""
        store = self.store
        if store is None:
            return
        ctx = self.ctx
        state: dict[str, Any] = {
            "version": CHECKPOINT_VERSION,
            "state": str(self.machine.state),
            "iteration": ctx.iteration,
            "acts": self.acts,
            "model_calls": ctx.model_calls,
            "tokens": ctx.tokens,
        }
        if self.paused is not None:
            state["paused"] = self.paused
        plan = self.plan
        if plan is not None and self.machine.state == LoopState.act:
            note_callable_steps(state, plan)
        if self.driving and not now:
            store.note(state)  # written before the next state with effects is entered
            return
        self.write(state)

    def write(self, state: dict[str, Any] | None = None) -> None:
        """Write what the store recorder holds (and ``state``, a checkpoint)."""
        store = self.store
        assert store is not None
        try:
            store.flush(state)
        except Exception as exc:
            # The recorder writes nothing more. Before the run is driven (starting,
            # resuming) the caller gets the error; while it is, the run stops (reason
            # error) unless it is already ending, and its result says why either way.
            if not self.driving:
                raise
            if self.failure is None:
                self.failure = RunError(f"the store could not record run {self.run_id!r}: {exc}")
                self.failure.__cause__ = exc
            if not self.machine.terminal:
                raise StopRun(StopReason.error) from exc

    def record_end(self, result: RunResult) -> None:
        """Write the last checkpoint and the run's end to the store."""
        recorder, store = self.store, self.cfg.store
        if recorder is None or store is None:
            return
        try:
            self.checkpoint(now=True)
            if not recorder.broken:
                store.finish_run(
                    self.run_id,
                    status=result.status,
                    stop_reason=result.stop_reason,
                    iterations=result.iterations,
                    ended_at=datetime.now(UTC),
                )
        except Exception as exc:  # noqa: BLE001 - the run is over; its result still goes out
            if self.failure is None:
                self.failure = RunError(
                    f"run {self.run_id!r} ended {result.status}, but the store could "
                    f"not record it: {exc}"
                )
                self.failure.__cause__ = exc

    # --- pausing and ending ---------------------------------------------------

    def pause_for_approval(self, questions: Mapping[str, str]) -> None:
        self.paused = {"approval": dict(questions), "source": str(self.machine.state)}
        self.pause_record = RunPaused(
            t=self.clock(), state=str(self.machine.state), reason="approval", pending=self.paused
        )
        self.recorder.append(self.pause_record)

    def pause(self, source: str, target: str, event: Event) -> None:
        self.paused = {
            "event": type(event).__name__,
            "source": str(source),
            "target": str(target),
            "payload": payload_of(event),
        }
        if isinstance(event, Planned):
            note_callable_steps(self.paused, event.plan)
        self.pause_record = RunPaused(
            t=self.clock(), state=str(target), reason="interrupt", pending=self.paused
        )
        self.recorder.append(self.pause_record)

    def keep_cancelled_steps(self) -> None:
        if self.outcome is not None:
            self.steps.extend(self.outcome.results)
            self.outcome = None

    def fail_from(self, exc: BaseException) -> None:
        """Note ``exc``, raised by a state, as what failed the run."""
        if isinstance(exc, RunError):  # already says what failed
            self.failure = exc
            return
        state = self.machine.state
        what = "the planner" if state == LoopState.plan else f"state {state!r}"
        message = f"{what} raised {type(exc).__name__}: {exc}"
        failure: RunError
        if state != LoopState.plan:
            failure = RunError(message)
        elif isinstance(exc, ModelError):  # caught by ``except ModelError`` too
            failure = ModelFailed(message, cause=exc)
        else:
            failure = PlannerFailed(message)
        failure.__cause__ = exc
        self.failure = failure

    def stop_now(self, reason: StopReason, output: Any) -> None:
        if not self.machine.terminal:
            self.fire(Stopped(reason=reason, output=output))
        error = str(self.failure) if self.failure is not None else None
        self._end(RunStatus.stopped, reason, output, error)

    def _end(
        self, status: RunStatus, reason: StopReason | None, output: Any, error: str | None
    ) -> None:
        iterations = self.ctx.iteration
        self.ended = (status, reason, output, iterations)
        t = self.clock()
        self.recorder.later(make_run_ended, t, status, reason, output, iterations, error)

    def result(self) -> RunResult:
        """The run's result (a finished run's end is recorded here)."""
        if self.pause_record is not None:
            pending = Pending.from_record(self.pause_record)
            return self._result(None, RunStatus.paused, None, self.ctx.iteration, pending)
        if self.ended is None:
            event = self.last_event
            output = event.output if isinstance(event, Answered | ReturnedDirect) else None
            self._end(RunStatus.finished, None, output, None)
        assert self.ended is not None
        status, reason, output, iterations = self.ended
        return self._result(output, status, reason, iterations)

    def _result(
        self,
        output: Any,
        status: RunStatus,
        reason: StopReason | None,
        iterations: int,
        pending: Pending | None = None,
    ) -> RunResult:
        return RunResult._later(
            self.recorder.trace,
            self._pairs(),
            run_id=self.run_id,
            output=output,
            status=status,
            stop_reason=reason,
            iterations=iterations,
            steps=list(self.steps),
            pending=pending,
        )

    def _pairs(self) -> Callable[[], list[tuple[Action, Any]]]:
        """What makes the result's ``(action, observation)`` pairs when first read."""
        ctx = self.ctx
        if not ctx._unread:  # made already (planners read them): only the list is copied
            pairs = list(ctx._steps)
            return lambda: pairs
        # Acts nobody read (a workflow's): made from the run's context, which the run
        # no longer changes once it has a result.
        return lambda: list(ctx.all_steps)


def make_run_started(
    run_id: str, name: str, input: Any, started_at: datetime, limits: Limits, spec: MachineSpec
) -> RunStarted:
    """The :class:`RunStarted` record of a new run."""
    return RunStarted(
        t=0.0,
        kind="run_started",
        run_id=run_id,
        name=name,
        input=input,
        started_at=started_at,
        limits=limits,
        machine=spec.summary,
    )


def note_callable_steps(record: dict[str, Any], plan: Plan) -> None:
    """Name in ``record`` the steps of ``plan`` that run Python callables.

    They are stored by name only; a resume must know which they are to rebuild
    or refuse them (see :func:`planloop.engine._resume.runnable`).
    """
    callables = [s.id for s in plan.steps if not isinstance(s.tool, str)]
    if callables:
        record["callable_steps"] = callables
