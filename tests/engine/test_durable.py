"""Durable runs: recorded by default, resumed after a real crash, paused for a person."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import planloop
from planloop import Plan, Step
from planloop.engine.durable import Approve, Edit, Reject, close_stores, open_store
from planloop.engine.store import SQLiteStore
from planloop.errors import CannotResume, DefinitionError, InvalidPlan, StoreError
from planloop.models import ToolCall
from planloop.testing import ScriptedModel, check_trace


@planloop.tool
def population(city: str) -> int:
    """Population of a city."""
    return {"Oslo": 717_710, "Bergen": 291_940}[city]


def paused_agent(script: list[object], **options: object) -> planloop.Agent:
    return planloop.Agent(ScriptedModel(script), [population], interrupt_before=["act"], **options)


def test_a_run_is_recorded_by_default(tmp_path: Path) -> None:
    model = ScriptedModel([ToolCall("population", {"city": "Oslo"}), "about 718k"])
    result = planloop.Agent(model, [population]).run_sync("Oslo?")
    store = open_store(None)
    assert isinstance(store, SQLiteStore)
    assert store.path == Path(os.environ["PLANLOOP_HOME"]) / "planloop.db"
    record = store.get_run(result.run_id)
    assert (record.status, record.stop_reason, record.iterations) == ("finished", None, 1)
    assert store.load_trace(result.run_id) == result.trace
    assert store.load_checkpoint(result.run_id) is not None


def test_store_false_records_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    agent = planloop.Agent(ScriptedModel(["hi"]), [], store=False)
    result = agent.run_sync("hello")
    with SQLiteStore(path) as other:
        assert other.list_runs() == []
    with pytest.raises(StoreError, match="this runnable has no store"):
        agent.resume_sync(result.run_id)


def test_planloop_store_off_turns_the_default_store_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANLOOP_STORE", "off")
    assert open_store(None) is None
    assert open_store(True) is not None


def test_a_store_can_be_a_path(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.db"
    result = planloop.Agent(ScriptedModel(["hi"]), [], store=path).run_sync("hello")
    with SQLiteStore(path) as store:
        assert store.get_run(result.run_id).status == "finished"


def test_bad_store_option_is_a_definition_error() -> None:
    agent = planloop.Agent(ScriptedModel(["hi"]), [], store=42)  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match=r"store=42; use None or True"):
        agent.run_sync("x")


def test_interrupt_before_needs_a_store_and_a_known_state() -> None:
    with pytest.raises(DefinitionError) as err:
        planloop.Agent(None, [], interrupt_before=["act"], store=False)
    assert "interrupt_before needs a store" in str(err.value)
    with pytest.raises(DefinitionError) as err2:
        planloop.Agent(None, [], interrupt_before=["review"])
    assert "interrupt_before names ['review'], which are not states of the machine" in str(
        err2.value
    )


def test_pause_then_approve_in_the_same_process() -> None:
    agent = paused_agent([ToolCall("population", {"city": "Oslo"}), "about 718k"])
    paused = agent.run_sync("Oslo?")
    assert paused.status == "paused"
    assert paused.output is None
    assert [str(s) for s in paused.trace.states] == ["plan"]
    assert paused.trace.events[-1].kind == "run_paused"
    assert open_store(None).get_run(paused.run_id).status == "paused"  # type: ignore[union-attr]

    done = agent.resume_sync(paused.run_id, Approve())
    assert done.status == "finished"
    assert done.output == "about 718k"
    assert [obs for _, obs in done.intermediate_steps] == [717_710]
    assert [str(s) for s in done.trace.states] == ["plan", "act", "observe", "plan", "finish"]
    kinds = [e.kind for e in done.trace.events]
    assert kinds.count("run_paused") == kinds.count("run_resumed") == 1
    # it paused again before the second act? no: the answer needs no act
    check_trace(done.trace)


def test_every_act_pauses_until_approved() -> None:
    script: list[object] = [
        ToolCall("population", {"city": "Oslo"}),
        ToolCall("population", {"city": "Bergen"}),
        "done",
    ]
    agent = paused_agent(script)
    first = agent.run_sync("both")
    second = agent.resume_sync(first.run_id, Approve())
    assert second.status == "paused"
    assert [obs for _, obs in second.intermediate_steps] == [717_710]
    third = agent.resume_sync(first.run_id, Approve())
    assert third.status == "finished"
    assert [obs for _, obs in third.intermediate_steps] == [717_710, 291_940]


def test_edit_replaces_the_plan_and_an_invalid_edit_changes_nothing() -> None:
    agent = paused_agent([ToolCall("population", {"city": "Oslo"}), "Bergen then"])
    paused = agent.run_sync("Oslo?")
    bad = Plan([Step(id="x", tool="area", args={"city": "Bergen"})])
    with pytest.raises(InvalidPlan) as err:
        agent.resume_sync(paused.run_id, Edit(plan=bad))
    assert str(err.value) == (
        "invalid plan (1 problem):\n"
        "  - step 'x' uses tool 'area', which does not exist; use one of: population"
    )
    assert open_store(None).get_run(paused.run_id).status == "paused"  # type: ignore[union-attr]
    edited = Plan([Step(id="b", tool="population", args={"city": "Bergen"})])
    done = agent.resume_sync(paused.run_id, Edit(plan=edited))
    assert done.output == "Bergen then"
    assert [(a.step_id, obs) for a, obs in done.intermediate_steps] == [("b", 291_940)]


def test_reject_sends_the_message_back_to_the_planner() -> None:
    agent = paused_agent([ToolCall("population", {"city": "Oslo"}), "fine, no lookup"])
    paused = agent.run_sync("Oslo?")
    done = agent.resume_sync(paused.run_id, Reject(message="do not look that up"))
    assert done.output == "fine, no lookup"
    assert done.steps == []
    ((action, observation),) = done.intermediate_steps
    assert action.tool == "_Exception"
    assert observation == "do not look that up"
    assert [str(s) for s in done.trace.states] == ["plan", "observe", "plan", "finish"]


def test_resume_errors_say_what_is_wrong() -> None:
    agent = paused_agent([ToolCall("population", {"city": "Oslo"}), "ok"])
    paused = agent.run_sync("Oslo?")
    with pytest.raises(CannotResume) as no_decision:
        agent.resume_sync(paused.run_id)
    assert str(no_decision.value) == (
        f"run {paused.run_id!r} is paused, waiting for a decision; pass Approve(), "
        "Edit(plan=...) or Reject(message=...)"
    )
    other = planloop.Agent(ScriptedModel(["x"]), [], interrupt_before=["act"])
    with pytest.raises(CannotResume) as wrong_definition:
        other.resume_sync(paused.run_id, Approve())
    assert "was started by another definition of 'agent'" in str(wrong_definition.value)
    done = agent.resume_sync(paused.run_id, Approve())
    with pytest.raises(CannotResume) as ended:
        agent.resume_sync(done.run_id)
    assert str(ended.value) == (
        f"run {done.run_id!r} already ended (finished); only a paused run or one whose "
        "process died can be resumed. Start a new run instead"
    )
    with pytest.raises(StoreError, match="no run 'nope' in the store"):
        agent.resume_sync("nope")


def test_a_decision_for_a_run_that_is_not_paused_is_refused(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    wf = planloop.Workflow("w", store=store)
    wf.step(lambda: 1, id="one")
    result = wf.run_sync()
    store.reopen_run(result.run_id)  # as if its process had died
    with pytest.raises(CannotResume, match="is not paused, so there is nothing to decide"):
        wf.resume_sync(result.run_id, Approve())


# --- a real crash: SIGKILL in the middle of act, resumed in a new process -------------

WORKFLOW = """
import os
import pathlib
import time

