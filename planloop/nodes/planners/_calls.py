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
from planloop.engine.plan import Plan, Step, independent_plan
from planloop.engine.steps import Action
from planloop.models.messages import ChatMessage, ToolCall

__all__ = ["observation_text", "plan_from_calls", "tool_call_history"]

_new_step = trusted_maker(Step)
_new_message = trusted_maker(ChatMessage)
_new_call = trusted_maker(ToolCall)


def plan_from_calls(calls: Sequence[ToolCall], log: str = "") -> Plan:
    """One independent step per call; steps get the call ids when they are unique."""
    if len(calls) == 1 and type(calls[0]) is ToolCall and type(log) is str:
        call = calls[0]
        steps: tuple[Step, ...] = (_step(call.id if call.id else "call_1", call),)
    elif not all(type(c) is ToolCall for c in calls) or type(log) is not str:
        return _validated_plan(calls, log)
    else:
        ids = [c.id for c in calls]
        usable = all(ids) and len(set(ids)) == len(ids)
        steps = tuple(
            _step(call.id if usable and call.id else f"call_{i}", call)
            for i, call in enumerate(calls, 1)
        )
    return independent_plan(steps, log)


def _step(step_id: str, call: ToolCall) -> Step:
    args = call.args
    step = _new_step(
        {
            "id": step_id,
            "tool": call.name,
            "args": dict(args),
            "depends_on": (),
            "timeout": None,
            "retry": None,
        }
    )
    cached = step.__dict__
    cached["tool_name"] = call.name
    for value in args.values():
        if type(value) in _NESTED:
            return step
    cached["references"] = ()  # a reference is a dict value: there is none
    return step


_NESTED = (dict, list, tuple)


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
    iteration = None  # the group's
    for pair in steps:
        action = pair[0]
        if action.tool == "_Exception":
            if group:
                _add_group(messages, group)
                group = []
            if action.log:
                messages.append(_message("assistant", action.log))
            messages.append(_message("user", observation_text(pair[1])))
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
        [
            _new_call(
                {
                    "name": a.tool,
                    "args": a.tool_input if isinstance(a.tool_input, dict) else {},
                    "id": a.step_id,
                }
            )
            for a, _ in group
        ]
    )
    add = messages.append
    new = _new_message
    add(
        new(
            {
                "role": "assistant",
                "content": group[0][0].log,
                "tool_calls": calls,
                "tool_call_id": None,
                "name": None,
            }
        )
    )
    for action, obs in group:
        add(
            new(
                {
                    "role": "tool",
                    "content": obs if type(obs) is str else str(obs),
                    "tool_calls": (),
                    "tool_call_id": action.step_id,
                    "name": action.tool,
                }
            )
        )
