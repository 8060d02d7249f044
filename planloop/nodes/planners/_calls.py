"""Shared by the planners: tool calls to plans, and the run so far as chat messages.

The steps and messages made here come from already validated :class:`ToolCall`
and :class:`~planloop.engine.steps.Action` records; they are built by normal
pydantic construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from planloop.engine.plan import Plan, Step, independent_plan
from planloop.engine.planner import RunContext
from planloop.engine.steps import Action
from planloop.models.messages import ChatMessage, ToolCall

__all__ = ["next_call_number", "observation_text", "plan_from_calls", "tool_call_history"]


def plan_from_calls(calls: Sequence[ToolCall], log: str = "", *, first: int = 1) -> Plan:
    """One independent step per call; steps get the call ids when they are unique.

    Otherwise they are numbered ``call_<first>``, ``call_<first + 1>`` ...: the
    planners pass the number of actions the run has taken so far plus one, so a
    step id names one step of the whole run, not only of its plan.
    """
    ids = [call.id for call in calls]
    usable = all(ids) and len(set(ids)) == len(ids)
    steps = tuple(
        Step(id=str(call.id) if usable else f"call_{i}", tool=call.name, args=call.args)
        for i, call in enumerate(calls, first)
    )
    return independent_plan(steps, log)


def next_call_number(ctx: RunContext) -> int:
    """The number the run's next unnamed tool call gets (its actions so far, plus one)."""
    return len(ctx.all_steps) + 1


def observation_text(observation: Any) -> str:
    return observation if isinstance(observation, str) else str(observation)


def tool_call_history(steps: Iterable[tuple[Action, Any]]) -> list[ChatMessage]:
    """Assistant messages with tool calls, each followed by its tool results.

    Actions of one iteration came from one model message, so they are grouped
    back into one assistant message. A rejected output (``_Exception``) becomes
    the model's text followed by the feedback as a user message.
    """
    messages: list[ChatMessage] = []
    group: list[tuple[Action, Any]] = []
    iteration = None  # the group's
    for pair in steps:
        action = pair[0]
        if action.tool == "_Exception":
            if group:
                _add_group(messages, group)
                group = []
            if action.log:
                messages.append(ChatMessage(role="assistant", content=action.log))
            messages.append(ChatMessage(role="user", content=observation_text(pair[1])))
            continue
        if not group:
            iteration = action.iteration
        elif iteration != action.iteration:
            _add_group(messages, group)
            group = []
            iteration = action.iteration
        group.append(pair)
    if group:
        _add_group(messages, group)
    return messages


def _add_group(messages: list[ChatMessage], group: list[tuple[Action, Any]]) -> None:
    calls = tuple(
        ToolCall(
            name=action.tool,
            args=action.tool_input if isinstance(action.tool_input, dict) else {},
            id=action.step_id,
        )
        for action, _ in group
    )
    messages.append(ChatMessage(role="assistant", content=group[0][0].log, tool_calls=calls))
    messages.extend(
        ChatMessage(
            role="tool",
            content=observation_text(obs),
            tool_call_id=action.step_id,
            name=action.tool,
        )
        for action, obs in group
    )
