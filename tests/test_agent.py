"""The agent loop end to end, against scripted models and real tools."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from planloop import (
    Agent,
    Answer,
    Continued,
    DefinitionError,
    Event,
    FunctionPlanner,
    LoopState,
    MachineSpec,
    ParsingFailed,
    PlannerFailed,
    RunContext,
    RunStatus,
    StepFailed,
    StepStatus,
    Stopped,
    StopReason,
    StopRun,
    tool,
)
from planloop.models import ToolCall
from planloop.testing import ScriptedModel, check_trace

FORCE = "Agent stopped due to iteration limit or time limit."
DEADLINE_SLACK = 3.0
"""Seconds a run may take past its time limit on a slow, shared machine; the tools and
the model of the deadline tests below hang for 30 s or more, so a hang still fails."""


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first.
        b: the second.
    """
    return a + b


@tool(return_direct=True)
def final_lookup(key: str) -> str:
    """Look a key up and end the run with it."""
    return f"value of {key}"


@tool
def explode(reason: str) -> str:
    """Always raises."""
    raise RuntimeError(f"boom: {reason}")


def states(result: Any) -> list[str]:
    return [str(s) for s in result.trace.states]


def test_tool_call_then_answer() -> None:
    model = ScriptedModel([ToolCall("add", {"a": 2, "b": 3}), "5"])
    result = Agent(model, [add]).run_sync("2+3?")
    assert result.output == "5"
    assert result.status is RunStatus.finished and result.stop_reason is None
    assert result.iterations == 1
    assert states(result) == ["plan", "act", "observe", "plan", "finish"]
    [(action, observation)] = result.intermediate_steps
    assert (action.tool, action.tool_input, observation) == ("add", {"a": 2, "b": 3}, 5)
    assert [s.status for s in result.steps] == [StepStatus.succeeded]
    check_trace(result.trace)
    # the second request shows the model its call and the tool's result
    second = model.requests[1].messages
    assert [m.role for m in second] == ["user", "assistant", "tool"]
    assert second[2].content == "5" and second[2].tool_call_id == second[1].tool_calls[0].id


def test_several_calls_in_one_message_run_concurrently_and_count_once() -> None:
    spans: dict[str, tuple[float, float]] = {}
    both_started = threading.Barrier(2, timeout=5)

    @tool
    def slow(name: str) -> str:
        """Sleep a little."""
        start = time.perf_counter()
        both_started.wait()  # only passes if the two calls run at the same time
        spans[name] = (start, time.perf_counter())
        return name

    model = ScriptedModel(
        [[ToolCall("slow", {"name": "x"}), ToolCall("slow", {"name": "y"})], "done"]
    )
    result = Agent(model, [slow]).run_sync("go")
    assert result.iterations == 1
    assert [obs for _, obs in result.intermediate_steps] == ["x", "y"]
    assert sorted(spans) == ["x", "y"]
    check_trace(result.trace)


def test_unknown_tool_becomes_observation_and_never_returns_direct() -> None:
    model = ScriptedModel([ToolCall("search", {"q": "x"}), "ok"])
    result = Agent(model, [add, final_lookup]).run_sync("go")
    assert result.intermediate_steps[0][1] == (
        "search is not a valid tool, try one of [add, final_lookup]."
    )
    assert result.output == "ok"
    assert result.steps[0].status is StepStatus.failed and not result.steps[0].fatal


def test_return_direct_ends_the_run_with_the_observation() -> None:
    model = ScriptedModel([ToolCall("final_lookup", {"key": "k"})])
    result = Agent(model, [final_lookup]).run_sync("go")
    assert result.output == "value of k"
    assert states(result) == ["plan", "act", "observe", "finish"]
    assert result.trace.transitions[-1].event == "ReturnedDirect"


def test_return_direct_needs_a_single_step_plan() -> None:
    model = ScriptedModel(
        [
            [ToolCall("final_lookup", {"key": "k"}), ToolCall("add", {"a": 1, "b": 1})],
            "both done",
        ]
    )
    result = Agent(model, [final_lookup, add]).run_sync("go")
    assert result.output == "both done"


def test_arguments_that_fail_the_schema_become_an_observation() -> None:
    model = ScriptedModel([ToolCall("add", {"a": "two", "c": 1}), "gave up"])
    result = Agent(model, [add]).run_sync("go")
    assert result.output == "gave up"
    assert result.intermediate_steps[0][1] == (
        "invalid arguments for tool 'add': a: Input should be a valid integer, unable to parse "
        "string as an integer (got 'two'); b: missing (this argument is required); "
        "c: unexpected argument"
    )


