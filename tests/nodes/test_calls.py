"""The planners' messages, calls and plans equal the same records validated from their dumps."""

from __future__ import annotations

from typing import Any

import pytest

import planloop
from planloop import Plan, Step
from planloop.engine.steps import Action
from planloop.models import ChatMessage, ToolCall
from planloop.nodes.planners._calls import plan_from_calls, tool_call_history


def _same(built: Any) -> None:
    cls = type(built)
    assert set(built.__dict__) >= set(cls.model_fields), cls.__name__
    validated = cls.model_validate(built.model_dump())
    assert validated == built
    assert cls.model_validate_json(built.model_dump_json()) == validated


@pytest.mark.parametrize(
    "calls",
    [
        [ToolCall("add", {"a": 1, "b": {"$ref": "x"}}, id="c1")],
        [ToolCall("add", {"a": 1})],
        [ToolCall("add", {"a": 1}, id="same"), ToolCall("mul", {}, id="same")],
        [ToolCall("add", {"a": 1}, id="p"), ToolCall("mul", {"b": [1, 2]}, id="q")],
    ],
)
def test_plans_from_calls_equal_validated_plans(calls: list[ToolCall]) -> None:
    plan = plan_from_calls(calls, log="thinking")
    _same(plan)
    for step in plan.steps:
        _same(step)
    ids = [c.id for c in calls]
    usable = all(ids) and len(set(ids)) == len(ids)
    expected = Plan(
        [
            Step(id=str(c.id) if usable else f"call_{i}", tool=c.name, args=dict(c.args))
            for i, c in enumerate(calls, 1)
        ],
        log="thinking",
    )
    assert plan == expected
    assert plan.index == expected.index
    assert plan.problems() == expected.problems()
    assert plan.steps[0].args is not calls[0].args  # the plan owns its arguments


def test_history_messages_equal_validated_messages() -> None:
    steps = [
        (Action(tool="add", tool_input={"a": 1}, log="", step_id="c1", iteration=0), 3),
        (Action(tool="mul", tool_input="x", log="", step_id="c2", iteration=0), "ok"),
        (Action(tool="_Exception", tool_input="bad", log="oops", iteration=1), "bad"),
    ]
    messages = tool_call_history(steps)
    for message in messages:
        _same(message)
        for call in message.tool_calls:
            _same(call)
    assert messages == [
        ChatMessage(
            role="assistant",
            tool_calls=(ToolCall("add", {"a": 1}, id="c1"), ToolCall("mul", {}, id="c2")),
        ),
        ChatMessage(role="tool", content="3", tool_call_id="c1", name="add"),
        ChatMessage(role="tool", content="ok", tool_call_id="c2", name="mul"),
        ChatMessage(role="assistant", content="oops"),
        ChatMessage(role="user", content="bad"),
    ]


def test_a_tools_schema_is_built_when_the_tool_is() -> None:
    def add(a: int, b: int = 2) -> int:
        """Add."""
        return a + b

    t = planloop.Tool(add)
    assert "spec" in t.__dict__
    assert t.spec.parameters["required"] == ["a"]


class Opaque:
    pass


def test_a_tool_whose_schema_cannot_be_written_still_runs() -> None:
    def use(thing: Opaque) -> str:
        """Use a thing."""
        return "used"

    t = planloop.Tool(use)
    assert t.invoke({"thing": Opaque()}) == "used"
    with pytest.raises(Exception, match="Opaque"):
        _ = t.spec
