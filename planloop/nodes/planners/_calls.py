"""Shared by the planners: tool calls to plans, and the run so far as chat messages.

These run once per model call, so the messages, calls and steps they make are
built without a second pydantic validation (see :mod:`planloop.engine._trusted`):
every value comes from an already validated :class:`ToolCall` or
:class:`~planloop.engine.steps.Action` and has the field's type.
``tests/nodes/test_calls.py`` holds them equal to the validated ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from planloop.engine._trusted import trusted_maker
from planloop.engine.plan import Plan, Step
from planloop.engine.steps import Action
from planloop.models.messages import ChatMessage, ToolCall

__all__ = ["observation_text", "plan_from_calls", "tool_call_history"]

_new_step = trusted_maker(Step)
_new_plan = trusted_maker(Plan)
_new_message = trusted_maker(ChatMessage)
_new_call = trusted_maker(ToolCall)


def plan_from_calls(calls: Sequence[ToolCall], log: str = "") -> Plan:
    """One independent step per call; steps get the call ids when they are unique."""
    if not all(type(c) is ToolCall for c in calls) or type(log) is not str:
        return _validated_plan(calls, log)
    if len(calls) == 1:
        call = calls[0]
        sid = call.id if call.id else "call_1"
        steps: tuple[Step, ...] = (_step(sid, call),)
    else:
        ids = [c.id for c in calls]
        usable = all(ids) and len(set(ids)) == len(ids)
        steps = tuple(
            _step(call.id if usable and call.id else f"call_{i}", call)
            for i, call in enumerate(calls, 1)
        )
    return _new_plan({"steps": steps, "log": log})


def _step(step_id: str, call: ToolCall) -> Step:
    return _new_step(
        {
            "id": step_id,
            "tool": call.name,
            "args": dict(call.args),
            "depends_on": (),
            "timeout": None,
            "retry": None,
        }
    )


def _validated_plan(calls: Sequence[ToolCall], log: str) -> Plan:
    ids = [c.id for c in calls]
    usable = all(ids) and len(set(ids)) == len(ids)
    steps = [
        Step(id=str(call.id) if usable else f"call_{i}", tool=call.name, args=dict(call.args))
        for i, call in enumerate(calls, 1)
    ]
    return Plan(steps, log=log)


def observation_text(observation: Any) -> str:
    return observation if isinstance(observation, str) else str(observation)


def _message(
    role: str,
    content: str,
    tool_calls: tuple[ToolCall, ...] = (),
    tool_call_id: str | None = None,
    name: str | None = None,
) -> ChatMessage:
    return _new_message(
        {
            "role": role,
            "content": content,
            "tool_calls": tool_calls,
            "tool_call_id": tool_call_id,
            "name": name,
        }
    )


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
            _new_call(
                {
                    "name": a.tool,
                    "args": a.tool_input if isinstance(a.tool_input, dict) else {},
                    "id": a.step_id,
                }
            )
            for a, _ in group
        )
        messages.append(_message("assistant", first.log, calls))
        for action, obs in group:
            messages.append(
                _message("tool", observation_text(obs), (), action.step_id, action.tool)
            )
        group.clear()

    for action, obs in steps:
        if action.tool == "_Exception":
            flush()
            if action.log:
                messages.append(_message("assistant", action.log))
            messages.append(_message("user", observation_text(obs)))
            continue
        if group and group[0][0].iteration != action.iteration:
            flush()
        group.append((action, obs))
    flush()
    return messages
