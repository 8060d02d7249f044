"""When a run's records reach its store: completed steps first, a few writes per iteration."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import planloop
from planloop.engine import scheduler
from planloop.engine.durable import Recorder
from planloop.engine.recorder import TraceRecorder
from planloop.engine.redact import Redactor
from planloop.engine.states import StepStatus
from planloop.engine.steps import StepResult
from planloop.engine.store import SQLiteStore
from planloop.engine.store._codec import _static_keys
from planloop.engine.trace import (
    ModelCalled,
    StepFinished,
    StepStarted,
    Trace,
    Transitioned,
    Usage,
)
from planloop.models import ToolCall
from planloop.testing import ScriptedModel


class _Saves:
    """Stands in for a store: keeps what each ``save`` was given."""

    def __init__(self) -> None:
        self.saves: list[tuple[list[str], Mapping[str, Any] | None]] = []
        self.children: list[dict[str, Trace] | None] = []

    def save(
        self,
        run_id: str,
        events: Sequence[Any],
        *,
        first_seq: int,
        checkpoint: Mapping[str, Any] | None = None,
        children: Mapping[str, Trace] | None = None,
    ) -> None:
        self.saves.append(([_name(e) for e in events], checkpoint))
        self.children.append(None if children is None else dict(children))


def _name(event: Any) -> str:
    if isinstance(event, StepStarted):
        return f"started {event.step_id}"
    if isinstance(event, StepFinished):
        return f"finished {event.result.step_id}"
    return str(event.kind)


def _started(step: str) -> StepStarted:
    return StepStarted(t=0.0, act=1, step_id=step, tool="t")


def _finished(step: str) -> StepFinished:
    result = StepResult(step_id=step, status=StepStatus.succeeded, output=1)
    return StepFinished(t=0.0, act=1, result=result)


def test_a_finished_step_is_written_before_another_starts_and_by_the_end_of_the_pass() -> None:
    saves = _Saves()
    recorder = Recorder(saves, "r")  # type: ignore[arg-type]

    async def act() -> None:
        recorder(_started("a"))
        recorder(_started("b"))
        assert saves.saves == []  # nothing completed yet: nothing that must be on disk
        recorder(_finished("a"))
        recorder(_started("c"))
        assert saves.saves == [(["started a", "started b", "finished a"], None)]
        recorder(_finished("b"))
        await asyncio.sleep(0)  # the loop pass ends: b is written though c still runs
        assert saves.saves[-1] == (["started c", "finished b"], None)

    asyncio.run(act())


def test_a_child_trace_is_written_with_the_step_that_made_it_and_again_if_replaced() -> None:
    saves = _Saves()
    trace = Trace(run_id="r")
    recorder = Recorder(saves, "r", trace=trace)  # type: ignore[arg-type]
    run = TraceRecorder("r", trace=trace)
    run.subscribe(recorder)
    run.append(_started("step_1"))
    child = Trace(run_id="sub-1")
    trace.children["step_1"] = child  # a plan-and-execute step sets it, then ends
    run.append(_finished("step_1"))  # not on an event loop: written at once
    assert saves.saves == [(["started step_1", "finished step_1"], None)]
    assert saves.children == [{"step_1": child}]
    recorder.note({"state": "observe"})
    recorder.flush()
    assert saves.children[-1] is None  # nothing new
    again = Trace(run_id="sub-2")
    trace.children["step_1"] = again  # the step ran again (after a crash)
    recorder.flush()
    assert saves.saves[-1] == ([], None)
    assert saves.children[-1] == {"step_1": again}


def test_a_resumed_runs_recorder_does_not_write_the_children_it_read_back() -> None:
    saves = _Saves()
    trace = Trace(run_id="r", children={"step_1": Trace(run_id="sub-1")})
    recorder = Recorder(saves, "r", seq=3, trace=trace)  # type: ignore[arg-type]
    recorder.flush({"state": "act"})
    assert saves.children == [None]


def test_checkpoints_wait_for_the_next_write_and_only_the_latest_is_kept() -> None:
    saves = _Saves()
    recorder = Recorder(saves, "r")  # type: ignore[arg-type]
    recorder.note({"state": "observe"})
    recorder(Transitioned(t=0.0, source="observe", target="plan", event="Continued"))
    recorder.note({"state": "plan"})
    assert saves.saves == [] and recorder.waiting
    recorder.flush()
    assert saves.saves == [(["transitioned"], {"state": "plan"})]
    assert not recorder.waiting


def test_a_run_writes_twice_per_iteration_and_resumes_from_what_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker whose step took a time slice (2 ms, which a loaded machine can take) lets
    # the event loop run, and that loop pass writes once more: with a long slice the
    # count below does not depend on the machine's speed.
    monkeypatch.setattr(scheduler, "_SLICE", 60.0)

    class Counting(SQLiteStore):
        saves = 0

        def save(self, *args: Any, **kwargs: Any) -> None:
            type(self).saves += 1
            super().save(*args, **kwargs)

    async def noop(x: int) -> int:
        """Return x."""
        return x

    store = Counting(tmp_path / "s.db")
    k = 20
    model = ScriptedModel([ToolCall("noop", {"x": 1})] * k + ["done"])
    agent = planloop.Agent(model, [planloop.Tool(noop)], max_iterations=None, store=store)
    result = agent.run_sync("go", run_id="twice")
    # begin; before each act and each later plan (the first has nothing new to write);
    # the end. (With a sync tool the step's end comes back from its thread in a loop
    # pass of its own, written at the end of that pass: one more write per act.)
    assert Counting.saves == 1 + 2 * k + 1
    assert store.load_trace("twice").events == result.trace.events
    checkpoint = store.load_checkpoint("twice")
    assert checkpoint is not None and checkpoint.state["state"] == "finish"
    store.close()


def test_events_whose_keys_are_all_known_skip_the_key_scan_but_not_the_literals(
    tmp_path: Path,
) -> None:
    assert _static_keys(ModelCalled) is not None
    assert _static_keys(Transitioned) is None  # its payload can hold any key
    redactor = Redactor(values=["sk-secret-123"])
    with SQLiteStore(tmp_path / "s.db", redactor=redactor) as store:
        store.create_run("r", name="x", started_at=__import__("datetime").datetime.now())
        called = ModelCalled(t=0.0, model="proxy?key=sk-secret-123", usage=Usage(input_tokens=1))
        store.save("r", [called], first_seq=0)
        [stored] = store.load_trace("r").events
    assert isinstance(stored, ModelCalled)
    assert stored.model == "proxy?key=[redacted]"
    assert stored.usage == Usage(input_tokens=1)