def test_tool_error_stops_the_run_and_raises_with_the_partial_result() -> None:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1}), ToolCall("explode", {"reason": "x"})])
    agent = Agent(model, [add, explode])
    with pytest.raises(StepFailed) as info:
        agent.run_sync("go")
    err = info.value
    assert isinstance(err.__cause__, RuntimeError) and str(err.__cause__) == "boom: x"
    assert err.tool == "explode"
    result = err.result
    assert result is not None
    assert result.status is RunStatus.stopped and result.stop_reason is StopReason.error
    assert states(result) == ["plan", "act", "observe", "plan", "act", "observe", "stopped"]
    assert len(result.intermediate_steps) == 2  # nothing recorded is lost
    assert result.trace.ended is not None and "boom: x" in (result.trace.ended.error or "")
    check_trace(result.trace)


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (True, "boom: x"),
        ("the tool failed, try something else", "the tool failed, try something else"),
        (lambda e: f"handled {type(e).__name__}", "handled RuntimeError"),
    ],
)
def test_handle_tool_error_turns_errors_into_observations(handler: Any, expected: str) -> None:
    @tool(handle_tool_error=handler)
    def fragile(reason: str) -> str:
        """Raises."""
        raise RuntimeError(f"boom: {reason}")

    model = ScriptedModel([ToolCall("fragile", {"reason": "x"}), "recovered"])
    result = Agent(model, [fragile]).run_sync("go")
    assert result.output == "recovered"
    assert result.intermediate_steps[0][1] == expected


def test_max_iterations_forces_the_stop_message() -> None:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1})] * 10)
    result = Agent(model, [add], max_iterations=3).run_sync("go")
    assert result.status is RunStatus.stopped
    assert result.stop_reason is StopReason.max_iterations
    assert result.output == FORCE
    assert result.iterations == 3 and len(model.requests) == 3
    check_trace(result.trace)


@pytest.mark.parametrize("limit", [{"max_iterations": 0}, {"max_execution_time": 0}])
def test_zero_limits_stop_before_any_model_call(limit: dict[str, Any]) -> None:
    model = ScriptedModel(["never"])
    result = Agent(model, [add], **limit).run_sync("go")
    assert model.requests == []
    assert result.status is RunStatus.stopped
    assert states(result) == ["plan", "stopped"]
    assert result.stop_reason is StopReason(next(iter(limit)))


def test_max_iterations_none_is_unbounded() -> None:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1})] * 40 + ["done"])
    result = Agent(model, [add], max_iterations=None).run_sync("go")
    assert result.output == "done" and result.iterations == 40


def test_generate_asks_the_tool_calling_model_once_more() -> None:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1})] * 2 + ["the sum is 2"])
    result = Agent(model, [add], max_iterations=2, early_stopping_method="generate").run_sync("go")
    assert result.stop_reason is StopReason.max_iterations
    assert result.output == "the sum is 2"
    last = model.requests[-1]
    assert last.tools is None and "final answer" in last.messages[-1].content


def test_generate_with_react() -> None:
    model = ScriptedModel(
        [
            'Thought: add\nAction: add\nAction Input: {"a": 1, "b": 2}',
            "Thought: I now know the final answer\nFinal Answer: 3",
        ]
    )
    result = Agent(
        model, [add], planner="react", max_iterations=1, early_stopping_method="generate"
    ).run_sync("go")
    assert result.output == "3"
    assert "I now need to return a final answer" in model.requests[-1].messages[0].content


def test_generate_with_a_function_planner() -> None:
    def plan(ctx: RunContext) -> Any:
        if ctx.final:
            return Answer(f"best guess after {len(ctx.intermediate_steps)} steps")
        return ToolCall("add", {"a": 1, "b": 1})

    result = Agent(
        None,
        [add],
        planner=FunctionPlanner(plan),
        max_iterations=2,
        early_stopping_method="generate",
    ).run_sync("go")
    assert result.output == "best guess after 2 steps"


def test_deadline_is_hard_for_async_tools() -> None:
    @tool
    async def hang() -> str:
        """Never returns."""
        await asyncio.sleep(3600)
        return "never"

    model = ScriptedModel([ToolCall("hang")])
    result = Agent(model, [hang], max_execution_time=0.2).run_sync("go")
    assert result.stop_reason is StopReason.max_execution_time
    assert result.output == FORCE
    assert states(result) == ["plan", "act", "stopped"]
    assert [s.status for s in result.steps] == [StepStatus.cancelled]
    check_trace(result.trace, time_slack=DEADLINE_SLACK)


