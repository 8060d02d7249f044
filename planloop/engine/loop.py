"""The agent loop: drive a machine through its states until it reaches a terminal one.

Each run gets its own machine, context and trace, so an object that starts
runs (an :class:`~planloop.Agent`) keeps no state between them.

Where it stops and why:

* limits are guards checked before ``plan`` and ``act`` are entered (and
  before ``observe`` continues): ``max_iterations``, ``max_model_calls``,
  ``max_tokens`` and the deadline;
* ``max_execution_time`` is also a hard deadline around the whole run: what
  is in flight is cancelled (sync tools are abandoned, not waited for);
* an exception in a state handler, the planner or the model, an unreadable
  model output with parsing errors not handled, or a tool error nothing
  handled stops the run with reason ``error`` and raises a
  :class:`~planloop.errors.RunError` carrying the partial result.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, Literal

from planloop.engine._resume import PauseForApproval, act_in_rounds, restore
from planloop.engine._trusted import trusted, trusted_maker
from planloop.engine.approval import approval_ids
from planloop.engine.durable import (
    CHECKPOINT_VERSION,
    Decision,
    Recorder,
    definition_hash,
)
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
from planloop.engine.machine import Machine
from planloop.engine.plan import DEFAULT_MAX_STEPS, Plan, plan_json
from planloop.engine.planner import Answer, Planner, RunContext, StopRun
from planloop.engine.result import RunResult
from planloop.engine.scheduler import TOOL_NOT_FOUND, ActOutcome, execute_plan
from planloop.engine.spec import MachineSpec, SpecSummary
from planloop.engine.states import LoopState, RunStatus, StepStatus, StopReason
from planloop.engine.steps import Action, StepResult
from planloop.engine.store import Store
from planloop.engine.tooling import ToolLike
from planloop.engine.trace import (
    Limits,
    RunEnded,
    RunPaused,
    RunStarted,
    Trace,
    make_transitioned,
)
from planloop.errors import (
    CannotResume,
    DefinitionError,
    InvalidPlan,
    OutputParserError,
    ParsingFailed,
    PlannerFailed,
    RunError,
    StepFailed,
    StoreError,
)

__all__ = [
    "FORCE_STOP_MESSAGE",
    "INVALID_RESPONSE",
    "LoopConfig",
    "StateHandler",
    "StopRun",
    "resume_loop",
    "run_loop",
]

FORCE_STOP_MESSAGE = "Agent stopped due to iteration limit or time limit."
INVALID_RESPONSE = "Invalid or incomplete response"
_NOT_HANDLED_BY_TOOL = frozenset({TOOL_NOT_FOUND, "ToolArgumentsError", "InvalidReference"})

StateHandler = Callable[[RunContext], Event | Awaitable[Event]]
"""Runs in a user-defined state and returns the event that leaves it."""

ParsingErrorHandler = bool | str | Callable[[OutputParserError], str]
TrimSteps = int | Callable[[list[tuple[Action, Any]]], Sequence[tuple[Action, Any]]]


@dataclass(frozen=True)
class LoopConfig:
    """Everything a run needs besides its input. Immutable, shared by runs."""

    planner: Planner
    tools: Mapping[str, ToolLike]
    spec: MachineSpec = field(default_factory=MachineSpec.default)
    limits: Limits = field(default_factory=Limits)
    early_stopping_method: Literal["force", "generate"] = "force"
    handle_parsing_errors: ParsingErrorHandler = False
    trim_intermediate_steps: TrimSteps = -1
    handlers: Mapping[str, StateHandler] = field(default_factory=dict)
    """A handler per user-defined state. One named ``plan``, ``act`` or ``observe``
    replaces that built-in state, its limit checks included (a replay does this to
    give back recorded events); :class:`~planloop.Agent` refuses such names."""
    max_concurrency: int | None = None
    on_tool_error: Literal["stop", "observe"] = "stop"
    max_plan_steps: int | None = DEFAULT_MAX_STEPS
    name: str = ""
    store: Store | None = None
    """Where the run's events, checkpoints and status are written (``None``: nowhere)."""
    interrupt_before: frozenset[str] = frozenset()
    """States the run pauses before entering, until a decision resumes it (needs a store)."""
    restore_plan: Callable[[Plan], Plan] | None = None
    """Turns a plan read back from the store (tools as names) into one that can run
    (a workflow's callables); ``None``: the plan runs as read."""
    identity: Callable[[], Any] | None = None
    """Gives JSON data that, with the name, machine, planner and tools, defines the
    runnable (a workflow's steps); a resumed run must have the same. Called only when
    the run has a store."""
    definition: str | None = None
    """Where the runnable is defined (``FILE.py:NAME``), recorded for ``planloop resume``."""
    on_end: Callable[[RunResult], None] | None = None
    """Called with the result when a run ends, however it ends: finished, stopped
    (when cancelled, just before ``CancelledError`` goes on), or failed (just before
    the :class:`~planloop.errors.RunError` is raised). What it raises is raised in
    place of the result (during a cancellation it goes to the event loop's exception
    handler instead), so a hook that must not change the run catches its own errors."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        builtin = {LoopState.plan, LoopState.act, LoopState.observe}
        for state in self.spec.states:
            if state in self.spec.terminal:
                continue
            if state not in builtin and state not in self.handlers:
                problems.append(
                    f"state {state!r} has no handler; pass handlers={{{state!r}: fn}} "
                    "where fn(ctx) returns the event that leaves it"
                )
            if "Stopped" not in self.spec.accepted(state):
                problems.append(
                    f"state {state!r} does not accept Stopped, so a limit or an error "
                    f"could not end the run there; add Stopped: {{{state!r}: 'stopped'}}"
                )
        if self.on_tool_error not in ("stop", "observe"):
            problems.append(f"on_tool_error={self.on_tool_error!r}; use 'stop' or 'observe'")
        unknown = sorted(s for s in self.interrupt_before if s not in self.spec.states_by_name)
        if unknown:
            problems.append(
                f"interrupt_before names {unknown}, which are not states of the machine; "
                f"use some of {sorted(str(s) for s in self.spec.states)}"
            )
        if self.early_stopping_method not in ("force", "generate"):
            problems.append(
                f"early_stopping_method={self.early_stopping_method!r}; use 'force' or 'generate'"
            )
        if problems:
            raise DefinitionError("invalid agent loop:\n" + "\n".join(f"  - {p}" for p in problems))


async def run_loop(
    config: LoopConfig,
    input: Any,
    *,
    run_id: str | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> RunResult:
    """Run the loop once on ``input`` and return its result."""
    run = _Run(config, input, run_id or _new_run_id(), on_event)
    run.begin()
    return await run.execute()


async def resume_loop(
    config: LoopConfig,
    run_id: str,
    *,
    decision: Decision | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> RunResult:
    """Continue the stored run ``run_id`` from its last checkpoint.

    See :mod:`planloop.engine.durable` for what is stored and what runs again.

    Raises:
        CannotResume: the run already ended, was started by another definition,
            is paused and no decision was given (or a decision was given for a
            run that is not paused), or the decision does not fit what is pending.
        InvalidPlan: an :class:`Edit` decision's plan is invalid (the run stays paused).
        StoreError: no store is configured, the run is unknown, or what is stored is corrupt.
    """
    store = config.store
    if store is None:
        raise StoreError(
            f"cannot resume run {run_id!r}: this runnable has no store (store=False or "
            "PLANLOOP_STORE=off); use the store the run was recorded in"
        )
    record = store.get_run(run_id)
    if record.status not in ("running", RunStatus.paused):
        reason = f", {record.stop_reason}" if record.stop_reason else ""
        raise CannotResume(
            f"run {run_id!r} already ended ({record.status}{reason}); only a paused run or "
            "one whose process died can be resumed. Start a new run instead",
            run_id=run_id,
        )
    expected = definition_hash(config)
    if record.definition_hash is not None and record.definition_hash != expected:
        raise CannotResume(
            f"run {run_id!r} was started by another definition of {record.name!r} (its tools, "
            "machine, planner or steps differ from this one); resume it with the same "
            "agent or workflow it was started with",
            run_id=run_id,
        )
    checkpoint = store.load_checkpoint(run_id)
    trace = store.load_trace(run_id)
    if checkpoint is None or trace.started is None:
        raise CannotResume(
            f"run {run_id!r} has no checkpoint to resume from; start a new run instead",
            run_id=run_id,
        )
    paused = record.status == RunStatus.paused
    if paused and decision is None:
        raise CannotResume(
            f"run {run_id!r} is paused, waiting for a decision; pass Approve(), "
            "Edit(plan=...) or Reject(message=...)",
            run_id=run_id,
        )
    if not paused and decision is not None:
        raise CannotResume(
            f"run {run_id!r} is not paused, so there is nothing to decide; resume it "
            "without a decision",
            run_id=run_id,
        )
    run = _Run(config, trace.input, run_id, on_event, trace=trace)
    restore(run, checkpoint.state, decision)
    return await run.execute()


_StopRequest = StopRun  # the name this had when it was private (kept for older imports)


class _Run:
    def __init__(
        self,
        cfg: LoopConfig,
        input: Any,
        run_id: str,
        on_event: Callable[[Any], None] | None,
        *,
        trace: Trace | None = None,
    ) -> None:
        self.cfg = cfg
        self.start = time.perf_counter()
        if trace is not None:  # resumed: time goes on from the last recorded event
            self.start -= trace.events[-1].t if trace.events else 0.0
        self.trace = trace if trace is not None else Trace._new(run_id)
        self.log = self.trace.step_log()  # how the acts record their step events
        self.recorder: Recorder | None = None
        if on_event is not None:
            self.trace.subscribe(on_event)
        self.machine = Machine(cfg.spec)
        self.ctx = RunContext(
            run_id=run_id, input=input, tools=cfg.tools, trace=self.trace, start=self.start
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
        self.resumed_done: dict[str, StepResult] | None = None
        self.driving = False

    def clock(self) -> float:
        return time.perf_counter() - self.start

    def fire(self, event: Event) -> None:
        machine = self.machine
        source = machine.state
        target = machine.fire(event)
        kind = type(event)
        t = time.perf_counter() - self.start
        source = _NAMES.get(source) or _name(source)
        target = _NAMES.get(target) or _name(target)
        deferred = _DEFERRED.get(kind)
        if deferred is not None:  # an iteration's events: payload made when read
            self.log.transitioned(
                t, source, target, kind.__name__, event, deferred, self.ctx.iteration
            )
        else:
            dump = _PAYLOAD_OF.get(kind)
            payload = _payload(event) if dump is None else dump(event)
            self.trace.append(
                make_transitioned(t, source, target, kind.__name__, payload, self.ctx.iteration)
            )
        self.last_event = event
        if self.recorder is not None:
            self._checkpoint()

    def begin(self) -> None:
        """Record the start of a new run (in the store too, if there is one)."""
        cfg = self.cfg
        fields = {
            "t": 0.0,
            "kind": "run_started",
            "run_id": self.trace.run_id,
            "name": cfg.name,
            "input": self.ctx.input,
            "started_at": datetime.now(UTC),
            "limits": cfg.limits,
            "machine": cfg.spec.summary,
        }
        if (
            type(cfg.name) is str
            and type(cfg.limits) is Limits
            and type(fields["machine"]) is SpecSummary
        ):
            started = _new_run_started(fields)
        else:  # values the engine did not make itself are validated, as they always were
            started = RunStarted.model_validate(fields)
        if cfg.store is not None:
            cfg.store.create_run(
                self.trace.run_id,
                name=cfg.name,
                started_at=started.started_at,
                definition=cfg.definition,
                definition_hash=definition_hash(cfg),
            )
            self.recorder = Recorder(cfg.store, self.trace.run_id, trace=self.trace)
            self.trace.subscribe(self.recorder)
        self.trace.append(started)
        self._checkpoint()

    def _checkpoint(self, *, now: bool = False) -> None:
        """Note the state after a transition; write it at once when ``now`` or not driving."""
        recorder = self.recorder
        if recorder is None:
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
            _note_callable_steps(state, plan)
        if self.driving and not now:
            recorder.note(state)  # written before the next state with effects is entered
            return
        self._write(state)

    def _write(self, state: dict[str, Any] | None = None) -> None:
        recorder = self.recorder
        assert recorder is not None
        try:
            recorder.flush(state)
        except Exception as exc:
            # The recorder writes nothing more. Before the run is driven (starting,
            # resuming) the caller gets the error; while it is, the run stops (reason
            # error) unless it is already ending, and its result says why either way.
            if not self.driving:
                raise
            if self.failure is None:
                self.failure = RunError(
                    f"the store could not record run {self.trace.run_id!r}: {exc}"
                )
                self.failure.__cause__ = exc
            if not self.machine.terminal:
                raise StopRun(StopReason.error) from exc

    def _record_end(self, result: RunResult) -> None:
        recorder, store = self.recorder, self.cfg.store
        if recorder is None or store is None:
            return
        try:
            self._checkpoint(now=True)
            if not recorder.broken:
                store.finish_run(
                    self.trace.run_id,
                    status=result.status,
                    stop_reason=result.stop_reason,
                    iterations=result.iterations,
                    ended_at=datetime.now(UTC),
                )
        except Exception as exc:  # noqa: BLE001 - the run is over; its result still goes out
            if self.failure is None:
                self.failure = RunError(
                    f"run {self.trace.run_id!r} ended {result.status}, but the store could "
                    f"not record it: {exc}"
                )
                self.failure.__cause__ = exc

    async def execute(self) -> RunResult:
        cfg = self.cfg
        reason: StopReason | None = None
        output: Any = None
        self.driving = True
        try:
            if self.deadline is None:
                await self._drive()
            else:
                scope = asyncio.timeout_at(self.deadline + _loop_offset())
                try:
                    async with scope:
                        await self._drive()
                except TimeoutError:
                    if not scope.expired():  # raised by a planner or handler: an error
                        raise
                    reason = StopReason.max_execution_time
                    self._keep_cancelled_steps()
        except StopRun as req:
            reason, output = req.reason, req.output
        except asyncio.CancelledError:
            self._keep_cancelled_steps()
            self._stop_now(StopReason.cancelled, None)
            self._end_cancelled()
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary: a failure becomes a stopped run
            reason = StopReason.error
            self._fail_from(exc)
        stopped = self.last_event
        if reason is None and isinstance(stopped, Stopped) and self.paused is None:
            # A handler returned Stopped: the run ends as that event says.
            reason, output = stopped.reason, stopped.output
        elif reason is not None and output is None:
            try:
                output = await self._stop_output(reason)
            except Exception as exc:  # noqa: BLE001 - the generate call failed: still a stopped run
                self._fail_from(exc)
                reason, output = StopReason.error, None
        if reason is not None:
            self._stop_now(reason, output)
        result = self._result()
        self._record_end(result)
        if cfg.on_end is not None:
            cfg.on_end(result)
        if self.failure is not None:
            self.failure.result = result
            raise self.failure
        return result

    async def _drive(self) -> None:
        machine = self.machine
        handlers = self.cfg.handlers
        ctx = self.ctx
        recorder = self.recorder
        interrupt = self.cfg.interrupt_before
        while not machine.terminal:
            state = machine.state
            handler = handlers.get(state)
            if (
                recorder is not None
                and recorder.waiting
                and (handler is not None or state is not LoopState.observe)
            ):
                self._write()  # what happened is on disk before a handler with effects runs
            # The built-in handlers are looked up unbound: a dict of bound methods
            # on self would be a reference cycle, and then a run's whole trace
            # could only be freed by the cyclic garbage collector.
            try:
                if handler is None:
                    event = await _BUILTIN[state](self, ctx)
                else:
                    given = handler(ctx)
                    event = await given if inspect.isawaitable(given) else given
            except PauseForApproval as pause:
                self._pause_for_approval(pause.questions)
                return
            if not isinstance(event, Event):
                raise TypeError(
                    f"the handler of state {state!r} returned {type(event).__name__}; "
                    "it must return an Event"
                )
            if interrupt:
                target = machine.spec.next_state(state, event)
                if target in interrupt and not isinstance(event, Stopped):
                    self._pause(state, target, event)
                    return
            self.fire(event)

    def _pause_for_approval(self, questions: Mapping[str, str]) -> None:
        self.paused = {"approval": dict(questions), "source": str(self.machine.state)}
        self.trace.append(
            RunPaused(
                t=self.clock(),
                state=str(self.machine.state),
                reason="approval",
                pending=self.paused,
            )
        )

    def _pause(self, source: str, target: str, event: Event) -> None:
        self.paused = {
            "event": type(event).__name__,
            "source": str(source),
            "target": str(target),
            "payload": _payload(event),
        }
        if isinstance(event, Planned):
            _note_callable_steps(self.paused, event.plan)
        self.trace.append(
            RunPaused(t=self.clock(), state=str(target), reason="interrupt", pending=self.paused)
        )

    def _end_cancelled(self) -> None:
        on_end = self.cfg.on_end
        if on_end is None:
            return
        try:
            on_end(self._result())
        except Exception as exc:  # noqa: BLE001 - the cancellation goes on; the error is reported
            asyncio.get_running_loop().call_exception_handler(
                {"message": "planloop: on_end raised while a run was cancelled", "exception": exc}
            )

    # --- the built-in states -------------------------------------------------

    async def _plan(self, ctx: RunContext) -> Event:
        self._check_guards()
        ctx._visible = self._visible_steps()
        try:
            decision = await self.cfg.planner.plan(ctx)
        except OutputParserError as exc:
            return self._rejected_output(exc)
        except InvalidPlan as exc:  # a planner's invalid plan goes back to it as feedback
            return Rejected(error="invalid plan", feedback=str(exc))
        if isinstance(decision, Answer):
            return trusted(Answered, {"output": decision.output})
        if isinstance(decision, Plan):
            problems = decision.problems(max_steps=self.cfg.max_plan_steps)
            if problems:
                feedback = str(InvalidPlan(problems))
                return Rejected(error="invalid plan", feedback=feedback, llm_output=decision.log)
            self._check_guards(before_act=True)
            self.plan = decision
            return trusted(Planned, {"plan": decision})
        raise TypeError(
            f"the planner returned {type(decision).__name__}; it must return a Plan or an Answer"
        )

    async def _act(self, ctx: RunContext) -> Event:
        assert self.plan is not None
        self.acts += 1
        self.outcome = ActOutcome()
        plan, kept = self.plan, 0
        steps = plan.steps
        # A plan of tools named by string (every plan a model makes) has no approval step.
        gates = approval_ids(steps) if len(steps) != 1 or type(steps[0].tool) is not str else {}
        resumed, self.resumed_done = self.resumed_done, None
        if resumed is None and not gates:
            await self._execute(plan)
        else:
            kept = await act_in_rounds(self, plan, gates, dict(resumed or {}))
        outcome, self.outcome = self.outcome, None
        self.steps.extend(outcome.results[kept:])
        self.act_errors = outcome.errors
        return trusted(Acted, {"results": tuple(outcome.results)})

    async def _execute(self, plan: Plan) -> None:
        await execute_plan(
            plan,
            self.cfg.tools,
            act=self.acts,
            clock=self.clock,
            record=self.trace.append,
            max_concurrency=self.cfg.max_concurrency,
            outcome=self.outcome,
            log=self.log,
        )

    async def _observe(self, ctx: RunContext) -> Event:
        ctx.iteration += 1
        direct = self._absorb(ctx, self.last_event)
        if direct is not None:
            return ReturnedDirect(output=direct.output)
        self._check_guards()
        return _CONTINUED

    def _absorb(self, ctx: RunContext, event: Event | None) -> StepResult | None:
        """Turn what happened before ``observe`` into observations; a return_direct result."""
        if isinstance(event, Rejected):
            ctx.all_steps.append(
                (
                    Action(
                        tool="_Exception",
                        tool_input=event.feedback,
                        log=event.llm_output,
                        iteration=ctx.iteration,
                    ),
                    event.feedback,
                )
            )
        elif isinstance(event, Acted) and self.plan is not None:
            return self._record_act(ctx, self.plan, event.results)
        return None

    # --- resuming -------------------------------------------------------------

    def _absorb_recorded(self, ctx: RunContext, event: Event) -> None:
        failure = self.failure
        try:
            self._absorb(ctx, event)
        except StopRun:  # that run went on to stop; what it recorded is kept
            self.failure = failure

    # --- helpers -------------------------------------------------------------

    def _record_act(
        self, ctx: RunContext, plan: Plan, results: Sequence[StepResult]
    ) -> StepResult | None:
        ctx._add_act(plan, results)
        ctx.last_results = results
        if len(results) == 1:
            fatal = results[0] if results[0].fatal else None
        else:
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
            cause = self.act_errors.get(fatal.step_id)
            failure.__cause__ = cause
            self.failure = failure
            raise StopRun(StopReason.error)
        if len(plan.steps) == 1:
            res = results[0]
            tool = self.cfg.tools.get(res.tool)
            handled = res.status is StepStatus.failed and res.error_type not in _NOT_HANDLED_BY_TOOL
            if (
                tool is not None
                and tool.return_direct
                and (res.status is StepStatus.succeeded or handled)
            ):
                return res
        return None

    def _visible_steps(self) -> Sequence[tuple[Action, Any]] | None:
        """The trimmed pairs, or ``None``: every pair, the live list, made when read
        (planners read it, never change it)."""
        trim = self.cfg.trim_intermediate_steps
        if callable(trim):
            return list(trim(list(self.ctx.all_steps)))
        if trim > 0:
            return self.ctx.all_steps[-trim:]
        return None

    def _rejected_output(self, exc: OutputParserError) -> Event:
        handle = self.cfg.handle_parsing_errors
        if handle is False:
            self.failure = ParsingFailed(
                f"could not parse the model's output: {exc}. Pass "
                "handle_parsing_errors=True to the Agent to send the error back to the "
                "model as an observation (or a string or a function to choose the text)"
            )
            self.failure.__cause__ = exc
            raise StopRun(StopReason.error)
        if handle is True:
            feedback = exc.observation or INVALID_RESPONSE
        elif isinstance(handle, str):
            feedback = handle
        else:
            feedback = str(handle(exc))
        return Rejected(error=str(exc), feedback=feedback, llm_output=exc.llm_output)

    def _check_guards(self, *, before_act: bool = False) -> None:
        limits = self.cfg.limits
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            raise StopRun(StopReason.max_execution_time)
        if before_act:
            return
        ctx = self.ctx
        if limits.max_iterations is not None and ctx.iteration >= limits.max_iterations:
            raise StopRun(StopReason.max_iterations)
        if limits.max_model_calls is not None and ctx.model_calls >= limits.max_model_calls:
            raise StopRun(StopReason.budget)
        if limits.max_tokens is not None and ctx.tokens >= limits.max_tokens:
            raise StopRun(StopReason.budget)

    async def _stop_output(self, reason: StopReason) -> Any:
        if reason not in (StopReason.max_iterations, StopReason.max_execution_time):
            return FORCE_STOP_MESSAGE if reason is StopReason.budget else None
        if self.cfg.early_stopping_method == "force":
            return FORCE_STOP_MESSAGE
        ctx = self.ctx
        ctx.final = True
        ctx._visible = self._visible_steps()
        timeout = self.cfg.limits.max_execution_time
        call = self.cfg.planner.final_answer(ctx)
        try:
            answer = await (asyncio.wait_for(call, timeout) if timeout else call)
        except OutputParserError as exc:
            return exc.llm_output or FORCE_STOP_MESSAGE
        except TimeoutError:
            return FORCE_STOP_MESSAGE
        return answer.output

    def _keep_cancelled_steps(self) -> None:
        if self.outcome is not None:
            self.steps.extend(self.outcome.results)
            self.outcome = None

    def _fail_from(self, exc: BaseException) -> None:
        if isinstance(exc, RunError):  # already says what failed
            self.failure = exc
            return
        state = self.machine.state
        what = "the planner" if state == LoopState.plan else f"state {state!r}"
        cls = PlannerFailed if state == LoopState.plan else RunError
        failure = cls(f"{what} raised {type(exc).__name__}: {exc}")
        failure.__cause__ = exc
        self.failure = failure

    def _stop_now(self, reason: StopReason, output: Any) -> None:
        if not self.machine.terminal:
            self.fire(Stopped(reason=reason, output=output))
        error = str(self.failure) if self.failure is not None else None
        self.trace.append(
            _run_ended(self.clock(), RunStatus.stopped, reason, output, self.ctx.iteration, error)
        )

    def _result(self) -> RunResult:
        trace = self.trace
        if self.paused is not None:
            return RunResult._lazy(
                self._pairs(),
                run_id=trace.run_id,
                output=None,
                status=RunStatus.paused,
                stop_reason=None,
                iterations=self.ctx.iteration,
                steps=list(self.steps),
                trace=trace,
            )
        ended = trace.ended
        if ended is None:
            event = self.last_event
            output = event.output if isinstance(event, Answered | ReturnedDirect) else None
            ended = _run_ended(
                self.clock(), RunStatus.finished, None, output, self.ctx.iteration, None
            )
            trace.append(ended)
        return RunResult._lazy(
            self._pairs(),
            run_id=trace.run_id,
            output=ended.output,
            status=ended.status,
            stop_reason=ended.stop_reason,
            iterations=ended.iterations,
            steps=list(self.steps),
            trace=trace,
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


_BUILTIN: dict[str, Callable[[_Run, RunContext], Awaitable[Event]]] = {
    LoopState.plan: _Run._plan,
    LoopState.act: _Run._act,
    LoopState.observe: _Run._observe,
}


def _note_callable_steps(record: dict[str, Any], plan: Plan) -> None:
    # Steps that run Python callables are stored by name only; a resume must know
    # which they are to rebuild or refuse them (see ``_resume.runnable``).
    callables = [s.id for s in plan.steps if not isinstance(s.tool, str)]
    if callables:
        record["callable_steps"] = callables


def _new_run_id() -> str:
    """``uuid.uuid4().hex``: the same bits, without the ``UUID`` object (a Python class
    whose constructor costs a short run a few per cent)."""
    n = int.from_bytes(os.urandom(16), "big")
    n = (n & _UUID4_KEEP) | _UUID4_SET  # RFC 4122 variant, version 4, as ``UUID(version=4)``
    return f"{n:032x}"


_UUID4_KEEP = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def _loop_offset() -> float:
    # asyncio.timeout takes loop time; the deadline is kept in perf_counter time.
    return asyncio.get_running_loop().time() - time.perf_counter()


_new_run_started = trusted_maker(RunStarted)
_new_run_ended = trusted_maker(RunEnded)


def _run_ended(
    t: float,
    status: RunStatus,
    reason: StopReason | None,
    output: Any,
    iterations: int,
    error: str | None,
) -> RunEnded:
    fields = {
        "t": t,
        "kind": "run_ended",
        "status": status,
        "stop_reason": reason,
        "output": output,
        "iterations": iterations,
        "error": error,
    }
    if type(iterations) is int:  # a handler may have set ctx.iteration to anything
        return _new_run_ended(fields)
    return RunEnded.model_validate(fields)


_STATUS_OF = attrgetter("status")
_VALUE_OF = {status: status.value for status in StepStatus}
"""Each status's value as a plain string (``.value`` is a Python-level property)."""
_CONTINUED = Continued()  # immutable and empty: one for every run


