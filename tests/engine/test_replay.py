"""Replay (loop invariant 6): the loop driven by a recorded trace reproduces it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import planloop
from planloop import Agent, Continued, Event, MachineSpec, Plan, RunError, Step, Stopped, Trace
from planloop.engine.durable import Approve, Edit, Reject
from planloop.engine.replay import ReplayError
from planloop.engine.retry import RetryPolicy
from planloop.models import ToolCall
from planloop.testing import ScriptedModel, limits, model_scripts

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@planloop.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@planloop.tool
def echo(text: str) -> str:
    """Echo a text."""
    return text


@planloop.tool(return_direct=True)
def finish_with(text: str) -> str:
    """End the run with this text."""
    return text


@planloop.tool
async def pause(seconds: float) -> float:
    """Sleep briefly (never more than 30 ms)."""
    await asyncio.sleep(min(abs(seconds), 0.03))
    return seconds


@planloop.tool
def fail(text: str) -> str:
    """Always raises."""
    raise ValueError(text)


TOOLS = [add, echo, finish_with, pause, fail]


def recorded(runnable: Any, *args: Any, **kwargs: Any) -> Trace:
    try:
        return runnable.run_sync(*args, **kwargs).trace  # type: ignore[no-any-return]
    except RunError as exc:
        result = exc.result
    assert result is not None
    return result.trace


def assert_replays(trace: Trace) -> None:
    replay = trace.replay()
    assert replay.differences == ()
    assert replay.trace.states == trace.states
    assert replay.result.output == trace.output
    # Parallel steps that end without calling a tool may end in another order.
    assert sorted((r.step_id, r.status) for r in replay.result.steps) == sorted(
        (r.step_id, r.status) for r in trace.step_results
    )


def replayable(trace: Trace) -> bool:
    # A time limit that struck in observe depends on how long the act took (documented).
    last = trace.transitions[-1] if trace.transitions else None
    return not (
        trace.stop_reason == "max_execution_time" and last is not None and last.source == "observe"
    )


@PROPERTY
@given(script=model_scripts(tools=TOOLS), options=limits())
def test_replay_reproduces_tool_calling_runs(script: list[Any], options: dict[str, Any]) -> None:
    trace = recorded(Agent(ScriptedModel(script), TOOLS, store=False, **options), "go")
    if replayable(trace):
        assert_replays(trace)


@PROPERTY
@given(script=model_scripts(tools=TOOLS, planner="react"), options=limits())
def test_replay_reproduces_react_runs(script: list[Any], options: dict[str, Any]) -> None:
    agent = Agent(ScriptedModel(script), TOOLS, planner="react", store=False, **options)
    trace = recorded(agent, "go")
    if replayable(trace):
        assert_replays(trace)


def test_replay_calls_no_tool_and_no_model() -> None:
    calls: list[str] = []

    @planloop.tool
    def counted(text: str) -> str:
        """Counts its calls."""
        calls.append(text)
        return text.upper()

    model = ScriptedModel([ToolCall("counted", {"text": "a"}), "done"])
    trace = recorded(Agent(model, [counted], store=False), "go")
    assert_replays(trace)
    assert calls == ["a"]
    assert len(model.requests) == 2
    replay = trace.replay()
    assert [e.kind for e in replay.trace.events] == [e.kind for e in trace.events]
    assert [s.output for s in replay.result.steps] == ["A"]


def test_a_workflow_with_a_failed_step_and_retries_replays() -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "ok"

    def broken(x: str) -> str:
        raise KeyError(x)

    wf = planloop.Workflow("w", store=False)
    first = wf.step(flaky, retry=RetryPolicy(attempts=3, initial_interval=0.01, jitter=0))
    wf.step(broken, x=first, id="broken")
    wf.step(lambda: "side", id="side")
    trace = recorded(wf)
    assert trace.stop_reason == "error"
    assert_replays(trace)
    assert [r.attempts for r in trace.replay().result.steps if r.step_id == "flaky"] == [3]


def test_budget_stops_replay_where_they_stopped_the_run() -> None:
    script = [ToolCall("echo", {"text": "x"})] * 5
    trace = recorded(Agent(ScriptedModel(script), TOOLS, store=False, max_model_calls=2), "go")
    assert trace.stop_reason == "budget"
    assert_replays(trace)
    replay = trace.replay()
    assert [e.usage for e in replay.trace.events if e.kind == "model_called"] == [
        e.usage for e in trace.events if e.kind == "model_called"
    ]


def test_a_time_limit_in_act_replays_with_the_steps_it_cancelled() -> None:
    @planloop.tool
    async def slow(seconds: float) -> float:
        """Sleeps."""
        await asyncio.sleep(seconds)
        return seconds

    calls = [ToolCall("slow", {"seconds": 0.0}), ToolCall("slow", {"seconds": 5.0})]
    # 1 s: time for the instant step to end first even on a loaded machine
    agent = Agent(ScriptedModel([calls]), [slow], store=False, max_execution_time=1.0)
    trace = recorded(agent, "go")
    assert [r.status for r in trace.step_results] == ["succeeded", "cancelled"]
    assert_replays(trace)


class Reflected(Event):
    note: str = ""


def test_a_machine_with_its_own_state_replays() -> None:
    spec = MachineSpec.default().with_transitions(
        {
            Continued: {"observe": "reflect"},
            Reflected: {"reflect": "plan"},
            Stopped: {"reflect": "stopped"},
        },
        states=["reflect"],
    )
    agent = Agent(
        ScriptedModel([ToolCall("echo", {"text": "x"}), "done"]),
        TOOLS,
        spec=spec,
        handlers={"reflect": lambda ctx: Reflected(note=f"after {ctx.iteration}")},
        store=False,
    )
    trace = recorded(agent, "go")
    assert "reflect" in trace.states
    assert_replays(trace)
    [payload] = [t.payload for t in trace.replay().trace.transitions if t.event == "Reflected"]
    assert payload == {"note": "after 1"}


@pytest.mark.parametrize(
    "decision",
    [
        Approve(),
        Reject(message="not that"),
        Edit(plan=Plan([Step(id="b", tool="add", args={"a": 2, "b": 3})])),
    ],
    ids=["approve", "reject", "edit"],
)
def test_a_paused_and_resumed_run_replays_as_one_run(decision: Any, tmp_path: Path) -> None:
    script = [ToolCall("add", {"a": 1, "b": 1}), "done", "done again", "done at last"]
    agent = Agent(
        ScriptedModel(script), TOOLS, interrupt_before=["act"], store=tmp_path / "runs.db"
    )
    paused = agent.run_sync("go")
    with pytest.raises(ReplayError) as err:
        paused.trace.replay()
    assert str(err.value) == (
        f"run {paused.run_id!r} has not ended (it is paused, or its process died); resume it "
        "to its end, then replay it"
    )
    result = agent.resume_sync(paused.run_id, decision)
    while result.status == "paused":
        result = agent.resume_sync(result.run_id, Approve())
    trace = result.trace
    assert any(e.kind == "run_resumed" for e in trace.events)
    assert_replays(trace)
    assert not any(e.kind == "run_resumed" for e in trace.replay().trace.events)


def _edited(trace: Trace, kind: str, change: dict[str, Any], nth: int = 0) -> Trace:
    """``trace`` with the ``nth`` event of ``kind`` changed by ``change``."""
    events = trace.model_dump(mode="json")["events"]
    at = [i for i, e in enumerate(events) if e["kind"] == kind][nth]
    events[at] = {**events[at], **change}
    return Trace.model_validate({**trace.model_dump(mode="json"), "events": events})


def test_a_corrupt_cancelled_or_timing_bound_trace_is_refused_with_the_reason() -> None:
    trace = recorded(Agent(ScriptedModel([ToolCall("add", {"a": 1, "b": 2}), "3"]), TOOLS), "go")
    assert trace.replay().matches
    run = trace.run_id
    cases = [
        (
            _edited(trace, "transitioned", {"source": "observe"}, nth=1),
            f"run {run!r}: transition #1 leaves 'observe', but the run was in 'act'; "
            "the trace is corrupt",
        ),
        (
            _edited(trace, "run_ended", {"status": "stopped", "stop_reason": "cancelled"}),
            f"run {run!r} was cancelled; a cancelled run cannot be replayed",
        ),
        (
            _edited(trace, "run_ended", {"status": "stopped", "stop_reason": "max_execution_time"}),
            f"run {run!r} stopped at its time limit in state 'plan', which a replay cannot "
            "reproduce (it depends on how long the run took there)",
        ),
    ]
    for edited, message in cases:
        with pytest.raises(ReplayError) as err:
            edited.replay()
        assert str(err.value) == message
        assert err.value.run_id == run


def test_traces_that_cannot_be_replayed_say_why() -> None:
    trace = recorded(Agent(ScriptedModel(["hi"]), [], store=False), "go")
    data = trace.model_dump(mode="json")

    empty = Trace(run_id="r")
    with pytest.raises(ReplayError) as err:
        empty.replay()
    assert str(err.value) == (
        "trace 'r' does not start with a run_started event; only a recorded run can be replayed"
    )
    unknown = Trace.model_validate(
        {
            **data,
            "events": [
                e if e["kind"] != "transitioned" else {**e, "target": "elsewhere"}
                for e in data["events"]
            ],
        }
    )
    with pytest.raises(ReplayError) as err:
        unknown.replay()
    assert str(err.value) == (
        f"run {trace.run_id!r}: transition #0 names state 'elsewhere', which its machine does "
        "not have (states: plan, act, observe, finish, stopped)"
    )
    wrong = Trace.model_validate(
        {
            **data,
            "events": [
                e if e["kind"] != "transitioned" else {**e, "event": "Planned"}
                for e in data["events"]
            ],
        }
    )
    with pytest.raises(ReplayError) as err:
        wrong.replay()
    assert str(err.value) == (
        f"run {trace.run_id!r}: transition #0 plan --Planned--> finish is not a transition "
        "of its machine"
    )


def test_a_replay_that_differs_lists_the_differences() -> None:
    trace = recorded(
        Agent(ScriptedModel([ToolCall("echo", {"text": "x"}), "ok"]), TOOLS, store=False), "go"
    )
    data = trace.model_dump(mode="json")
    for event in data["events"]:
        if event["kind"] == "run_ended":
            event["output"] = "something else"
    replay = Trace.model_validate(data).replay()
    assert not replay.matches
    assert replay.differences == ("run end output: recorded 'something else'; replayed 'ok'",)


def test_a_step_the_deadline_cancelled_replays_when_the_run_then_failed() -> None:
    # The deadline cancels the hanging step; the "generate" answer after it finds the
    # script empty, so the run ends with reason error, not max_execution_time. The
    # replay must still apply the time limit to the cancelled step, or it waits forever.
    from planloop.testing import hanging_tool

    hanging = hanging_tool()
    agent = Agent(
        ScriptedModel([ToolCall("hanging", {})]),
        [hanging],
        max_execution_time=0.05,
        early_stopping_method="generate",
        store=False,
    )
    with pytest.raises(RunError) as caught:
        agent.run_sync("go")
    hanging.release()
    trace = caught.value.result.trace
    assert [r.status.value for r in trace.step_results] == ["cancelled"]
    assert trace.stop_reason is planloop.StopReason.error

    async def replay() -> planloop.Replay:
        return await asyncio.wait_for(asyncio.to_thread(trace.replay), 10)

    replayed = asyncio.run(replay())
    assert replayed.matches, replayed.differences
    assert replayed.result.stop_reason is planloop.StopReason.error
