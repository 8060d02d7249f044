"""Durable plan-and-execute runs: resumed mid-act after a real crash, decided across
processes, their sub-agent runs stored with them, replayed without models."""

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
from planloop import StepResponse
from planloop.engine.durable import Approve, Edit, close_stores, open_store
from planloop.engine.store import SQLiteStore
from planloop.errors import CannotResume, InvalidPlan
from planloop.models import ToolCall
from planloop.testing import ScriptedModel, check_trace

PLANLOOP = str(Path(sys.executable).parent / "planloop")

# The executor's model does the step it is asked for and notes it in STEP_LOG, so
# the log shows every time a step's sub-agent called its model. Its answer names
# the step and how many previous responses its prompt held.
DEFINITIONS = """
import asyncio
import os
import pathlib

import planloop
from planloop.models import ChatMessage, ModelResponse
from planloop.testing import ScriptedModel

LOG = pathlib.Path(os.environ.get("STEP_LOG", "steps.log"))
STARTED = pathlib.Path(os.environ.get("STARTED", "started"))
SLOW = float(os.environ.get("SLOW", "0"))


class Worker:
    name = "worker"

    async def chat(self, messages, *, tools=None, response_schema=None, stop=None):
        prompt = messages[-1].content
        step = prompt.rsplit("Current objective: ", 1)[1]
        if step == "slow":
            STARTED.write_text(step)
            await asyncio.sleep(SLOW)
        with LOG.open("a") as f:
            f.write(step + "\\n")
        answer = f"{step}<{prompt.count('Response: ')}>"
        return ModelResponse(message=ChatMessage(role="assistant", content=answer))


PLAN = "Plan:\\n1. a\\n2. b\\n3. slow\\n4. c\\n<END_OF_PLAN>"


def build(*plans, **options):
    planner = planloop.load_chat_planner(ScriptedModel(list(plans)))
    return planloop.PlanAndExecute(planner, planloop.load_agent_executor(Worker(), []), **options)


pe = build(PLAN)
gated = build(PLAN, interrupt_before=["act"])
# what the process that resumes after a rejection plans next
replanned = build("1. c", interrupt_before=["act"])
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


def _planloop(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PLANLOOP, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _setup(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    (tmp_path / "defs.py").write_text(DEFINITIONS)
    log, started = tmp_path / "steps.log", tmp_path / "started"
    env = {**os.environ, "STEP_LOG": str(log), "STARTED": str(started), "PYTHONPATH": "."}
    env["PLANLOOP_LEASE_SECONDS"] = "1"  # a killed run is abandoned, resumable, 1 s after
    env.pop("PLANLOOP_STORE", None)
    return env, log, started


def _store(env: dict[str, str]) -> SQLiteStore:
    return SQLiteStore(Path(env["PLANLOOP_HOME"]) / "planloop.db")


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out.strip()


# --- a real crash: SIGKILL in the middle of a plan-and-execute act ----------------------


@pytest.mark.parametrize("via", ["python", "cli"])
def test_a_plan_and_execute_run_killed_mid_act_resumes_in_a_new_process(
    tmp_path: Path, via: str
) -> None:
    env, log, started = _setup(tmp_path)
    if via == "python":
        first = _python(
            "from defs import pe\npe.run_sync('do it', run_id='pe-crash')",
            {**env, "SLOW": "60"},
            tmp_path,
        )
    else:
        first = _planloop(
            ["run", "defs.py:pe", "--input", "do it"], {**env, "SLOW": "60"}, tmp_path
        )
    deadline = time.monotonic() + 60
    while not started.exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert log.read_text().split() == ["a", "b"]

    with _store(env) as store:
        [record] = store.list_runs()
        run_id = record.run_id
        assert record.status == "running"
        while not store.get_run(run_id).abandoned:  # its lease expires: it can be resumed
            assert time.monotonic() < deadline, "the killed run's lease never expired"
            time.sleep(0.05)
        # the steps that completed are on disk with their sub-agent runs
        assert sorted(store.load_trace(run_id).children) == ["step_1", "step_2"]

    if via == "python":
        second = _python(
            f"from defs import pe\nr = pe.resume_sync({run_id!r})\nprint('output:', r.output)",
            env,
            tmp_path,
        )
    else:
        second = _planloop(["resume", run_id], env, tmp_path)
    out = _finish(second)
    assert "output: c<3>" in out.splitlines()
    assert log.read_text().split() == ["a", "b", "slow", "c"]  # each exactly once

    with _store(env) as store:
        assert store.get_run(run_id).status == "finished"
        trace = store.load_trace(run_id)
    kinds = [e.kind for e in trace.events]
    assert kinds.count("run_resumed") == 1
    finished = [e.result.step_id for e in trace.events if e.kind == "step_finished"]
    assert finished == ["step_1", "step_2", "step_3", "step_4"]
    assert [e.result.output for e in trace.events if e.kind == "step_finished"] == [
        {"response": r} for r in ("a<0>", "b<1>", "slow<2>", "c<3>")
    ]
    assert [str(s) for s in trace.states] == ["plan", "act", "observe", "plan", "finish"]
    # every sub-agent run is kept, the ones from before the crash and after it; the
    # steps after it were given the responses of the steps before it
    assert sorted(trace.children) == ["step_1", "step_2", "step_3", "step_4"]
    assert trace.children["step_4"].input == (
        "Previous steps: Step: a\n\nResponse: a<0>\n\nStep: b\n\nResponse: b<1>\n\n"
        "Step: slow\n\nResponse: slow<2>\n\nCurrent objective: c"
    )
    assert trace.children["step_3"].output == "slow<2>"
    check_trace(trace)


# --- a person decides, in another process -----------------------------------------------


@pytest.mark.parametrize(
    ("decision", "output", "log"),
    [
        ("Approve()", "c<3>", ["a", "b", "slow", "c"]),
        ("Edit(steps=['b', 'c'])", "c<1>", ["b", "c"]),
        (
            "Edit(plan=Plan([Step(id='x', tool='execute_step', args={'step': 'c'})]))",
            "c<0>",
            ["c"],
        ),
    ],
)
def test_a_paused_plan_and_execute_run_is_decided_in_another_process(
    tmp_path: Path, decision: str, output: str, log: list[str]
) -> None:
    env, log_file, _ = _setup(tmp_path)
    first = _python(
        "from defs import gated\nr = gated.run_sync('do it', run_id='pe-1')\nprint(r.status)",
        env,
        tmp_path,
    )
    assert _finish(first) == "paused"
    assert not log_file.exists()  # nothing ran before the decision
    second = _python(
        "from defs import gated\n"
        "from planloop import Approve, Edit, Plan, Step\n"
        f"r = gated.resume_sync('pe-1', {decision})\n"
        "print(r.status, r.output, [s.output.response for s in r.steps])",
        env,
        tmp_path,
    )
    responses = [f"{step}<{i}>" for i, step in enumerate(log)]
    assert _finish(second) == f"finished {output} {responses}"
    assert log_file.read_text().split() == log
    with _store(env) as store:
        trace = store.load_trace("pe-1")
    assert sorted(trace.children) == [f"step_{i}" for i in range(1, len(log) + 1)]
    check_trace(trace)


def test_a_rejected_plan_goes_back_to_the_planner_with_the_message(tmp_path: Path) -> None:
    env, log_file, _ = _setup(tmp_path)
    first = _python("from defs import gated\ngated.run_sync('do it', run_id='pe-r')", env, tmp_path)
    _finish(first)
    second = _python(
        "from defs import replanned\n"
        "from planloop import Reject\n"
        "r = replanned.resume_sync('pe-r', Reject(message='only c, please'))\n"
        "print(r.status)\n"
        "print(repr(replanned.planner.model.requests[0].messages[1].content))",
        env,
        tmp_path,
    )
    status, prompt = _finish(second).splitlines()
    assert status == "paused"  # the new plan waits for a decision too
    assert prompt == repr(
        "do it\n\nThe previous plan was not accepted: only c, please\nMake another plan."
    )
    third = _python(
        "from defs import replanned\nfrom planloop import Approve\n"
        "r = replanned.resume_sync('pe-r', Approve())\nprint(r.status, r.output)",
        env,
        tmp_path,
    )
    assert _finish(third) == "finished c<0>"
    assert log_file.read_text().split() == ["c"]


def test_the_cli_runs_decides_and_replays_a_plan_and_execute_run(tmp_path: Path) -> None:
    env, log_file, _ = _setup(tmp_path)
    env["PLANLOOP_HOME"] = str(tmp_path / "home")

    def planloop_cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PLANLOOP, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    def field(out: str, label: str) -> str:
        [line] = [x for x in out.splitlines() if x.startswith(f"{label}:")]
        return line.split(":", 1)[1].strip()

    paused = planloop_cli("run", "defs.py:gated", "--input", "do it")
    assert paused.returncode == 3, paused.stderr
    run_id = field(paused.stdout, "run")
    rejected = planloop_cli("resume", run_id, "--reject", "fewer steps")
    assert rejected.returncode == 3, rejected.stderr  # it planned again, and waits again
    (tmp_path / "steps.json").write_text('["b", "c"]')
    edited = planloop_cli("resume", run_id, "--edit", "steps.json")
    assert edited.returncode == 0, edited.stderr
    assert field(edited.stdout, "output") == "c<1>"
    assert log_file.read_text().split() == ["b", "c"]
    replayed = planloop_cli("replay", run_id)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "the replay matches the recorded run" in replayed.stdout
    assert log_file.read_text().split() == ["b", "c"]  # the replay called no model
    with SQLiteStore(tmp_path / "home" / "planloop.db") as store:
        trace = store.load_trace(run_id)
        assert store.get_run(run_id).definition == f"{tmp_path / 'defs.py'}:gated"
    decisions = [e.decision for e in trace.events if e.kind == "run_resumed"]
    assert decisions == [
        {"kind": "reject", "message": "fewer steps"},
        {"kind": "edit", "steps": ["b", "c"]},
    ]
    check_trace(trace)


def _paused(planner_script: list[str], executor_script: list[object], **options: object):  # type: ignore[no-untyped-def]
    planner = planloop.load_chat_planner(ScriptedModel(planner_script))
    executor = planloop.load_agent_executor(ScriptedModel(executor_script), [])
    return planloop.PlanAndExecute(planner, executor, interrupt_before=["act"], **options)


def test_an_invalid_edit_is_refused_and_the_run_stays_paused() -> None:
    pe = _paused(["1. find it\n2. say it"], ["found", "said"])
    paused = pe.run_sync("What is it?")
    with pytest.raises(InvalidPlan) as err:
        pe.resume_sync(paused.run_id, Edit(steps=["look", "  "]))
    assert str(err.value) == (
        "invalid plan (1 problem):\n  - step 2 is empty; write what the sub-agent should do"
    )
    with pytest.raises(InvalidPlan) as none:
        pe.resume_sync(paused.run_id, Edit(steps=[]))
    assert "the plan has no steps; give at least one step text" in str(none.value)
    with pytest.raises(InvalidPlan) as tools:
        pe.resume_sync(
            paused.run_id, Edit(plan=planloop.Plan([planloop.Step(id="s", tool="search")]))
        )
    assert str(tools.value) == (
        "invalid plan (1 problem):\n  - step 's' has no 'step' text argument; a "
        "plan-and-execute plan is a list of step texts: pass Edit(steps=['...', ...])"
    )
    too_many = Edit(steps=[f"step {i}" for i in range(1001)])
    with pytest.raises(InvalidPlan, match="1001 steps"):
        pe.resume_sync(paused.run_id, too_many)
    assert open_store(None).get_run(paused.run_id).status == "paused"  # type: ignore[union-attr]
    done = pe.resume_sync(paused.run_id, Edit(steps=["say it"]))
    assert (done.status, done.output) == ("finished", "found")


def test_replanning_runs_pause_before_each_act_and_number_their_steps_on() -> None:
    # Each resume builds the object again, as a new process would.
    def build(plans: list[str], answers: list[object]):  # type: ignore[no-untyped-def]
        return _paused(plans, answers, replan=True)

    first = build(["1. look\n2. guess"], []).run_sync("task", run_id="re-1")
    assert first.status == "paused"
    second = build(["1. confirm"], ["looked"]).resume_sync("re-1", Approve())
    assert second.status == "paused"
    confirm_model = ScriptedModel(["confirmed it"])
    last = planloop.PlanAndExecute(
        planloop.load_chat_planner(ScriptedModel(["Final Answer: confirmed"])),
        planloop.load_agent_executor(confirm_model, []),
        interrupt_before=["act"],
        replan=True,
    )
    done = last.resume_sync("re-1", Approve())
    assert (done.status, done.output) == ("finished", "confirmed")
    assert [r.step_id for r in done.steps] == ["step_1", "step_2"]
    assert [r.output for r in done.steps] == [
        StepResponse(response="looked"),
        StepResponse(response="confirmed it"),
    ]
    assert confirm_model.requests[0].messages[0].content == (
        "Previous steps: Step: look\n\nResponse: looked\n\nCurrent objective: confirm"
    )
    assert sorted(open_store(None).load_trace("re-1").children) == ["step_1", "step_2"]  # type: ignore[union-attr]


def test_a_run_of_another_plan_and_execute_definition_is_refused() -> None:
    paused = _paused(["1. find it"], []).run_sync("x")
    other = _paused([], [], replan=True)
    with pytest.raises(CannotResume, match="was started by another definition"):
        other.resume_sync(paused.run_id, Approve())


# --- sub-agent traces in the store ------------------------------------------------------


@planloop.tool
def fetch(url: str, api_key: str) -> str:
    """Fetch a page with a key."""
    return f"page at {url}"


def test_sub_agent_traces_are_stored_redacted_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    executor = planloop.load_agent_executor(
        ScriptedModel(
            [ToolCall("fetch", {"url": "https://x.test", "api_key": "sk-Walrus-5521"}), "fetched"]
        ),
        [fetch],
    )
    planner = planloop.load_chat_planner(ScriptedModel(["1. fetch the page"]))
    result = planloop.PlanAndExecute(planner, executor, store=path).run_sync("get it")
    assert "sk-Walrus-5521" in result.trace.children["step_1"].to_json(redact=False)
    close_stores()
    for file in (path, Path(f"{path}-wal")):
        if file.exists():
            assert b"sk-Walrus-5521" not in file.read_bytes(), file
    with SQLiteStore(path) as store:
        loaded = store.load_trace(result.run_id)
    assert sorted(loaded.children) == ["step_1"]
    child = loaded.children["step_1"]
    assert child.run_id == result.trace.children["step_1"].run_id
    assert child.output == "fetched"
    started = [e for e in child.events if e.kind == "step_started"]
    assert started[0].args == {"url": "https://x.test", "api_key": "[redacted]"}
    from planloop.visualize import render

    for trace in (loaded, result.trace):
        svg = render(trace, tmp_path / "run.svg").read_text()
        assert "sub&#45;agent of step_1" in svg
        assert "sk-Walrus-5521" not in svg


def test_show_draws_the_sub_agent_runs_inside_their_steps(tmp_path: Path) -> None:
    from planloop.visualize import to_dot

    env, _, _ = _setup(tmp_path)
    env["PLANLOOP_HOME"] = str(tmp_path / "home")
    _finish(_python("from defs import pe\npe.run_sync('do it', run_id='pe-show')", env, tmp_path))
    shown = _finish(_planloop(["show", "pe-show", "-o", "run.svg"], env, tmp_path))
    assert "steps:      4 (4 succeeded)" in shown
    svg = (tmp_path / "run.svg").read_text()
    for step in ("step_1", "step_2", "step_3", "step_4"):
        assert f"sub&#45;agent of {step} · finished" in svg
    with SQLiteStore(tmp_path / "home" / "planloop.db") as store:
        trace = store.load_trace("pe-show")
    assert to_dot(trace).count('subgraph "cluster_a1_') == 4


# --- replay -----------------------------------------------------------------------------


def test_a_plan_and_execute_run_replays_from_the_store_without_models() -> None:
    planner_model = ScriptedModel(["1. find it\n2. say it"])
    executor_model = ScriptedModel(["found", "said"])
    pe = planloop.PlanAndExecute(
        planloop.load_chat_planner(planner_model), planloop.load_agent_executor(executor_model, [])
    )
    result = pe.run_sync("What is it?")
    for trace in (result.trace, open_store(None).load_trace(result.run_id)):  # type: ignore[union-attr]
        replayed = trace.replay()
        assert replayed.matches, replayed.differences
        assert replayed.result.output == "said"
        assert [str(s) for s in replayed.trace.states] == [str(s) for s in result.trace.states]
    assert (len(planner_model.requests), len(executor_model.requests)) == (1, 2)


def test_a_resumed_plan_and_execute_run_replays(tmp_path: Path) -> None:
    pe = _paused(["1. find it\n2. say it"], ["found", "said"])
    paused = pe.run_sync("What is it?")
    pe.resume_sync(paused.run_id, Approve())
    stored = open_store(None).load_trace(paused.run_id)  # type: ignore[union-attr]
    replayed = stored.replay()
    assert replayed.matches, replayed.differences
    assert replayed.result.output == "said"
