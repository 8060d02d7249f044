"""A run cancelled from outside is recorded as stopped/cancelled everywhere.

Its stored row, its trace and ``planloop runs`` agree; resuming it is refused
(it ended); a trace never gets two ends; and replaying an inconsistent trace
fails with :class:`ReplayError` instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from planloop import (
    Agent,
    CannotResume,
    ReplayError,
    RunStatus,
    SQLiteStore,
    StepStatus,
    StopReason,
    Trace,
    tool,
)
from planloop.engine import replay as replay_module
from planloop.engine.trace import RunEnded, StepFinished
from planloop.models import ToolCall
from planloop.testing import ScriptedModel

PLANLOOP = str(Path(sys.executable).parent / "planloop")


@tool
async def slow() -> str:
    """Sleeps for an hour."""
    await asyncio.sleep(3600)
    return "late"


def cancelled_run(db: Path) -> tuple[Agent, SQLiteStore]:
    """An agent whose run ``r1`` was cancelled from outside while a step ran."""
    store = SQLiteStore(db)
    agent = Agent(ScriptedModel([ToolCall("slow"), "done"]), [slow], store=store)

    async def main() -> None:
        task = asyncio.create_task(agent.run("go", run_id="r1"))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return agent, store


def ends(trace: Trace) -> list[RunEnded]:
    return [e for e in trace.events if isinstance(e, RunEnded)]


def test_a_cancelled_run_is_stored_as_stopped_cancelled(tmp_path: Path) -> None:
    _, store = cancelled_run(tmp_path / "runs.db")
    record = store.get_run("r1")
    assert (record.status, record.stop_reason) == (RunStatus.stopped, StopReason.cancelled)
    assert record.ended_at is not None
    trace = store.load_trace("r1")
    [end] = ends(trace)
    assert end.stop_reason is StopReason.cancelled
    store.close()
    listed = subprocess.run(
        [PLANLOOP, "--store", str(tmp_path / "runs.db"), "runs"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if line.startswith("r1 ")]
    assert row.split()[4:6] == ["stopped", "cancelled"], row  # after RUN ID, NAME, STARTED


def test_resuming_a_cancelled_run_is_refused_and_adds_no_second_end(tmp_path: Path) -> None:
    agent, store = cancelled_run(tmp_path / "runs.db")
    with pytest.raises(CannotResume, match=r"already ended \(stopped, cancelled\)"):
        agent.resume_sync("r1")
    assert len(ends(store.load_trace("r1"))) == 1


def test_a_run_whose_trace_ended_is_not_resumed_even_if_its_row_says_running(
    tmp_path: Path,
) -> None:
    # A process that died between writing the run's end and its row leaves this.
    agent, store = cancelled_run(tmp_path / "runs.db")
    with sqlite3.connect(tmp_path / "runs.db") as db:
        db.execute("UPDATE runs SET status = 'running', stop_reason = NULL, ended_at = NULL")
    assert store.get_run("r1").status == "running"
    with pytest.raises(CannotResume, match="its trace records its end"):
        agent.resume_sync("r1")
    assert len(ends(store.load_trace("r1"))) == 1


def test_replay_refuses_a_trace_with_two_ends(tmp_path: Path) -> None:
    agent = Agent(ScriptedModel(["done"]), [], store=False)
    trace = agent.run_sync("go").trace
    [end] = ends(trace)
    doubled = Trace(**{**dict(trace), "events": [*trace.events, end]})
    with pytest.raises(ReplayError, match="records 2 ends"):
        doubled.replay()


def test_replay_refuses_a_cancelled_step_that_no_time_limit_explains(tmp_path: Path) -> None:
    # The trace the resume of a cancelled run used to leave: a cancelled step, no time
    # limit, and an end that says "finished". Replaying it used to wait forever.
    _, store = cancelled_run(tmp_path / "runs.db")
    trace = store.load_trace("r1")
    assert [e.result.status for e in trace.events if isinstance(e, StepFinished)] == [
        StepStatus.cancelled
    ]
    end = ends(trace)[0]
    finished = end.model_copy(update={"status": RunStatus.finished, "stop_reason": None})
    lying = Trace(**{**dict(trace), "events": [*trace.events[:-1], finished]})
    started = time.perf_counter()
    with pytest.raises(ReplayError, match="cancelled"):
        lying.replay()
    assert time.perf_counter() - started < 30


def test_a_replay_that_runs_past_its_bound_fails_instead_of_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A run stopped by its time limit while a step ran replays by waiting for that
    # limit; with the bound made shorter than the limit, the replay must give up.
    agent = Agent(ScriptedModel([ToolCall("slow")]), [slow], max_execution_time=2, store=False)
    trace = agent.run_sync("go").trace
    assert trace.ended is not None and trace.ended.stop_reason is StopReason.max_execution_time
    monkeypatch.setattr(replay_module, "SLACK", -1.8)  # a bound of about 0.2 s
    started = time.perf_counter()
    with pytest.raises(ReplayError, match="did not end within"):
        trace.replay()
    assert time.perf_counter() - started < 1.9
