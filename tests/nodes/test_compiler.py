from __future__ import annotations

import threading

import pytest

from planloop import Agent, CompilerPlanner, OutputParserError, StepStatus, tool
from planloop.nodes.planners.compiler import parse_compiler_plan, parse_join
from planloop.testing import ScriptedModel, check_trace


@tool
def square(x: int) -> int:
    """Square a number."""
    return x * x


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def test_text_plans_with_references() -> None:
    plan = parse_compiler_plan(
        'Thought: go\n1. square(x=3)\n2. square(x="$1")\n3. add(a=$1, b=${2})\n4. join()\n'
    )
    assert [(s.id, s.tool, s.args) for s in plan.steps] == [
        ("1", "square", {"x": 3}),
        ("2", "square", {"x": {"$ref": "1"}}),
        ("3", "add", {"a": {"$ref": "1"}, "b": {"$ref": "2"}}),
    ]
    assert sorted(plan.graph().edges) == [("1", "2"), ("1", "3"), ("2", "3")]


def test_json_plans() -> None:
    plan = parse_compiler_plan(
        '[{"id": "a", "tool": "square", "args": {"x": 2}},'
        ' {"id": "b", "tool": "add", "args": {"a": {"$ref": "a"}, "b": 1}}]'
    )
    assert plan.dependencies(plan.by_id["b"]) == ("a",)


def test_unreadable_plans_and_joins() -> None:
    with pytest.raises(OutputParserError, match="step 1: cannot read the arguments"):
        parse_compiler_plan("1. square(3)")
    with pytest.raises(OutputParserError, match="no numbered tool calls found"):
        parse_compiler_plan("I will answer directly.")
    with pytest.raises(OutputParserError, match="the join reply has no Action"):
        parse_join("Thought: hmm")
    assert parse_join("Action: Replan(need more)") == ("replan", "need more")


def test_independent_calls_run_in_parallel_then_join() -> None:
    barrier = threading.Barrier(2, timeout=5)

    @tool
    def lookup(key: str) -> str:
        """Needs its sibling running at the same time."""
        barrier.wait()
        return key.upper()

    model = ScriptedModel(
        [
            '1. lookup(key="a")\n2. lookup(key="b")\n3. join()',
            "Thought: both there\nAction: Finish(A and B)",
        ]
    )
    result = Agent(model, [lookup], planner=CompilerPlanner()).run_sync("a and b?")
    assert result.output == "A and B"
    assert "1. lookup({'key': 'a'}) -> A" in model.requests[1].messages[0].content
    check_trace(result.trace)


def test_a_raising_tool_goes_to_the_join_which_replans() -> None:
    @tool
    def flaky_source(q: str) -> str:
        """Fails for 'bad'."""
        if q == "bad":
            raise ConnectionError("source down")
        return f"data for {q}"

    model = ScriptedModel(
        [
            '1. flaky_source(q="bad")\n2. square(x=$1)\n3. join()',
            "Thought: it failed\nAction: Replan(the source was down)",
            '1. flaky_source(q="good")\n2. join()',
            "Action: Finish(data for good)",
        ]
    )
    result = Agent(model, [flaky_source, square], planner=CompilerPlanner()).run_sync("go")
    assert result.output == "data for good"
    statuses = [(r.step_id, r.status) for r in result.steps]
    assert statuses[:2] == [("1", StepStatus.failed), ("2", StepStatus.skipped)]
    join_prompt = model.requests[1].messages[0].content
    assert "-> Error: ConnectionError: source down" in join_prompt
    assert "A previous plan was not enough: the source was down" in (
        model.requests[2].messages[0].content
    )


def test_replans_are_bounded() -> None:
    model = ScriptedModel(
        [
            "1. square(x=2)",
            "Action: Replan(more)",
            "1. square(x=3)",
            "Action: Replan(more)",
        ]
    )
    result = Agent(model, [square], planner=CompilerPlanner(max_replans=1)).run_sync("go")
    assert result.output == "Could not finish after 1 replans; last reason: more"


def test_invalid_plans_are_rejected_with_feedback() -> None:
    model = ScriptedModel(
        [
            "1. cube(x=2)\n2. add(a=$1, b=$9)",
            "1. square(x=2)",
            "Action: Finish(4)",
        ]
    )
    result = Agent(model, [square, add], planner=CompilerPlanner()).run_sync("go")
    assert result.output == "4"
    assert [str(s) for s in result.trace.states][:3] == ["plan", "observe", "plan"]
    feedback = result.intermediate_steps[0][1]
    assert "step '1' uses tool 'cube', which does not exist; use one of: add, square" in feedback
    assert "step '2' refers to '9', but there is no step '9'" in feedback
    assert "Your previous plan could not be used: invalid plan (2 problems)" in (
        model.requests[1].messages[0].content
    )
