"""What every store means to a run, whatever its database: runs through the engine.

Each test runs against every backend of ``_store_harness.HARNESSES``: a run
paused for approvals and decided through other stores on the same database, an
agent interrupted and resumed, and a process killed in the middle of a run and
resumed by another one (for the backends that other processes can reach).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import planloop
from planloop import Agent, Approve
from planloop.engine import Store
from planloop.models import ToolCall
from planloop.testing import ScriptedModel, check_trace
from tests.engine._store_harness import HARNESSES, Harness, add


@pytest.fixture(params=sorted(HARNESSES))
def db(request: pytest.FixtureRequest) -> Harness:
    """One database of the backend under test."""
    return HARNESSES[request.param](request)


def release(log: list[str], store: Store) -> planloop.Workflow:
    """A workflow that waits for a person twice; ``log`` says which steps ran."""

    def step(name: str):  # type: ignore[no-untyped-def]
        def run(**inputs: object) -> str:
            log.append(name)
            return name

        run.__name__ = name
        return run

    wf = planloop.Workflow("release", store=store)
    built = wf.step(step("build"), id="build")
    ok = wf.approval("Ship it?", id="ok", depends_on=[built])
    shipped = wf.step(step("ship"), id="ship", depends_on=[ok])
    again = wf.approval("Announce it?", id="ok2", depends_on=[shipped])
    wf.step(step("announce"), id="announce", depends_on=[again])
    return wf


def test_a_run_paused_for_approval_is_decided_through_another_store(db: Harness) -> None:
    log: list[str] = []
    with db.open() as store:
        first = release(log, store).run_sync(run_id="rel-1")
        assert first.status == "paused"
        assert store.get_run("rel-1").status == "paused"
        checkpoint = store.load_checkpoint("rel-1")
        assert checkpoint is not None
        assert checkpoint.state["paused"]["approval"] == {"ok": "Ship it?"}
    # Each decision through a store of its own on the same database, as another process.
    for expected, pending in (("paused", {"ok2": "Announce it?"}), ("finished", None)):
        with db.open() as store:
            result = release(log, store).resume_sync("rel-1", Approve())
            assert result.status == expected
            record = store.get_run("rel-1")
            assert record.status == expected
            checkpoint = store.load_checkpoint("rel-1")
            assert checkpoint is not None
            assert checkpoint.state.get("paused", {}).get("approval") == pending
    assert log == ["build", "ship", "announce"]  # each step once, across three runs
    with db.open() as store:
        stored = store.load_trace("rel-1")
    assert stored == result.trace
    check_trace(stored)


def test_a_run_interrupted_before_each_act_keeps_a_checkpoint_per_transition(
    db: Harness,
) -> None:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2}), "3"])
    with db.open() as store:
        agent = Agent(model, [add], store=store, interrupt_before=["act"])
        paused = agent.run_sync("1+2", run_id="a-1")
        assert paused.status == "paused"
        checkpoint = store.load_checkpoint("a-1")
    assert checkpoint is not None
    assert (checkpoint.seq, checkpoint.state["state"]) == (len(paused.trace.events), "plan")
    assert checkpoint.state["paused"]["event"] == "Planned"
    with db.open() as store:
        agent = Agent(model, [add], store=store, interrupt_before=["act"])
        done = agent.resume_sync("a-1", Approve())
        assert (done.status, done.output) == ("finished", "3")
        trace = store.load_trace("a-1")
        checkpoint = store.load_checkpoint("a-1")
        run = store.get_run("a-1")
    assert trace == done.trace
    assert (run.status, run.iterations) == ("finished", done.trace.iterations)
    assert checkpoint is not None
    assert (checkpoint.seq, checkpoint.state["state"]) == (len(trace.events), "finish")
    events, checkpoints = db.counts()["a-1"]
    assert events == len(trace.events)
    assert checkpoints > len(trace.transitions)  # one per transition, and the pause's


CRASHY = """
import os
import pathlib
import time

import planloop

LOG = pathlib.Path(os.environ["STEP_LOG"])
STARTED = pathlib.Path(os.environ["STARTED"])
SLOW = float(os.environ.get("SLOW", "0"))


def record(name, *, seconds=0.0, marker=False):
    def step(**inputs):
        if marker:
            STARTED.write_text(name)
        time.sleep(seconds)
        with LOG.open("a") as f:
            f.write(name + "\\n")
        return name + "(" + ",".join(str(v) for v in inputs.values()) + ")"

    step.__name__ = name
    return step


wf = planloop.Workflow("crashy", store=os.environ["STORE"])
a = wf.step(record("a"), id="a")
side = wf.step(record("side"), id="side")
slow = wf.step(record("slow", seconds=SLOW, marker=True), id="slow", x=a, y=side)
wf.step(record("c"), id="c", x=slow)
"""


def python(code: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_run_killed_in_the_middle_of_act_resumes_in_another_process(
    db: Harness, tmp_path: Path
) -> None:
    option = db.store_option()
    if option is None:
        pytest.skip("no other process can reach this backend's database")
    (tmp_path / "crashy.py").write_text(CRASHY)
    log, started = tmp_path / "steps.log", tmp_path / "started"
    env = {
        **os.environ,
        "STEP_LOG": str(log),
        "STARTED": str(started),
        "STORE": option,
        "PYTHONPATH": ".",
    }
    first = python(
        "from crashy import wf\nwf.run_sync(run_id='crash-1')",
        {**env, "SLOW": "60", "PLANLOOP_LEASE_SECONDS": "1"},  # abandoned 1 s after the kill
        tmp_path,
    )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert sorted(log.read_text().split()) == ["a", "side"]
    with db.open() as store:
        assert store.get_run("crash-1").status == "running"
        while not store.get_run("crash-1").abandoned:  # its lease expires: it can be resumed
            assert time.monotonic() < deadline, "the killed run's lease never expired"
            time.sleep(0.05)
        checkpoint = store.load_checkpoint("crash-1")
        assert checkpoint is not None and checkpoint.state["state"] == "act"
        done = {
            e.result.step_id
            for e in store.load_trace("crash-1").events
            if e.kind == "step_finished"
        }
        assert done == {"a", "side"}  # durable before "slow" started

    second = python(
        "from crashy import wf\nr = wf.resume_sync('crash-1')\nprint(r.status, r.output)",
        env,
        tmp_path,
    )
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert out.strip() == "finished c(slow(a(),side()))"
    assert sorted(log.read_text().split()) == ["a", "c", "side", "slow"]  # each exactly once
    with db.open() as store:
        run = store.get_run("crash-1")
        trace = store.load_trace("crash-1")
    assert run.status == "finished"
    assert [e.kind for e in trace.events].count("run_resumed") == 1
    finished = [e.result.step_id for e in trace.events if e.kind == "step_finished"]
    assert sorted(finished) == ["a", "c", "side", "slow"]
    check_trace(trace)
