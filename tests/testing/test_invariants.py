"""check_trace on real traces (ended, paused, resumed) and on traces broken one way each."""

from __future__ import annotations

import re
from typing import Any

import pytest

from planloop import (
    Agent,
    Approve,
    Edit,
    FunctionPlanner,
    Plan,
    Reject,
    RunStatus,
    Step,
    StepFailed,
    StopReason,
    Trace,
    Workflow,
    tool,
)
from planloop.engine.trace import RunEnded, RunStarted, StepFinished, StepStarted, Transitioned
from planloop.models import ToolCall
from planloop.testing import INVARIANTS, InvariantViolation, ScriptedModel, check_trace


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _agent(*script: Any, **options: Any) -> Agent:
    return Agent(ScriptedModel(list(script)), [add], **options)


def _two_step_trace() -> Trace:
    # s1 needs s0's output: a dependency through a reference, not depends_on.
    def plan(ctx: Any) -> Plan | str:
        if ctx.iteration:
            return "done"
        return Plan(
            [
                Step(id="s0", tool="add", args={"a": 1, "b": 2}),
                Step(id="s1", tool="add", args={"a": {"$ref": "s0"}, "b": 3}),
            ]
        )

    return Agent(None, [add], planner=FunctionPlanner(plan), store=False).run_sync("go").trace


def _broken(trace: Trace, events: list[Any]) -> Trace:
    return Trace(run_id=trace.run_id, events=events)


def _violation(trace: Trace) -> InvariantViolation:
    with pytest.raises(InvariantViolation) as info:
        check_trace(trace)
    return info.value


def test_the_six_invariants_are_numbered() -> None:
    assert sorted(INVARIANTS) == [1, 2, 3, 4, 5, 6]


def test_finished_and_stopped_runs_pass() -> None:
    check_trace(_two_step_trace())
    stopped = _agent(*[ToolCall("add", {"a": 1, "b": 1})] * 5, max_iterations=2).run_sync("go")
    assert stopped.stop_reason == "max_iterations"
    check_trace(stopped.trace)


def test_a_run_paused_by_interrupt_before_passes_and_so_does_its_resume() -> None:
    agent = _agent(ToolCall("add", {"a": 1, "b": 2}), ToolCall("add", {"a": 2, "b": 2}), "4",
                   interrupt_before=["act"])  # fmt: skip
    paused = agent.run_sync("go")
    assert paused.status == "paused"
    assert paused.trace.events[-1].kind == "run_paused"
    check_trace(paused.trace)
    again = agent.resume_sync(paused.run_id, Approve())
    assert again.status == "paused"  # before the second act
    check_trace(again.trace)
    edited = Plan([Step(id="x", tool="add", args={"a": 5, "b": 5})])
    done = agent.resume_sync(again.run_id, Edit(plan=edited))
    assert done.status == "finished"
    check_trace(done.trace)


def _release() -> Workflow:
    wf = Workflow("release")
    built = wf.step(lambda: "v1", id="build")
    wf.step(lambda: "notes", id="notes")
    ok = wf.approval("Ship it?", depends_on=[built])
    wf.step(lambda version, approved: f"shipped {version}", id="ship", version=built, approved=ok)
    return wf


def test_a_run_paused_at_an_approval_passes_and_so_does_its_resume() -> None:
    wf = _release()
    paused = wf.run_sync()
    assert paused.status == "paused"
    check_trace(paused.trace)
    check_trace(wf.resume_sync(paused.run_id, Approve()).trace)


def test_a_rejected_approval_passes() -> None:
    wf = _release()
    paused = wf.run_sync()
    with pytest.raises(StepFailed) as info:  # the rejected step fails the workflow
        wf.resume_sync(paused.run_id, Reject(message="not today"))
    assert info.value.result is not None
    check_trace(info.value.result.trace)


def test_a_trace_that_neither_ended_nor_paused_is_refused() -> None:
    trace = _two_step_trace()
    err = _violation(_broken(trace, trace.events[:-1]))
    assert err.invariant == 1
    assert err.detail.startswith(
        "the run neither ended nor paused: its last event is transitioned, not run_ended or "
        "run_paused"
    )


def test_invariant_1_a_status_that_contradicts_the_path() -> None:
    trace = _two_step_trace()
    end = trace.events[-1]
    assert isinstance(end, RunEnded)
    wrong = end.model_copy(update={"status": RunStatus.stopped, "stop_reason": StopReason.error})
    err = _violation(_broken(trace, [*trace.events[:-1], wrong]))
    assert (err.invariant, err.detail) == (1, "status 'stopped' but the path ends in 'finish'")
    assert err.events == (len(trace.events) - 1,)
    assert re.search(r"> #\d+ +t= *[0-9.]+  run_ended stopped \(error\), 1 iterations", str(err))


