"""A planner that is a plain Python function."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from planloop.engine.loop import FORCE_STOP_MESSAGE
from planloop.engine.plan import Plan
from planloop.engine.planner import Answer, RunContext
from planloop.models.messages import ToolCall
from planloop.nodes.planners._calls import next_call_number, plan_from_calls

__all__ = ["FunctionPlanner", "PlannerFunction"]

Decision = Plan | Answer | ToolCall | Sequence[ToolCall] | str
PlannerFunction = Callable[[RunContext], Decision | Awaitable[Decision]]


class FunctionPlanner:
    """Plan with a Python function of the run context (sync or async).

    The function returns a :class:`~planloop.Plan`, an :class:`~planloop.Answer`,
    a :class:`~planloop.models.ToolCall` or a list of them (parallel steps), or
    a string (the answer). A sync function runs on the event loop's thread, so
    keep it quick; do slow work in tools.

    With ``early_stopping_method="generate"`` the run asks ``final(ctx)`` for
    the answer, or, without ``final``, calls the function again with
    ``ctx.final`` set; if that still returns a plan, the output is the forced
    stop message.

    Example:
        >>> from planloop import Agent
        >>> def planner(ctx):
        ...     if not ctx.intermediate_steps:
        ...         return ToolCall("echo", {"text": "hi"})
        ...     return Answer(f"echo said {ctx.intermediate_steps[-1][1]}")
        >>> def echo(text: str) -> str:
        ...     return text
        >>> Agent(None, [echo], planner=FunctionPlanner(planner)).run_sync("go").output
        'echo said hi'
    """

    def __init__(self, fn: PlannerFunction, *, final: PlannerFunction | None = None) -> None:
        self.fn = fn
        self.final = final

    async def plan(self, ctx: RunContext) -> Plan | Answer:
        return _decision(await _call(self.fn, ctx), ctx)

    async def final_answer(self, ctx: RunContext) -> Answer:
        decision = _decision(await _call(self.final or self.fn, ctx), ctx)
        if isinstance(decision, Answer):
            return decision
        return Answer(FORCE_STOP_MESSAGE)


async def _call(fn: PlannerFunction, ctx: RunContext) -> Decision:
    value = fn(ctx)
    if inspect.isawaitable(value):
        value = await value
    return value


def _decision(value: Any, ctx: RunContext) -> Plan | Answer:
    if isinstance(value, Plan | Answer):
        return value
    if isinstance(value, str):
        return Answer(value)
    if isinstance(value, ToolCall):
        return plan_from_calls([value], first=next_call_number(ctx))
    if isinstance(value, Sequence) and value and all(isinstance(v, ToolCall) for v in value):
        return plan_from_calls(list(value), first=next_call_number(ctx))
    raise TypeError(
        f"the planner function returned {type(value).__name__}; return a Plan, an Answer, "
        "a ToolCall, a list of ToolCalls or a string"
    )
