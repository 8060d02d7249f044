"""What a run does in the built-in states ``plan``, ``act`` and ``observe``.

Each is a function of the run and its context that returns the event leaving
the state. Limits are guards checked here: before ``plan`` and ``act`` are
entered, and before ``observe`` continues.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from planloop.engine._resume import act_in_rounds
from planloop.engine._run import Run
from planloop.engine.approval import approval_ids
from planloop.engine.config import FORCE_STOP_MESSAGE, INVALID_RESPONSE
from planloop.engine.events import (
    Acted,
    Answered,
    Continued,
    Event,
    Planned,
    Rejected,
    ReturnedDirect,
)
from planloop.engine.plan import Plan
from planloop.engine.planner import Answer, RunContext, StopRun
from planloop.engine.scheduler import ActOutcome
from planloop.engine.states import LoopState, StopReason
from planloop.engine.steps import Action
from planloop.errors import (
    InvalidPlan,
    OutputParserError,
    ParsingFailed,
    PauseForApproval,
)

__all__ = ["BUILTIN", "check_guards", "stop_output"]

_CONTINUED = Continued()  # immutable and empty: one for every run


async def plan_state(run: Run, ctx: RunContext) -> Event:
    """Ask the planner for the next move: a plan to act on, an answer, or feedback."""
    check_guards(run)
    ctx._visible = visible_steps(run)
    try:
        decision = await run.cfg.planner.plan(ctx)
    except OutputParserError as exc:
        return _rejected_output(run, exc)
    except InvalidPlan as exc:  # a planner's invalid plan goes back to it as feedback
        return Rejected(error="invalid plan", feedback=str(exc))
    if isinstance(decision, Answer):
        return Answered(output=decision.output)
    if isinstance(decision, Plan):
        problems = decision.problems(max_steps=run.cfg.max_plan_steps)
        if problems:
            feedback = str(InvalidPlan(problems))
            return Rejected(error="invalid plan", feedback=feedback, llm_output=decision.log)
        check_guards(run, before_act=True)
        run.plan = decision
        return Planned(plan=decision)
    raise TypeError(
        f"the planner returned {type(decision).__name__}; it must return a Plan or an Answer"
    )


async def act_state(run: Run, ctx: RunContext) -> Event:
    """Run the plan's steps to a terminal status each."""
    plan = run.plan
    assert plan is not None
    run.acts += 1
    outcome = run.outcome = ActOutcome()
    gates = approval_ids(plan.steps)
    resumed, run.resumed_done = run.resumed_done, None
    kept = 0
    if resumed is None and not gates:
        await run.execute(plan)
    else:
        kept = len(resumed or ())
        try:
            await act_in_rounds(run, plan, gates, dict(resumed or {}), outcome)
        except PauseForApproval:
            run.steps.extend(outcome.results[kept:])
            run.outcome = None
            raise
    run.outcome = None
    run.steps.extend(outcome.results[kept:])
    run.act_errors = outcome.errors
    return Acted(results=tuple(outcome.results))


async def observe_state(run: Run, ctx: RunContext) -> Event:
    """Turn what happened into observations; end with a direct return, or plan again."""
    ctx.iteration += 1
    direct = run.absorb(run.last_event)
    if direct is not None:
        return ReturnedDirect(output=direct.output)
    check_guards(run)
    return _CONTINUED


BUILTIN: dict[str, Callable[[Run, RunContext], Awaitable[Event]]] = {
    LoopState.plan: plan_state,
    LoopState.act: act_state,
    LoopState.observe: observe_state,
}
"""The built-in states' functions, by state (module functions: a run holding bound
methods of itself would be a reference cycle, left to the cyclic garbage collector)."""


def visible_steps(run: Run) -> Sequence[tuple[Action, Any]] | None:
    """The trimmed pairs, or ``None``: every pair, the live list, made when read
    (planners read it, never change it)."""
    trim = run.cfg.trim_intermediate_steps
    if callable(trim):
        return list(trim(list(run.ctx.all_steps)))
    if trim > 0:
        return run.ctx.all_steps[-trim:]
    return None


def _rejected_output(run: Run, exc: OutputParserError) -> Event:
    handle = run.cfg.handle_parsing_errors
    if handle is False:
        run.failure = ParsingFailed(
            f"could not parse the model's output: {exc}. Pass "
            "handle_parsing_errors=True to the Agent to send the error back to the "
            "model as an observation (or a string or a function to choose the text)"
        )
        run.failure.__cause__ = exc
        raise StopRun(StopReason.error)
    if handle is True:
        feedback = exc.observation or INVALID_RESPONSE
    elif isinstance(handle, str):
        feedback = handle
    else:
        feedback = str(handle(exc))
    return Rejected(error=str(exc), feedback=feedback, llm_output=exc.llm_output)


def check_guards(run: Run, *, before_act: bool = False) -> None:
    """Stop the run (:class:`StopRun`) when a limit is reached."""
    limits = run.cfg.limits
    if run.deadline is not None and time.perf_counter() >= run.deadline:
        raise StopRun(StopReason.max_execution_time)
    if before_act:
        return
    ctx = run.ctx
    if limits.max_iterations is not None and ctx.iteration >= limits.max_iterations:
        raise StopRun(StopReason.max_iterations)
    if limits.max_model_calls is not None and ctx.model_calls >= limits.max_model_calls:
        raise StopRun(StopReason.budget)
    if limits.max_tokens is not None and ctx.tokens >= limits.max_tokens:
        raise StopRun(StopReason.budget)


async def stop_output(run: Run, reason: StopReason) -> Any:
    """The output of a run stopped for ``reason``, as ``early_stopping_method`` says."""
    if reason not in (StopReason.max_iterations, StopReason.max_execution_time):
        return FORCE_STOP_MESSAGE if reason is StopReason.budget else None
    if run.cfg.early_stopping_method == "force":
        return FORCE_STOP_MESSAGE
    ctx = run.ctx
    ctx.final = True
    ctx._visible = visible_steps(run)
    timeout = run.cfg.limits.max_execution_time
    call = run.cfg.planner.final_answer(ctx)
    try:
        answer = await (asyncio.wait_for(call, timeout) if timeout else call)
    except OutputParserError as exc:
        return exc.llm_output or FORCE_STOP_MESSAGE
    except TimeoutError:
        return FORCE_STOP_MESSAGE
    return answer.output