def _acted_payload(event: Acted) -> dict[str, Any]:
    results = event.results  # the results themselves are in the step_finished events
    if len(results) == 1:
        status = results[0].status
        return {"steps": 1, _VALUE_OF.get(status) or status.value: 1}
    # Counted by member in C (``.value`` is a Python-level property), named after.
    counts = Counter(map(_STATUS_OF, results))
    named = sorted((status.value, n) for status, n in counts.items())
    return {"steps": len(results), **dict(named)}


def _planned_payload(event: Planned) -> dict[str, Any]:
    # Every plan is recorded: its dump is on the hot path. It may be made when the
    # trace is read (see _DEFERRED), so it must not raise: a value whose repr
    # raises is written as what went wrong.
    try:
        return {"plan": plan_json(event.plan)}
    except Exception as exc:  # noqa: BLE001 - a trace record, not the run, is what failed
        return {"plan": None, "error": f"the plan could not be dumped: {type(exc).__name__}: {exc}"}


def _continued_payload(event: Continued) -> dict[str, Any]:
    return {}


def _output_payload(event: Answered | ReturnedDirect) -> dict[str, Any]:
    output = event.output
    if type(output) is str:  # a model's text (the usual answer) is its own JSON form
        return {"output": output}
    return event.model_dump(mode="json", fallback=repr)


_DEFERRED: dict[type[Event], Callable[[Any], dict[str, Any]]] = {
    Acted: _acted_payload,
    Planned: _planned_payload,
    Continued: _continued_payload,
}
"""The payload of the events of every iteration, by exact class (subclasses are
dumped), which a transition's row may make when the trace is read (see
:class:`StepLog`): frozen, made by the engine, holding only values that do not
change (an Acted's results, a Planned's plan), with dumps that do not raise."""

_PAYLOAD_OF: dict[type[Event], Callable[[Any], dict[str, Any]]] = {
    Answered: _output_payload,
    ReturnedDirect: _output_payload,
}
"""The payload of the answer's events, made at once (their output is the user's)."""

_NAMES: dict[str, str] = {}
"""State names as plain strings (a LoopState member's ``str()`` is a new string each time)."""


def _name(state: str) -> str:
    name = _NAMES[state] = str(state)
    return name


def _payload(event: Event) -> dict[str, Any]:
    if isinstance(event, Acted):
        return _acted_payload(event)
    if isinstance(event, Continued):
        return {}
    return event.model_dump(mode="json", fallback=repr)