def test_invariant_2_a_transition_the_spec_does_not_have() -> None:
    trace = _two_step_trace()
    i, first = next((i, e) for i, e in enumerate(trace.events) if isinstance(e, Transitioned))
    events = list(trace.events)
    events[i] = first.model_copy(update={"event": "Answered"})
    err = _violation(_broken(trace, events))
    assert (err.invariant, err.detail) == (
        2,
        f"event #{i}: plan --Answered--> act is not in the spec",
    )
    message = str(err)
    assert message.startswith(
        "invariant 2 (every consecutive pair of states is a transition of the spec) broken in "
        f"run {trace.run_id!r}: event #{i}: plan --Answered--> act is not in the spec\n"
    )
    assert f"> #{i:<3}" in message
    assert "transitioned plan --Answered--> act (iteration 0)" in message


def test_invariant_3_more_iterations_than_allowed() -> None:
    trace = _two_step_trace()
    start = trace.events[0]
    assert isinstance(start, RunStarted)
    strict = start.model_copy(
        update={"limits": start.limits.model_copy(update={"max_iterations": 0})}
    )
    err = _violation(_broken(trace, [strict, *trace.events[1:]]))
    assert (err.invariant, err.detail) == (3, "1 iterations with max_iterations=0")


def test_invariant_3_a_run_that_overran_its_time_limit() -> None:
    trace = _two_step_trace()
    start = trace.events[0]
    assert isinstance(start, RunStarted)
    limits = start.limits.model_copy(update={"max_execution_time": 0.0})
    late = trace.events[-1].model_copy(update={"t": 2.0})
    events = [start.model_copy(update={"limits": limits}), *trace.events[1:-1], late]
    err = _violation(_broken(trace, events))
    assert err.invariant == 3
    assert err.detail.startswith("the run took 2.000 s with max_execution_time=0 s")


def test_invariant_4_a_step_that_started_before_its_reference_was_ready() -> None:
    trace = _two_step_trace()
    events = list(trace.events)
    s0_end = next(i for i, e in enumerate(events) if isinstance(e, StepFinished))
    s1_start = next(
        i for i, e in enumerate(events) if isinstance(e, StepStarted) and e.step_id == "s1"
    )
    events[s0_end], events[s1_start] = events[s1_start], events[s0_end]
    # Keep the times in order so that only the order of the steps is wrong.
    for j, e in enumerate(events):
        events[j] = e.model_copy(update={"t": trace.events[j].t})
    err = _violation(_broken(trace, events))
    assert (err.invariant, err.detail) == (
        4,
        "act 1: step 's1' started while its dependency 's0' was not finished",
    )


def test_invariant_4_a_step_that_never_ended() -> None:
    trace = _two_step_trace()
    events = [
        e for e in trace.events if not (isinstance(e, StepFinished) and e.result.step_id == "s1")
    ]
    err = _violation(_broken(trace, events))
    assert (err.invariant, err.detail) == (4, "act 1: steps ['s1'] started but never ended")


def test_invariant_5_a_second_start() -> None:
    trace = _two_step_trace()
    err = _violation(_broken(trace, [trace.events[0], *trace.events]))
    assert (err.invariant, err.detail) == (5, "run_started appears 2 times (events [0, 1])")


def test_invariant_5_a_start_from_another_run() -> None:
    trace = _two_step_trace()
    other = trace.events[0].model_copy(update={"run_id": "other"})
    err = _violation(_broken(trace, [other, *trace.events[1:]]))
    assert err.detail == f"run_started names run 'other' inside trace {trace.run_id!r}"


def test_invariant_6_an_end_the_replay_does_not_reproduce() -> None:
    trace = _two_step_trace()
    end = trace.events[-1]
    assert isinstance(end, RunEnded)
    events = [*trace.events[:-1], end.model_copy(update={"output": "not what was answered"})]
    err = _violation(_broken(trace, events))
    assert err.invariant == 6
    assert err.detail == (
        "the replay differs from the recorded run:\n"
        "    - run end output: recorded 'not what was answered'; replayed 'done'"
    )
    check_trace(_broken(trace, events), replay=False)


def test_a_failure_outside_hypothesis_writes_no_files(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("PLANLOOP_FAILURES", str(tmp_path / "failures"))
    trace = _two_step_trace()
    err = _violation(_broken(trace, trace.events[:-1]))
    assert not getattr(err, "__notes__", None)
    assert not (tmp_path / "failures").exists()


def test_a_workflow_with_an_output_that_is_not_json_replays() -> None:
    class Point:
        def __init__(self, x: int) -> None:
            self.x = x

        def __repr__(self) -> str:
            return f"Point({self.x})"

    wf = Workflow("points", store=False)
    wf.step(lambda: Point(3), id="p")
    check_trace(wf.run_sync().trace)
