from __future__ import annotations

import json

import pytest

from planloop import Agent, FunctionPlanner, Trace, TraceError
from planloop.models import ToolCall
from planloop.testing import ScriptedModel


def add(a: int, b: int) -> int:
    """Add."""
    return a + b


def sample() -> Trace:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2}), "3"])
    return Agent(model, [add]).run_sync({"question": "1+2", "n": [1, 2]}).trace


def test_round_trip_is_lossless() -> None:
    trace = sample()
    text = trace.to_json()
    again = Trace.from_json(text)
    assert again == trace
    assert again.to_json() == text
    assert again.input == {"question": "1+2", "n": [1, 2]}
    assert [e.kind for e in again.events] == [
        "run_started",
        "model_called",
        "transitioned",
        "step_started",
        "step_finished",
        "transitioned",
        "transitioned",
        "model_called",
        "transitioned",
        "run_ended",
    ]


def test_events_are_a_discriminated_union() -> None:
    data = json.loads(sample().to_json())
    kinds = {e["kind"] for e in data["events"]}
    assert kinds == {
        "run_started",
        "model_called",
        "transitioned",
        "step_started",
        "step_finished",
        "run_ended",
    }


def test_non_json_outputs_are_stored_as_repr() -> None:
    class Point:
        def __repr__(self) -> str:
            return "Point(1, 2)"

    trace = (
        Agent(None, [], planner=FunctionPlanner(lambda ctx: _answer(Point()))).run_sync("x").trace
    )
    assert Trace.from_json(trace.to_json()).output == "Point(1, 2)"


def _answer(value: object) -> object:
    from planloop import Answer

    return Answer(value)


def test_corrupt_traces_give_clear_errors() -> None:
    with pytest.raises(TraceError) as info:
        Trace.from_json('{"run_id": "r", "events": [{"kind": "teleported", "t": 0}]}')
    assert str(info.value).startswith("not a valid planloop trace:\n  - at events.0: ")
    assert "teleported" in str(info.value)
    with pytest.raises(TraceError, match=r"not a valid planloop trace:\n  - at \(top level\)"):
        Trace.from_json("{truncated")
    good = sample().to_json()
    with pytest.raises(TraceError):
        Trace.from_json(good[: len(good) // 2])
