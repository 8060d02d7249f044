"""A run's events kept as rows until its trace is read (TraceRecorder), and every way of
reading a result's trace."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from pydantic import ValidationError

import planloop
from planloop.engine.recorder import TraceRecorder
from planloop.engine.result import RunResult
from planloop.engine.trace import ModelCalled, StepFinished, StepStarted, Trace
from planloop.models import ToolCall
from planloop.testing import ScriptedModel


async def _one() -> int:
    return 1


async def _more(x: int) -> int:
    return x + 1


def _workflow(name: str = "rows") -> planloop.Workflow:
    # A chain runs in the same order every time: runs can be compared event by event.
    wf = planloop.Workflow(name, store=False)
    a = wf.step(_one, id="a")
    b = wf.step(_more, id="b", x=a)
    c = wf.step(_more, id="c", x=b)
    wf.step(_one, id="d", depends_on=[c])
    return wf


def _deferred() -> RunResult:
    result = _workflow().run_sync()
    assert result._lazy[0]._value is None  # nothing read the trace: no record made from rows
    return result


def _shape(trace: Trace) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for e in trace.events:
        if isinstance(e, StepStarted):
            out.append((e.kind, e.act, e.step_id, e.tool, e.args, e.attempt, e.depends_on))
        elif isinstance(e, StepFinished):
            r = e.result
            out.append((e.kind, e.act, r.step_id, r.status, r.output, e.depends_on, e.t))
        else:
            out.append((e.kind,))
    return out


def test_rows_build_the_records_an_eager_trace_gets_in_the_same_order() -> None:
    seen: list[Any] = []
    eager = _workflow().run_sync(on_event=seen.append).trace  # a listener: records at once
    assert [type(e) for e in seen] == [type(e) for e in eager.events]
    lazy = _deferred().trace
    assert [k[:6] for k in _shape(lazy)] == [k[:6] for k in _shape(eager)]
    kinds = [e.kind for e in lazy.events]
    assert kinds.count("step_started") == kinds.count("step_finished") == 4
    assert kinds[0] == "run_started" and kinds[-1] == "run_ended"
    # Each finish is stamped with its result's end, as an eager record is.
    for e in lazy.events:
        if isinstance(e, StepFinished):
            assert e.t == e.result.ended_at


@pytest.mark.parametrize(
    "read",
    [
        lambda r: r.trace,
        lambda r: r.model_dump()["trace"],
        lambda r: r.model_dump(mode="json", include={"trace"})["trace"],
        lambda r: copy.copy(r).trace,
        lambda r: copy.deepcopy(r).trace,
        lambda r: pickle.loads(pickle.dumps(r)).trace,
        lambda r: RunResult.model_validate_json(r.model_dump_json()).trace,
        lambda r: r == RunResult.model_validate(r.model_dump()) and r.trace,
    ],
    ids=["attribute", "dump", "dump_include", "copy", "deepcopy", "pickle", "json", "eq"],
)
def test_every_way_of_reading_a_results_trace_sees_every_event(read: Any) -> None:
    expected = _shape(_deferred().trace)
    got = read(_deferred())
    trace = got if isinstance(got, Trace) else Trace.model_validate(got)
    assert [k[:6] for k in _shape(trace)] == [k[:6] for k in expected]
    assert len(trace.events) == len(expected) == 14
    assert Trace.from_json(trace.to_json()) == trace


def test_a_result_dumped_with_its_trace_holds_every_event() -> None:
    result = _deferred()
    dumped = result.model_dump(mode="json", fallback=repr)
    kinds = [e["kind"] for e in dumped["trace"]["events"]]
    assert kinds.count("step_finished") == 4
    again = planloop.RunResult.model_validate(dumped)
    assert again.trace.to_json() == result.trace.to_json()
    with pytest.raises(ValidationError, match="trace\n  Field required"):
        RunResult.model_validate({k: v for k, v in dumped.items() if k != "trace"})


def test_model_copy_replaces_a_results_trace_and_pairs_like_any_field() -> None:
    result = _deferred()
    other = Trace(run_id="other", events=[])
    copied = result.model_copy(update={"trace": other, "intermediate_steps": [], "iterations": 7})
    assert (copied.trace, copied.intermediate_steps, copied.iterations) == (other, [], 7)
    assert result.trace != other and result.intermediate_steps  # the original is untouched
    assert result.model_copy().trace == result.trace


def test_a_listener_that_subscribes_after_rows_sees_records_from_then_on() -> None:
    recorder = TraceRecorder("r")
    recorder.started(0.5, 1, "a", "t", {"x": 1}, 1, ())
    seen: list[Any] = []
    recorder.subscribe(seen.append)  # makes the rows first
    assert seen == [] and [e.kind for e in recorder.trace().events] == ["step_started"]
    recorder.started(1.0, 9, "late", "t", {}, 1, ())
    assert isinstance(seen[-1], StepStarted) and recorder.trace().events[-1] is seen[-1]


def test_appends_and_rows_keep_their_order_and_a_trace_handed_out_stays_complete() -> None:
    recorder = TraceRecorder("r")
    recorder.started(0.5, 1, "a", "t", {"x": 1}, 1, ())
    recorder.append(ModelCalled(t=0.6, model="m"))
    result = planloop.StepResult(step_id="a", status="succeeded", output=2, ended_at=0.7)
    recorder.finished(0.7, 1, result, ())
    trace = recorder.trace()
    assert [e.kind for e in trace.events] == ["step_started", "model_called", "step_finished"]
    recorder.model_called(0.8, "m", 0.1, 1, None)
    assert [e.kind for e in trace.events][-1] == "model_called"  # made at once, into it
    assert recorder.trace() is trace


def test_a_trace_read_during_a_run_is_the_runs_whole_trace_at_its_end() -> None:
    held: list[Trace] = []

    def plan(ctx: planloop.RunContext) -> Any:
        if not held:
            held.append(ctx.trace)
            assert [e.kind for e in ctx.trace.events] == ["run_started"]
            return planloop.Plan(steps=[planloop.Step(id="s", tool="echo", args={"x": 1})])
        return planloop.Answer("done")

    def echo(x: int) -> int:
        return x

    agent = planloop.Agent(None, [echo], planner=planloop.FunctionPlanner(plan), store=False)
    result = agent.run_sync("go")
    assert held[0] is result.trace
    kinds = [e.kind for e in held[0].events]
    assert kinds[-1] == "run_ended" and kinds.count("step_finished") == 1
    assert len(kinds) == 8


def _agent(calls: int, args: dict[str, Any] | None = None) -> planloop.Agent:
    @planloop.tool
    def echo(x: Any) -> str:
        """Say x back."""
        return "one" if x == 1 else "other"

    step = ToolCall("echo", args if args is not None else {"x": 1})
    return planloop.Agent(ScriptedModel([step] * calls + ["done"]), [echo], store=False)


def _transitions(trace: Trace) -> list[tuple[Any, ...]]:
    return [(e.source, e.target, e.event, e.payload, e.iteration) for e in trace.transitions]


def test_an_agents_transitions_are_rows_that_build_the_records_an_eager_trace_gets() -> None:
    eager = _agent(3).run_sync("go", on_event=lambda e: None).trace
    quiet = _agent(3).run_sync("go")
    assert quiet._lazy[0]._value is None
    lazy = quiet.trace
    assert [e.kind for e in lazy.events] == [e.kind for e in eager.events]
    assert _transitions(lazy) == _transitions(eager)
    calls = [e for e in lazy.events if isinstance(e, ModelCalled)]
    assert [(c.model, c.messages, c.usage, c.error) for c in calls] == [
        (c.model, c.messages, c.usage, c.error) for c in eager.events if isinstance(c, ModelCalled)
    ]
    assert len(calls) == 4 and all(c.duration >= 0 and c.usage is not None for c in calls)
    assert calls == sorted(calls, key=lambda c: c.t)
    assert [t.event for t in lazy.transitions] == ["Planned", "Acted", "Continued"] * 3 + [
        "Answered"
    ]
    planned = lazy.transitions[0].payload["plan"]
    assert planned["steps"][0]["tool"] == "echo" and planned["steps"][0]["args"] == {"x": 1}
    assert lazy.transitions[1].payload == {"steps": 1, "succeeded": 1}
    assert lazy.iterations == 3 and lazy.states[-1] == "finish"
    assert Trace.from_json(lazy.to_json()) == lazy


class _Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@pytest.mark.parametrize("listened", [False, True])
def test_a_plan_whose_dump_raises_is_recorded_as_what_went_wrong(listened: bool) -> None:
    # The payload of a row is made when the trace is read: that read must not raise,
    # and an eager record says the same.
    agent = _agent(1, {"x": _Unprintable()})
    result = agent.run_sync("go", on_event=(lambda e: None) if listened else None)
    assert result.status == planloop.RunStatus.finished
    planned = result.trace.transitions[0]
    assert planned.event == "Planned" and planned.payload["plan"] is None
    assert planned.payload["error"] == ("the plan could not be dumped: RuntimeError: no repr")
