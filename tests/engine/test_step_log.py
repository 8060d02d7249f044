"""Step events kept as rows until the trace is read (StepLog), and every way of reading."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

import planloop
from planloop.engine.trace import ModelCalled, StepFinished, StepStarted, Trace, Transitioned
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


def _deferred() -> Trace:
    trace = _workflow().run_sync().trace
    assert "events" not in trace.__dict__  # the step events are rows: nothing built yet
    return trace


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
    assert "events" in eager.__dict__
    assert [type(e) for e in seen] == [type(e) for e in eager.events]
    lazy = _deferred()
    assert [k[:6] for k in _shape(lazy)] == [k[:6] for k in _shape(eager)]
    kinds = [e.kind for e in lazy.events]
    assert kinds.count("step_started") == kinds.count("step_finished") == 4
    assert kinds[0] == "run_started" and kinds[-1] == "run_ended"
    # Each finish is stamped with its result's end, as an eager record is.
    for e in lazy.events:
        if isinstance(e, StepFinished):
            assert e.t == e.result.ended_at
    assert "events" in lazy.__dict__ and "_journal" not in lazy.__dict__
    assert lazy.events is lazy.events  # built once


def test_ended_started_and_repr_read_rows_without_building_them() -> None:
    trace = _deferred()
    assert trace.ended is not None and trace.ended.status == planloop.RunStatus.finished
    assert trace.started is not None and trace.started.run_id == trace.run_id
    text = repr(trace)
    assert "events" not in trace.__dict__
    assert text == f"Trace(run_id={trace.run_id!r}, events={len(trace.events)}, status='finished')"


@pytest.mark.parametrize(
    "read",
    [
        lambda t: t.to_json(),
        lambda t: t.model_dump(),
        lambda t: t.model_dump(mode="json", include={"events"}),
        lambda t: copy.copy(t).events,
        lambda t: copy.deepcopy(t).events,
        lambda t: pickle.loads(pickle.dumps(t)).events,
        lambda t: dict(t)["events"],
        lambda t: str(t),
        lambda t: t == Trace(run_id=t.run_id),
        lambda t: t.states,
        lambda t: t.step_results,
    ],
    ids=[
        "to_json",
        "model_dump",
        "model_dump_include",
        "copy",
        "deepcopy",
        "pickle",
        "iter",
        "str",
        "eq",
        "states",
        "step_results",
    ],
)
def test_every_way_of_reading_a_trace_sees_every_event(read: Any) -> None:
    expected = _shape(_deferred())  # read through .events
    trace = _deferred()
    read(trace)
    assert "events" in trace.__dict__
    assert [k[:6] for k in _shape(trace)] == [k[:6] for k in expected]
    assert Trace.from_json(trace.to_json()) == trace


def test_a_result_dumped_with_its_trace_holds_every_event() -> None:
    result = _workflow().run_sync()
    assert "events" not in result.trace.__dict__
    dumped = result.model_dump(mode="json", fallback=repr)
    kinds = [e["kind"] for e in dumped["trace"]["events"]]
    assert kinds.count("step_finished") == 4
    again = planloop.RunResult.model_validate(dumped)
    assert again.trace.to_json() == result.trace.to_json()


def test_a_listener_that_subscribes_after_rows_sees_records_from_then_on() -> None:
    trace = _deferred()
    before = len(trace.events)
    trace = _deferred()
    seen: list[Any] = []
    trace.subscribe(seen.append)  # builds the rows first
    assert "events" in trace.__dict__ and len(trace.events) == before
    log = trace.step_log()
    log.started(1.0, 9, "late", "t", {}, 1, ())
    assert isinstance(seen[-1], StepStarted) and trace.events[-1] is seen[-1]


def test_appends_and_rows_keep_their_order_and_replacing_events_drops_the_rows() -> None:
    trace = Trace(run_id="r")
    log = trace.step_log()
    log.started(0.5, 1, "a", "t", {"x": 1}, 1, ())
    trace.append(planloop.engine.trace.ModelCalled(t=0.6, model="m"))
    result = planloop.StepResult(step_id="a", status="succeeded", output=2, ended_at=0.7)
    log.finished(0.7, 1, result, ())
    assert "events" not in trace.__dict__
    assert [e.kind for e in trace.events] == ["step_started", "model_called", "step_finished"]
    log.started(0.8, 2, "b", "t", {}, 1, ("a",))
    assert "events" not in trace.__dict__
    trace.events = []
    assert trace.events == [] and "_journal" not in trace.__dict__
    log.finished(0.9, 2, result, ())
    assert [e.kind for e in trace.events] == ["step_finished"]


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
    lazy = _agent(3).run_sync("go").trace
    assert "events" not in lazy.__dict__
    rows = lazy.__dict__["_journal"]
    assert rows.count(Transitioned) == 0  # rows hold values, not records
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
