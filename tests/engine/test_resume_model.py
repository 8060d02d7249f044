"""A resumed run does not ask its model again for the answers its recording already has.

``planloop resume`` builds the agent anew from its file, with a fresh model; a
:class:`ScriptedModel` there goes on after the calls the recorded run made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import planloop
from planloop.models import ChatModel, ToolCall
from planloop.testing import ScriptedModel

SENT: list[str] = []


@planloop.tool
def send_email(to: str) -> str:
    """Send an email."""
    SENT.append(to)
    return f"sent to {to}"


def script() -> list[object]:
    return [ToolCall("send_email", {"to": "ada@example.org"}), "sent"]


def fresh_agent() -> planloop.Agent:
    """The agent as a new process builds it: a new object, a new model at the script's start."""
    return planloop.Agent(ScriptedModel(script()), [send_email], interrupt_before=["act"])


def test_a_new_agent_with_a_fresh_script_resumes_after_the_recorded_calls() -> None:
    SENT.clear()
    paused = fresh_agent().run_sync("Email Ada")
    assert paused.status == "paused"
    assert SENT == []

    again = fresh_agent()
    result = again.resume_sync(paused.run_id, planloop.Approve())
    assert (result.status, result.output) == ("finished", "sent")
    assert SENT == ["ada@example.org"]  # the approved tool ran once
    assert isinstance(again.model, ScriptedModel)
    assert again.model.remaining == 0
    assert len(again.model.requests) == 1  # only the call after the recorded one was made
    calls = [e for e in result.trace.events if e.kind == "model_called"]
    assert len(calls) == 2  # the recorded call and the new one


def test_the_agent_that_paused_resumes_without_skipping_answers() -> None:
    SENT.clear()
    agent = fresh_agent()
    paused = agent.run_sync("Email Ada")
    result = agent.resume_sync(paused.run_id, planloop.Approve())
    assert (result.status, result.output) == ("finished", "sent")
    assert SENT == ["ada@example.org"]


def test_scripted_model_resumed_after_skips_only_answers_it_has_not_played() -> None:
    model = ScriptedModel(["a", "b", "c"])
    assert isinstance(model, ChatModel)
    model.resumed_after(2)
    assert model.remaining == 1
    model.resumed_after(1)  # it already is past those
    assert model.remaining == 1
    model.resumed_after(7)
    assert model.remaining == 0


AGENTS = """
import planloop
from planloop.models import ToolCall
from planloop.testing import ScriptedModel


@planloop.tool
def send_email(to: str) -> str:
    '''Send an email.'''
    with open("sent.txt", "a") as out:
        out.write(to + "\\n")
    return f"sent to {to}"


SCRIPT = [ToolCall("send_email", {"to": "ada@example.org"}), "sent"]
mailer = planloop.Agent(ScriptedModel(SCRIPT), [send_email], interrupt_before=["act"])
"""

PLANLOOP = str(Path(sys.executable).parent / "planloop")


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLANLOOP_HOME": str(tmp_path / "home")}
    env.pop("PLANLOOP_STORE", None)
    return subprocess.run(
        [PLANLOOP, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )


def test_planloop_resume_approve_finishes_a_scripted_run(tmp_path: Path) -> None:
    (tmp_path / "agents.py").write_text(AGENTS)
    done = cli(tmp_path, "run", "agents.py:mailer", "--input", "Email Ada")
    assert done.returncode == 3, done.stdout + done.stderr
    [run_line] = [line for line in done.stdout.splitlines() if line.startswith("run:")]
    run_id = run_line.split(":", 1)[1].strip()

    resumed = cli(tmp_path, "resume", run_id, "--approve")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "output: sent" in resumed.stdout.splitlines()
    assert (tmp_path / "sent.txt").read_text() == "ada@example.org\n"
