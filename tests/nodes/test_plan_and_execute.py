from __future__ import annotations

import json

import pytest

from planloop import (
    OutputParserError,
    PlanAndExecute,
    PlanningOutputParser,
    StepResponse,
    load_agent_executor,
    load_chat_planner,
    tool,
)
from planloop.models import ToolCall
from planloop.testing import ScriptedModel, check_trace

PLAN = "Plan:\n1. Find the population of Oslo\n2. Double it\n<END_OF_PLAN>"


@tool
def population(city: str) -> int:
    """Population of a city."""
    return {"Oslo": 717_710}[city]


def test_parser_reads_every_numbering_style_and_keeps_the_first_step() -> None:
    parse = PlanningOutputParser().parse
    assert parse("1. a\n2. b") == ["a", "b"]
    assert parse("Plan:\n1) a\n2) b") == ["a", "b"]
    assert parse("Step 1: a\nStep 2: b\n<END_OF_PLAN>") == ["a", "b"]
    assert parse("Here is my plan\n1. a long\n   step\n2. b") == ["a long step", "b"]
    with pytest.raises(OutputParserError, match="no numbered steps in the plan"):
        parse("I would just answer.")


def test_steps_run_in_order_with_previous_steps_as_text() -> None:
    planner_model = ScriptedModel([PLAN])
    executor_model = ScriptedModel(
        [
            ToolCall("population", {"city": "Oslo"}),
            "Oslo has 717710 people.",
            "Doubled: 1435420.",
        ]
    )
    pe = PlanAndExecute(
        load_chat_planner(planner_model), load_agent_executor(executor_model, [population])
    )
    result = pe.run_sync("What is twice the population of Oslo?")
    assert result.output == "Doubled: 1435420."
    assert [str(s) for s in result.trace.states] == ["plan", "act", "observe", "plan", "finish"]
    assert [r.step_id for r in result.steps] == ["step_1", "step_2"]
    assert [r.output for r in result.steps] == [
        StepResponse(response="Oslo has 717710 people."),
        StepResponse(response="Doubled: 1435420."),
    ]
    second_prompt = executor_model.requests[2].messages[0].content
    assert second_prompt == (
        "Previous steps: Step: Find the population of Oslo\n\n"
        "Response: Oslo has 717710 people.\n\nCurrent objective: Double it"
    )
    assert sorted(result.trace.children) == ["step_1", "step_2"]
    child = result.trace.children["step_1"]
    assert [str(s) for s in child.states] == ["plan", "act", "observe", "plan", "finish"]
    check_trace(result.trace)
    for child in result.trace.children.values():
        check_trace(child)
    # the planner asked for structured output
    assert planner_model.requests[0].response_schema is not None


def test_structured_plans_are_used_when_the_model_gives_json() -> None:
    planner_model = ScriptedModel([json.dumps({"steps": ["only step"]})])
    pe = PlanAndExecute(
        load_chat_planner(planner_model), load_agent_executor(ScriptedModel(["done it"]), [])
    )
    assert pe.run_sync("x").output == "done it"


def test_nothing_leaks_between_runs() -> None:
    planner_model = ScriptedModel(["1. first", "1. again"])
    executor_model = ScriptedModel(["one", "two"])
    pe = PlanAndExecute(load_chat_planner(planner_model), load_agent_executor(executor_model, []))
    assert pe.run_sync("a").output == "one"
    assert pe.run_sync("b").output == "two"
    assert executor_model.requests[1].messages[0].content == (
        "Previous steps: None.\n\nCurrent objective: again"
    )


def test_replanning_after_each_step() -> None:
    planner_model = ScriptedModel(["1. look\n2. guess", "1. confirm", "Final Answer: confirmed"])
    executor_model = ScriptedModel(["looked", "confirmed it"])
    pe = PlanAndExecute(
        load_chat_planner(planner_model), load_agent_executor(executor_model, []), replan=True
    )
    result = pe.run_sync("task")
    assert result.output == "confirmed"
    assert [r.step_id for r in result.steps] == ["step_1", "step_2"]
    assert "1. look\n   Result: looked" in planner_model.requests[1].messages[1].content
    assert result.iterations == 2


# --- durable runs: what the planner rebuilds from the store ----------------------------


def test_stored_step_outputs_are_read_back_as_step_responses() -> None:
    from planloop.engine.durable import DurablePlanner
    from planloop.engine.states import StepStatus
    from planloop.engine.steps import StepResult

    pe = PlanAndExecute(load_chat_planner(ScriptedModel([])), load_agent_executor(None, []))
    planner = pe._loop_config().planner
    assert isinstance(planner, DurablePlanner)
    stored = StepResult(
        step_id="step_1", tool="execute_step", status=StepStatus.succeeded, output={"response": "x"}
    )
    assert planner.restore_result(stored).output == StepResponse(response="x")
    other = stored.model_copy(update={"tool": "search"})
    assert planner.restore_result(other) is other
    odd = stored.model_copy(update={"output": {"text": "x"}})
    assert planner.restore_result(odd) is odd


def test_a_rejected_plan_is_asked_for_again_and_done_steps_count_once() -> None:
    from planloop import Approve, Reject

    planner_model = ScriptedModel(
        ["1. look\n2. guess", "1. look carefully", "1. confirm", "Final Answer: confirmed"]
    )
    executor_model = ScriptedModel(["looked", "confirmed it"])
    pe = PlanAndExecute(
        load_chat_planner(planner_model),
        load_agent_executor(executor_model, []),
        replan=True,
        interrupt_before=["act"],
    )
    run = pe.run_sync("task")
    run = pe.resume_sync(run.run_id, Reject(message="be careful"))
    assert planner_model.requests[1].messages[1].content == (
        "task\n\nThe previous plan was not accepted: be careful\nMake another plan."
    )
    run = pe.resume_sync(run.run_id, Approve())  # "look carefully"
    run = pe.resume_sync(run.run_id, Approve())  # "confirm"
    assert (run.status, run.output) == ("finished", "confirmed")
    replan_prompt = planner_model.requests[3].messages[1].content
    assert replan_prompt.count("1. look carefully\n   Result: looked") == 1
    assert "2. confirm\n   Result: confirmed it" in replan_prompt
    assert "3." not in replan_prompt