import planloop

LOG = pathlib.Path(os.environ["STEP_LOG"])
STARTED = pathlib.Path(os.environ["STARTED"])
SLOW = float(os.environ.get("SLOW", "0"))


def record(name: str, *, seconds: float = 0.0, marker: bool = False):
    def step(**inputs: object) -> str:
        if marker:
            STARTED.write_text(name)
        time.sleep(seconds)
        with LOG.open("a") as f:
            f.write(name + "\\n")
        return name + "(" + ",".join(str(v) for v in inputs.values()) + ")"

    step.__name__ = name
    return step


wf = planloop.Workflow("crashy")
a = wf.step(record("a"), id="a")
b = wf.step(record("b"), id="b", x=a)
side = wf.step(record("side"), id="side")
# "slow" waits for "side" too, so that every other step has ended when it starts
slow = wf.step(record("slow", seconds=SLOW, marker=True), id="slow", x=b, y=side)
wf.step(record("c"), id="c", x=slow, y=side)
"""


def _python(code: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_run_killed_in_the_middle_of_act_resumes_in_a_new_process(tmp_path: Path) -> None:
    (tmp_path / "crashy.py").write_text(WORKFLOW)
    log, started = tmp_path / "steps.log", tmp_path / "started"
    env = {**os.environ, "STEP_LOG": str(log), "STARTED": str(started), "PYTHONPATH": "."}
    first = _python(
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
    before = log.read_text().split()
    assert sorted(before) == ["a", "b", "side"]

    store = SQLiteStore(Path(env["PLANLOOP_HOME"]) / "planloop.db")
    assert store.get_run("crash-1").status == "running"
    while not store.get_run("crash-1").abandoned:  # its lease expires: it can be resumed
        assert time.monotonic() < deadline, "the killed run's lease never expired"
        time.sleep(0.05)
    store.close()

    second = _python(
        "from crashy import wf\nr = wf.resume_sync('crash-1')\nprint(r.status, r.output)",
        env,
        tmp_path,
    )
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert out.strip() == "finished c(slow(b(a()),side()),side())"
    after = log.read_text().split()
    assert sorted(after) == ["a", "b", "c", "side", "slow"]  # each exactly once

    with SQLiteStore(Path(env["PLANLOOP_HOME"]) / "planloop.db") as store:
        record = store.get_run("crash-1")
        trace = store.load_trace("crash-1")
    assert record.status == "finished"
    kinds = [e.kind for e in trace.events]
    assert kinds.count("run_resumed") == 1
    finished = [e.result.step_id for e in trace.events if e.kind == "step_finished"]
    assert sorted(finished) == ["a", "b", "c", "side", "slow"]
    assert [str(s) for s in trace.states] == ["plan", "act", "observe", "plan", "finish"]
    # the attempt that completed started after the resume (the killed one's start is
    # in the trace only if another step ended before the kill)
    resumed_at = kinds.index("run_resumed")
    slow_starts = [
        i for i, e in enumerate(trace.events) if e.kind == "step_started" and e.step_id == "slow"
    ]
    assert slow_starts[-1] > resumed_at
    check_trace(trace)


AGENTS = '''
import os

import planloop
from planloop.models import ToolCall
from planloop.testing import ScriptedModel


@planloop.tool
def population(city: str) -> int:
    """Population of a city."""
    return {"Oslo": 717_710, "Bergen": 291_940}[city]


def agent(*script):
    return planloop.Agent(ScriptedModel(list(script)), [population], interrupt_before=["act"])


# The first process plans; the process that resumes builds the agent with the same
# script, and its model goes on after the call the recorded run made.
SCRIPT = (ToolCall("population", {"city": "Oslo"}), "Oslo has about 718k people.")
planner = agent(*SCRIPT)
answerer = agent(*SCRIPT)
'''


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        ("Approve()", "finished Oslo has about 718k people. [717710]"),
        ("Reject(message='not now')", "finished Oslo has about 718k people. ['not now']"),
        (
            "Edit(plan=Plan([Step(id='b', tool='population', args={'city': 'Bergen'})]))",
            "finished Oslo has about 718k people. [291940]",
        ),
    ],
)
def test_a_paused_run_is_decided_in_another_process(
    tmp_path: Path, decision: str, expected: str
) -> None:
    (tmp_path / "agents.py").write_text(AGENTS)
    env = {**os.environ, "PYTHONPATH": "."}
    first = _python(
        "from agents import planner\nr = planner.run_sync('Oslo?', run_id='p-1')\nprint(r.status)",
        env,
        tmp_path,
    )
    out, err = first.communicate(timeout=60)
    assert (first.returncode, out.strip()) == (0, "paused"), err
    second = _python(
        "from agents import answerer\n"
        "from planloop import Plan, Step\n"
        "from planloop.engine.durable import Approve, Edit, Reject\n"
        f"r = answerer.resume_sync('p-1', {decision})\n"
        "print(r.status, r.output, [obs for _, obs in r.intermediate_steps])",
        env,
        tmp_path,
    )
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert out.strip() == expected


@planloop.tool
def fetch(url: str, api_key: str) -> str:
    """Fetch a page with a key."""
    return f"pw-Zebra-4471 is the password at {url}"


def test_secrets_reach_neither_the_database_file_nor_the_picture(tmp_path: Path) -> None:
    from planloop.visualize import render

    planloop.register_secret("pw-Zebra-4471")
    model = ScriptedModel(
        [ToolCall("fetch", {"url": "https://x.test", "api_key": "sk-Quokka-9930"}), "done"]
    )
    path = tmp_path / "runs.db"
    result = planloop.Agent(model, [fetch], store=path).run_sync("get it")
    assert "sk-Quokka-9930" in result.trace.to_json(redact=False)  # in memory the run has them
    svg = render(result.trace, tmp_path / "run.svg")
    plan_svg = render(
        Plan([Step(id="f", tool="fetch", args={"url": "u", "api_key": "sk-Quokka-9930"})]),
        tmp_path / "plan.svg",
    )
    close_stores()
    for file in (path, Path(f"{path}-wal"), svg, plan_svg):
        if file.exists():
            data = file.read_bytes()
            assert b"sk-Quokka-9930" not in data, file
            assert b"pw-Zebra-4471" not in data, file
    assert b"[redacted] is the password" in svg.read_bytes()
    assert b"api_key=[redacted]" in plan_svg.read_bytes()
    with SQLiteStore(path) as store:
        started = [e for e in store.load_trace(result.run_id).events if e.kind == "step_started"]
    assert started[0].args == {"url": "https://x.test", "api_key": "[redacted]"}


def test_a_paused_plan_of_callables_its_planner_cannot_rebuild_is_refused() -> None:
    # Steps that run Python callables are stored by name only; a planner that is not
    # a DurablePlanner (plan-and-execute's is) cannot make them again.
    def shout(text: str) -> str:
        return text.upper()

    def decide(ctx: planloop.RunContext) -> Plan | planloop.Answer:
        if ctx.all_steps:
            return planloop.Answer("done")
        return Plan([Step(id="s", tool=shout, args={"text": "hi"})])

    agent = planloop.Agent(
        None, [], planner=planloop.FunctionPlanner(decide), interrupt_before=["act"]
    )
    paused = agent.run_sync("x")
    assert paused.status == "paused"
    with pytest.raises(CannotResume) as err:
        agent.resume_sync(paused.run_id, Approve())
    assert str(err.value) == (
        f"run {paused.run_id!r} has an unfinished plan whose steps ['s'] run Python "
        "callables, which 'agent' cannot rebuild from the store; start a new run instead"
    )
    assert open_store(None).get_run(paused.run_id).status == "paused"  # type: ignore[union-attr]


def test_edit_with_step_texts_is_for_plan_and_execute_runs() -> None:
    agent = paused_agent([ToolCall("population", {"city": "Oslo"}), "ok"])
    paused = agent.run_sync("Oslo?")
    with pytest.raises(CannotResume) as err:
        agent.resume_sync(paused.run_id, Edit(steps=["look it up"]))
    assert str(err.value) == (
        f"run {paused.run_id!r} plans with tools, not step texts: Edit(steps=...) is for "
        "plan-and-execute runs; pass Edit(plan=Plan([...])) instead"
    )
    with pytest.raises(ValueError, match=r"give either plan= .* or steps="):
        Edit()
    with pytest.raises(ValueError, match="not both or neither"):
        Edit(plan=Plan([Step(id="a", tool="population")]), steps=["x"])


# --- approval steps ----------------------------------------------------------------------


def release(log: list[str]) -> planloop.Workflow:
    def step(name: str):  # type: ignore[no-untyped-def]
        def run(**inputs: object) -> str:
            log.append(name)
            return name

        run.__name__ = name
        return run

    wf = planloop.Workflow("release")
    built = wf.step(step("build"), id="build")
    wf.step(step("docs"), id="docs")  # does not wait for the approval
    ok = wf.approval("Ship it?", id="ok", depends_on=[built])
    shipped = wf.step(step("ship"), id="ship", depends_on=[ok])
    again = wf.approval("Announce it?", id="ok2", depends_on=[shipped])
    wf.step(step("announce"), id="announce", depends_on=[again])
    return wf


def test_approval_steps_pause_the_act_one_decision_at_a_time() -> None:
    log: list[str] = []
    wf = release(log)
    first = wf.run_sync()
    assert first.status == "paused"
    assert sorted(log) == ["build", "docs"]
    pause = first.trace.events[-1]
    assert pause.kind == "run_paused"
    assert (pause.state, pause.reason, pause.pending["approval"]) == (
        "act",
        "approval",
        {"ok": "Ship it?"},
    )
    second = wf.resume_sync(first.run_id, Approve())
    assert second.status == "paused"
    assert second.trace.events[-1].pending["approval"] == {"ok2": "Announce it?"}
    assert sorted(log) == ["build", "docs", "ship"]
    done = wf.resume_sync(first.run_id, Approve())
    assert done.status == "finished"
    assert done.output == {"docs": "docs", "announce": "announce"}
    assert sorted(log) == ["announce", "build", "docs", "ship"]  # each exactly once
    assert sorted(r.step_id for r in done.steps) == [
        "announce",
        "build",
        "docs",
        "ok",
        "ok2",
        "ship",
    ]
    assert [str(s) for s in done.trace.states] == ["plan", "act", "observe", "plan", "finish"]
    check_trace(done.trace)


def test_a_rejected_approval_skips_what_waits_for_it() -> None:
    log: list[str] = []
    wf = release(log)
    paused = wf.run_sync()
    with pytest.raises(CannotResume, match=r"paused at approval steps \['ok'\]; decide them"):
        wf.resume_sync(paused.run_id, Edit(plan=Plan([Step(id="x", tool="t")])))
    with pytest.raises(planloop.StepFailed) as err:
        wf.resume_sync(paused.run_id, Reject(message="not on a Friday"))
    assert str(err.value).startswith(
        "workflow 'release': step 'ok' failed: rejected by a person: not on a Friday"
    )
    result = err.value.result
    assert result is not None
    statuses = {r.step_id: r.status.value for r in result.steps}
    assert statuses == {
        "build": "succeeded",
        "docs": "succeeded",
        "ok": "failed",
        "ship": "skipped",
        "ok2": "skipped",
        "announce": "skipped",
    }
    assert sorted(log) == ["build", "docs"]


class FailingStore(SQLiteStore):
    """A real store whose writes start failing after ``ok`` of them (a full disk, say)."""

    def __init__(self, path: Path, ok: int) -> None:
        super().__init__(path)
        self.ok = ok

    def save(self, run_id: str, events: Any, *, first_seq: int, **more: Any) -> None:
        if self.ok <= 0:
            raise StoreError(f"cannot write to the store {self.path}: database or disk is full")
        self.ok -= 1
        super().save(run_id, events, first_seq=first_seq, **more)


def test_a_store_that_fails_mid_run_stops_it_with_a_clear_error(tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "s.db", ok=3)
    model = ScriptedModel([ToolCall("population", {"city": "Oslo"})] * 5 + ["done"])
    agent = planloop.Agent(model, [population], store=store)
    with pytest.raises(planloop.RunError) as err:
        agent.run_sync("again", run_id="full-1")
    result = err.value.result
    assert result is not None
    assert (result.status, result.stop_reason) == ("stopped", "error")
    assert str(err.value).startswith("the store could not record run 'full-1': cannot write")
    store.ok = 100
    kept = store.load_trace("full-1")
    assert [e.kind for e in kept.events][:2] == ["run_started", "model_called"]
    assert store.get_run("full-1").status == "running"  # its end could not be written


def test_a_store_that_fails_at_the_start_raises_to_the_caller(tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "s.db", ok=0)
    agent = planloop.Agent(ScriptedModel(["hi"]), [], store=store)
    with pytest.raises(StoreError, match="database or disk is full"):
        agent.run_sync("x")


def test_a_workflow_step_with_a_retry_policy_resumes_with_its_policy() -> None:
    # A policy's exception classes cannot be stored as JSON; the workflow's own step
    # (with its policy) runs after the resume.
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("try again")
        return "ok"

    wf = planloop.Workflow("retrying")
    ok = wf.approval("Go?")
    policy = planloop.RetryPolicy(attempts=3, initial_interval=0.001, jitter=0)
    wf.step(flaky, id="f", retry=policy, depends_on=[ok])
    paused = wf.run_sync()
    assert paused.status == "paused"
    done = wf.resume_sync(paused.run_id, Approve())
    assert (done.output, len(calls)) == ("ok", 2)
    assert [r.attempts for r in done.steps if r.step_id == "f"] == [2]


def test_the_picture_of_a_paused_run_says_what_it_waits_for() -> None:
    from planloop.visualize import to_dot

    log: list[str] = []
    paused = release(log).run_sync()
    dot = to_dot(paused.trace)
    assert 'label="release · paused for approval: Ship it? · 0 iterations' in dot
    assert 'label="act ×1\\n(paused)"' in dot
    interrupted = paused_agent([ToolCall("population", {"city": "Oslo"})]).run_sync("Oslo?")
    assert 'label="agent · paused before act · 0 iterations' in to_dot(interrupted.trace)
