"""Shared by the planners: tool calls to plans, and the run so far as chat messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from planloop.engine.plan import Plan, Step
from planloop.engine.steps import Action
from planloop.models.messages import ChatMessage, ToolCall

__all__ = ["observation_text", "plan_from_calls", "tool_call_history"]


def plan_from_calls(calls: Sequence[ToolCall], log: str = "") -> Plan:
    """One independent step per call; steps get the call ids when they are unique."""
    ids = [c.id for c in calls]
    usable = all(ids) and len(set(ids)) == len(ids)
    steps = [
        Step(id=str(call.id) if usable else f"call_{i}", tool=call.name, args=dict(call.args))
        for i, call in enumerate(calls, 1)
    ]
    return Plan(steps, log=log)


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

    def flush() -> None:
        if not group:
            return
        first = group[0][0]
        calls = tuple(
            ToolCall(a.tool, a.tool_input if isinstance(a.tool_input, dict) else {}, id=a.step_id)
            for a, _ in group
        )
        messages.append(ChatMessage(role="assistant", content=first.log, tool_calls=calls))
        for action, obs in group:
            messages.append(
                ChatMessage(
                    role="tool",
                    content=observation_text(obs),
                    tool_call_id=action.step_id,
                    name=action.tool,
                )
            )
        group.clear()

    for action, obs in steps:
        if action.tool == "_Exception":
            flush()
            if action.log:
                messages.append(ChatMessage(role="assistant", content=action.log))
            messages.append(ChatMessage(role="user", content=observation_text(obs)))
            continue
        if group and group[0][0].iteration != action.iteration:
            flush()
        group.append((action, obs))
    flush()
    return messages