def test_deadline_abandons_a_hanging_sync_tool() -> None:
    release = threading.Event()

    @tool
    def block() -> str:
        """Blocks until released."""
        release.wait(30)
        return "late"

    model = ScriptedModel([ToolCall("block")])
    try:
        result = Agent(model, [block], max_execution_time=0.2).run_sync("go")
    finally:
        release.set()
    assert result.stop_reason is StopReason.max_execution_time
    assert [s.status for s in result.steps] == [StepStatus.cancelled]
    check_trace(result.trace, time_slack=DEADLINE_SLACK)


def test_deadline_during_a_slow_model_call() -> None:
    model = ScriptedModel(["late answer"], delay=30)
    result = Agent(model, [], max_execution_time=0.1).run_sync("go")
    assert result.stop_reason is StopReason.max_execution_time
    assert states(result) == ["plan", "stopped"]
    check_trace(result.trace, time_slack=DEADLINE_SLACK)


def test_model_error_stops_with_error_and_keeps_the_trace() -> None:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1}), ConnectionError("down")])
    with pytest.raises(PlannerFailed, match="the planner raised ConnectionError: down") as info:
        Agent(model, [add]).run_sync("go")
    result = info.value.result
    assert result is not None and result.stop_reason is StopReason.error
    assert isinstance(info.value.__cause__, ConnectionError)
    assert result.trace.events[-2].kind == "transitioned"
    check_trace(result.trace)


def test_running_out_of_script_is_a_clear_error() -> None:
    with pytest.raises(PlannerFailed, match="its script has 0 responses; add responses"):
        Agent(ScriptedModel([]), []).run_sync("go")


def test_budget_on_model_calls() -> None:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1})] * 5)
    result = Agent(model, [add], max_model_calls=2).run_sync("go")
    assert result.stop_reason is StopReason.budget
    assert len(model.requests) == 2


REACT_GOOD = 'Thought: add them\nAction: add\nAction Input: {"a": 2, "b": 2}'


def test_parsing_error_raises_by_default_and_says_how_to_handle_it() -> None:
    model = ScriptedModel(["I will just ramble."])
    with pytest.raises(ParsingFailed, match="handle_parsing_errors=True") as info:
        Agent(model, [add], planner="react").run_sync("go")
    assert info.value.result is not None
    assert info.value.result.stop_reason is StopReason.error


@pytest.mark.parametrize(
    ("handler", "text", "expected"),
    [
        (True, "Thought: hmm", "Invalid Format: Missing 'Action:' after 'Thought:'"),
        (
            True,
            "Thought: hmm\nAction: add",
            "Invalid Format: Missing 'Action Input:' after 'Action:'",
        ),
        ("Please follow the format.", "Thought: hmm", "Please follow the format."),
        (lambda e: f"fix: {e.llm_output}", "Thought: hmm", "fix: Thought: hmm"),
    ],
)
def test_handled_parsing_errors_go_back_to_the_model(
    handler: Any, text: str, expected: str
) -> None:
    model = ScriptedModel([text, REACT_GOOD, "Final Answer: 4"])
    result = Agent(model, [add], planner="react", handle_parsing_errors=handler).run_sync("go")
    assert result.output == "4"
    assert result.iterations == 2  # the rejected pass counts
    action, observation = result.intermediate_steps[0]
    assert action.tool == "_Exception" and observation == expected
    assert states(result)[:3] == ["plan", "observe", "plan"]
    assert f"Observation: {expected}" in model.requests[1].messages[0].content
    check_trace(result.trace)


def test_generic_parse_failure_uses_the_generic_text() -> None:
    from planloop import OutputParserError

    def plan(ctx: RunContext) -> Any:
        if not ctx.intermediate_steps:
            raise OutputParserError("unreadable")
        return "ok"

    result = Agent(None, [], planner=FunctionPlanner(plan), handle_parsing_errors=True).run_sync(
        "x"
    )
    assert result.intermediate_steps[0][1] == "Invalid or incomplete response"


def test_trim_intermediate_steps_limits_what_the_planner_sees() -> None:
    seen: list[int] = []

    def plan(ctx: RunContext) -> Any:
        seen.append(len(ctx.intermediate_steps))
        if len(ctx.all_steps) < 4:
            return ToolCall("add", {"a": 1, "b": len(ctx.all_steps)})
        return "done"

    result = Agent(None, [add], planner=FunctionPlanner(plan), trim_intermediate_steps=2).run_sync(
        0
    )
    assert seen == [0, 1, 2, 2, 2]
    assert len(result.intermediate_steps) == 4

    last_only: list[int] = []

    def plan2(ctx: RunContext) -> Any:
        last_only.append(len(ctx.intermediate_steps))
        return ToolCall("add", {"a": 1, "b": 1}) if len(ctx.all_steps) < 2 else "done"

    Agent(
        None,
        [add],
        planner=FunctionPlanner(plan2),
        trim_intermediate_steps=lambda steps: steps[-1:],
    ).run_sync(0)
    assert last_only == [0, 1, 1]


