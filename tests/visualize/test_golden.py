"""Golden DOT files of representative runs, compared byte for byte, and hostile text.

The files live in ``tests/visualize/golden/``. They change only on purpose:

    ./dev test tests/visualize/test_golden.py --update-golden

rewrites them from the current code; review the diff (and render the files
with ``dot -Tpng``) before committing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import planloop
from planloop import Answer, FunctionPlanner, Plan, RunContext, RunResult, Step, Trace, ref
from planloop.models import ToolCall
from planloop.testing import ScriptedModel, hanging_tool
from planloop.visualize import render_dot, to_dot

GOLDEN = Path(__file__).parent / "golden"


@planloop.tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@planloop.tool
def explode(x: int) -> int:
    """Always raises."""
    raise RuntimeError(f"exploded on {x}")


def finished() -> Trace:
    calls = [ToolCall("add", {"a": 1, "b": 2}), ToolCall("add", {"a": 3, "b": 4})]
    model = ScriptedModel([calls, "3 and 7"])
    return planloop.Agent(model, [add], name="finished").run_sync("x").trace


def stopped_max_iterations() -> Trace:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2})] * 5)
    return planloop.Agent(model, [add], max_iterations=2, name="iterations").run_sync("x").trace


def stopped_max_execution_time() -> Trace:
    hang = hanging_tool()
    model = ScriptedModel([ToolCall("hanging", {})])
    agent = planloop.Agent(model, [hang], max_execution_time=0.05, name="deadline")
    try:
        return agent.run_sync("x").trace
    finally:
        hang.release()


def stopped_budget() -> Trace:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2})] * 5)
    return planloop.Agent(model, [add], max_model_calls=2, name="budget").run_sync("x").trace


def stopped_cancelled() -> Trace:
    hang = hanging_tool()
    model = ScriptedModel([ToolCall("hanging", {})])
    agent = planloop.Agent(model, [hang], name="cancelled")
    events: list[Any] = []

    async def go() -> None:
        task = asyncio.ensure_future(agent.run("x", run_id="golden", on_event=events.append))
        while not any(e.kind == "step_started" for e in events):
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(go())
    finally:
        hang.release()
    return Trace(run_id="golden", events=events)


def stopped_error() -> Trace:
    model = ScriptedModel([ToolCall("explode", {"x": 1})])
    with pytest.raises(planloop.StepFailed) as info:
        planloop.Agent(model, [explode], name="error").run_sync("x")
    assert info.value.result is not None
    return info.value.result.trace


def failed_step() -> Trace:
    model = ScriptedModel([[ToolCall("add", {"a": 1, "b": 2}), ToolCall("nope", {})], "3"])
    return planloop.Agent(model, [add], name="failed-step").run_sync("x").trace


def skipped_dependents() -> Trace:
    def fetch() -> str:
        raise ConnectionError("host unreachable")

    def parse(raw: str) -> str:
        return raw

    def independent() -> int:
        return 1

    wf = planloop.Workflow("skipped")
    raw = wf.step(fetch)
    text = wf.step(parse, raw=raw)
    wf.step(parse, raw=text, id="summary")
    wf.step(independent)
    with pytest.raises(planloop.StepFailed) as info:
        wf.run_sync()
    assert info.value.result is not None
    return info.value.result.trace


def rejected_plan() -> Trace:
    def plan(ctx: RunContext) -> Plan | Answer:
        if ctx.iteration == 0:
            return Plan(
                [
                    Step(id="a", tool="add", args={"a": ref("b"), "b": 1}),
                    Step(id="b", tool="add", args={"a": ref("a"), "b": 1}),
                ]
            )
        if ctx.iteration == 1:
            return Plan([Step(id="ok", tool="add", args={"a": 1, "b": 1})])
        return Answer("2")

    agent = planloop.Agent(None, [add], planner=FunctionPlanner(plan), name="rejected")
    return agent.run_sync("x").trace


def nested_sub_agent() -> Trace:
    planner_model = ScriptedModel(["Plan:\n1. Add them\n2. Say it\n<END_OF_PLAN>"])
    executor_model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2}), "it is 3", "Three."])
    pe = planloop.PlanAndExecute(
        planloop.load_chat_planner(planner_model),
        planloop.load_agent_executor(executor_model, [add]),
    )
    return pe.run_sync("add 1 and 2").trace


def folded_long_run() -> Trace:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2})] * 40)
    return planloop.Agent(model, [add], max_iterations=30, name="long").run_sync("x").trace


RUNS: dict[str, Callable[[], Trace]] = {
    "finished": finished,
    "stopped_max_iterations": stopped_max_iterations,
    "stopped_max_execution_time": stopped_max_execution_time,
    "stopped_budget": stopped_budget,
    "stopped_cancelled": stopped_cancelled,
    "stopped_error": stopped_error,
    "failed_step": failed_step,
    "skipped_dependents": skipped_dependents,
    "rejected_plan": rejected_plan,
    "nested_sub_agent": nested_sub_agent,
    "folded_long_run": folded_long_run,
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_golden_dot(name: str, request: pytest.FixtureRequest) -> None:
    dot = to_dot(RUNS[name](), timings=False)
    path = GOLDEN / f"{name}.dot"
    if request.config.getoption("--update-golden"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(dot, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}; run pytest with --update-golden"
    expected = path.read_text(encoding="utf-8")
    assert dot == expected, (
        f"{name}: the DOT text changed; if on purpose, rerun with --update-golden "
        "and review the diff"
    )
    assert render_dot(dot, "svg").startswith(b"<?xml")


def test_golden_runs_end_as_their_names_say() -> None:
    reasons = {
        "stopped_max_iterations": "max_iterations",
        "stopped_max_execution_time": "max_execution_time",
        "stopped_budget": "budget",
        "stopped_cancelled": "cancelled",
        "stopped_error": "error",
    }
    for name, reason in reasons.items():
        trace = RUNS[name]()
        assert trace.stop_reason is not None
        assert trace.stop_reason.value == reason, name


# --- hostile text anywhere in a run ------------------------------------------------

hostile = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from('"\\{}<>|&;\n\r\t'),
    max_size=60,
) | st.sampled_from(["x" * 5000, '</text><script>alert("x")</script>', "\\", '"', "a\\\nb"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(step_id=hostile, tool_name=hostile, arg=hostile, output=hostile, error=hostile)
def test_any_text_in_a_run_gives_dot_that_graphviz_renders(
    step_id: str, tool_name: str, arg: str, output: str, error: str
) -> None:
    def ok(text: str) -> str:
        return output

    def fails(text: str) -> str:
        raise ValueError(error)

    ids = [f"{step_id}-ok", f"{step_id}-fails", f"{step_id}-unknown"]
    plan = Plan(
        [
            Step(id=ids[0], tool=ok, args={"text": arg}),
            Step(id=ids[1], tool=fails, args={"text": arg}),
            Step(id=ids[2], tool=tool_name or "?", args={arg or "k": arg}),
        ]
    )

    def decide(ctx: RunContext) -> Plan | Answer:
        return plan if not ctx.all_steps else Answer(output)

    agent = planloop.Agent(
        None, [], planner=FunctionPlanner(decide), on_tool_error="observe", name=tool_name
    )
    result: RunResult = agent.run_sync(arg)
    dot = to_dot(result)
    svg = render_dot(dot, "svg").decode("utf-8")
    assert svg.startswith("<?xml")
    assert svg.count('class="node"') >= 3 + 5  # three steps and the loop's states