async def test_concurrent_runs_of_one_agent_are_isolated() -> None:
    def plan(ctx: RunContext) -> Any:
        if not ctx.intermediate_steps:
            return ToolCall("add", {"a": ctx.input, "b": ctx.input})
        return Answer(ctx.intermediate_steps[-1][1])

    agent = Agent(None, [add], planner=FunctionPlanner(plan))
    results = await asyncio.gather(*(agent.run(i) for i in range(20)))
    assert [r.output for r in results] == [2 * i for i in range(20)]
    assert all(r.iterations == 1 and len(r.intermediate_steps) == 1 for r in results)
    assert len({r.run_id for r in results}) == 20


async def test_run_sync_works_inside_a_running_event_loop() -> None:
    agent = Agent(None, [], planner=FunctionPlanner(lambda ctx: "from sync"))
    assert agent.run_sync("x").output == "from sync"


async def test_cancelling_a_run_records_the_stop() -> None:
    events: list[Any] = []
    waiting = asyncio.Event()

    @tool
    async def wait() -> str:
        """Waits."""
        waiting.set()
        await asyncio.sleep(3600)
        return ""

    agent = Agent(ScriptedModel([ToolCall("wait")]), [wait])
    task = asyncio.create_task(agent.run("go", on_event=events.append))
    await asyncio.wait_for(waiting.wait(), 10)  # cancelled while its step runs
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert events[-1].kind == "run_ended" and events[-1].stop_reason is StopReason.cancelled
    finished = [e for e in events if e.kind == "step_finished"]
    assert [e.result.status for e in finished] == [StepStatus.cancelled]


class Reflected(Event):
    note: str


def test_user_state_between_observe_and_plan() -> None:
    spec = MachineSpec.default().with_transitions(
        {
            Continued: {"observe": "reflect"},
            Reflected: {"reflect": "plan"},
            Stopped: {"reflect": "stopped"},
        },
        states=["reflect"],
    )
    notes: list[str] = []

    def reflect(ctx: RunContext) -> Event:
        notes.append(f"after {ctx.iteration}")
        return Reflected(note=notes[-1])

    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1}), "done"])
    result = Agent(model, [add], spec=spec, handlers={"reflect": reflect}).run_sync("go")
    assert states(result) == ["plan", "act", "observe", "reflect", "plan", "finish"]
    assert notes == ["after 1"]
    assert result.trace.transitions[3].payload == {"note": "after 1"}
    check_trace(result.trace)


def test_user_states_need_a_handler_and_a_stop() -> None:
    spec = MachineSpec.default().with_transitions(
        {Continued: {"observe": "reflect"}, Reflected: {"reflect": "plan"}}, states=["reflect"]
    )
    with pytest.raises(DefinitionError) as info:
        Agent(None, [], planner=FunctionPlanner(lambda c: "x"), spec=spec)
    assert str(info.value) == (
        "invalid agent loop:\n"
        "  - state 'reflect' has no handler; pass handlers={'reflect': fn} where fn(ctx) "
        "returns the event that leaves it\n"
        "  - state 'reflect' does not accept Stopped, so a limit or an error could not end "
        "the run there; add Stopped: {'reflect': 'stopped'}"
    )


def test_bad_agent_options_are_reported_together() -> None:
    with pytest.raises(DefinitionError) as info:
        Agent(None, [add, add], max_iterations=-1, max_execution_time=-2, planner="nope")
    text = str(info.value)
    assert "two tools are named 'add'" in text
    assert "max_iterations=-1; use a whole number >= 0 or None" in text
    assert "max_execution_time=-2; use seconds >= 0 or None" in text


def test_plain_functions_become_tools() -> None:
    def shout(text: str) -> str:
        return text.upper()

    model = ScriptedModel([ToolCall("shout", {"text": "hi"}), "HI"])
    result = Agent(model, [shout]).run_sync("go")
    assert result.intermediate_steps[0][1] == "HI"


def test_states_are_loop_states() -> None:
    result = Agent(None, [], planner=FunctionPlanner(lambda c: "x")).run_sync("go")
    assert result.trace.states == [LoopState.plan, LoopState.finish]
    assert all(isinstance(s, LoopState) for s in result.trace.states)


# --- stopping from a handler or a planner ------------------------------------------


def _reflecting_spec() -> MachineSpec:
    return MachineSpec.default().with_transitions(
        {
            Continued: {"observe": "reflect"},
            Reflected: {"reflect": "plan"},
            Stopped: {"reflect": "stopped"},
        },
        states=["reflect"],
    )


def test_a_handler_that_returns_stopped_stops_the_run_with_its_reason() -> None:
    def reflect(ctx: RunContext) -> Event:
        return Stopped(reason=StopReason.budget, output="enough")

    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1}), "done"])
    agent = Agent(model, [add], spec=_reflecting_spec(), handlers={"reflect": reflect})
    result = agent.run_sync("go")
    assert (result.status, result.stop_reason, result.output) == (
        RunStatus.stopped,
        StopReason.budget,
        "enough",
    )
    assert states(result) == ["plan", "act", "observe", "reflect", "stopped"]
    ended = result.trace.ended
    assert ended is not None
    assert (ended.status, ended.stop_reason, ended.output) == (
        RunStatus.stopped,
        StopReason.budget,
        "enough",
    )
    check_trace(result.trace)


def test_a_handler_can_raise_stop_run() -> None:
    def reflect(ctx: RunContext) -> Event:
        raise StopRun("cancelled", output="called off")

    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1}), "done"])
    agent = Agent(model, [add], spec=_reflecting_spec(), handlers={"reflect": reflect})
    result = agent.run_sync("go")
    assert (result.status, result.stop_reason, result.output) == (
        RunStatus.stopped,
        StopReason.cancelled,
        "called off",
    )
    check_trace(result.trace)


def test_a_planner_stops_the_run_with_a_reason_and_an_output() -> None:
    def plan(ctx: RunContext) -> Any:
        if ctx.iteration == 1:
            raise StopRun(StopReason.budget, output="out of credits")
        return ToolCall("add", {"a": 1, "b": 2})

    result = Agent(None, [add], planner=FunctionPlanner(plan)).run_sync("go")
    assert (result.status, result.stop_reason, result.output, result.iterations) == (
        RunStatus.stopped,
        StopReason.budget,
        "out of credits",
        1,
    )
    assert [obs for _, obs in result.intermediate_steps] == [3]
    check_trace(result.trace)


@pytest.mark.parametrize(
    ("method", "output"),
    [("force", "Agent stopped due to iteration limit or time limit."), ("generate", "from final")],
)
def test_a_planner_stop_without_an_output_gets_the_limits_output(method: Any, output: str) -> None:
    class Stopping:
        async def plan(self, ctx: RunContext) -> Any:
            raise StopRun(StopReason.max_execution_time)

        async def final_answer(self, ctx: RunContext) -> Answer:
            return Answer("from final")

    result = Agent(None, [], planner=Stopping(), early_stopping_method=method).run_sync("go")
    assert (result.status, result.stop_reason, result.output) == (
        RunStatus.stopped,
        StopReason.max_execution_time,
        output,
    )


def test_stop_run_takes_a_reason_by_value_and_refuses_others() -> None:
    assert StopRun("budget").reason is StopReason.budget
    assert StopRun(StopReason.error, output=1).output == 1
    with pytest.raises(ValueError, match="'tired' is not a valid StopReason"):
        StopRun("tired")


def test_the_built_in_states_cannot_be_given_handlers() -> None:
    with pytest.raises(DefinitionError) as info:
        Agent(None, [], handlers={"plan": lambda ctx: Continued(), "act": lambda ctx: Continued()})
    assert str(info.value) == (
        "invalid Agent:\n"
        "  - handlers names the built-in state 'act', which runs the planner, the plan or "
        "the observation and checks the limits; pass planner=... to change how plans are "
        "made, or add a state of your own to the spec (MachineSpec.with_transitions) and "
        "give the handler to that\n"
        "  - handlers names the built-in state 'plan', which runs the planner, the plan or "
        "the observation and checks the limits; pass planner=... to change how plans are "
        "made, or add a state of your own to the spec (MachineSpec.with_transitions) and "
        "give the handler to that"
    )


def test_a_requested_stop_replays() -> None:
    def reflect(ctx: RunContext) -> Event:
        return Stopped(reason=StopReason.budget, output="enough")

    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1}), "done"])
    agent = Agent(model, [add], spec=_reflecting_spec(), handlers={"reflect": reflect})
    check_trace(agent.run_sync("go").trace)
