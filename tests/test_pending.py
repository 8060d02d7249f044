"""What a paused run waits for: ``RunResult.pending``, the CLI's report, the picture."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import planloop
from planloop import Approve, Pending, PendingStep
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from planloop.visualize import to_dot

PLANLOOP = str(Path(sys.executable).parent / "planloop")
EMAIL = {"to": "boss@example.org", "body": "Quarterly numbers attached.", "api_key": "sk-live-1234"}


@planloop.tool
def send_email(to: str, body: str, api_key: str) -> str:
    """Send an email."""
    return f"sent to {to}"


def careful(store: Path, *turns: object) -> planloop.Agent:
    model = ScriptedModel(list(turns) or [ToolCall("send_email", EMAIL), "Sent."])
    return planloop.Agent(model, [send_email], interrupt_before=["act"], store=store)


def test_a_run_paused_before_act_holds_the_plan_that_waits(tmp_path: Path) -> None:
    result = careful(tmp_path / "runs.db").run_sync("Mail my boss")
    assert result.status == "paused"
    assert result.pending == Pending(
        reason="interrupt",
        state="act",
        event="Planned",
        steps=(PendingStep(id="call_1", tool="send_email", args=EMAIL),),
    )


def test_a_run_that_ends_has_nothing_pending(tmp_path: Path) -> None:
    agent = planloop.Agent(
        ScriptedModel([ToolCall("send_email", EMAIL), "Sent."]), [send_email], store=False
    )
    assert agent.run_sync("Mail my boss").pending is None


def test_a_resumed_run_that_pauses_again_holds_its_new_plan(tmp_path: Path) -> None:
    later = {**EMAIL, "to": "ceo@example.org"}
    agent = careful(
        tmp_path / "runs.db", ToolCall("send_email", EMAIL), ToolCall("send_email", later), "Sent."
    )
    first = agent.run_sync("Mail my boss, then the CEO")
    again = agent.resume_sync(first.run_id, Approve())
    assert again.status == "paused"
    assert again.pending is not None
    assert [(s.tool, s.args) for s in again.pending.steps] == [("send_email", later)]
    assert agent.resume_sync(first.run_id, Approve()).pending is None


def test_the_pending_plan_is_read_back_from_the_store(tmp_path: Path) -> None:
    result = careful(tmp_path / "runs.db").run_sync("Mail my boss")
    store = planloop.SQLiteStore(tmp_path / "runs.db")
    stored = Pending.of(store.load_trace(result.run_id))
    assert stored is not None
    assert stored.steps[0].tool == "send_email"
    assert stored.steps[0].args == {**EMAIL, "api_key": "[redacted]"}  # the store redacts
    assert Pending.of(result.trace) == result.pending


def test_the_pending_plan_is_described_with_its_secrets_redacted(tmp_path: Path) -> None:
    pending = careful(tmp_path / "runs.db").run_sync("Mail my boss").pending
    assert pending is not None
    assert pending.describe() == [
        "waiting before act: a plan of 1 step",
        "  call_1: send_email(to='boss@example.org', body='Quarterly numbers attached.', "
        "api_key='[redacted]')",
    ]


def build() -> str:
    return "v1.2"


def deploy(version: str) -> str:
    return f"shipped {version}"


def shipping() -> planloop.Workflow:
    wf = planloop.Workflow("ship", store=False)
    built = wf.step(build)
    gate = wf.approval("Deploy v1.2 to production?", id="go", depends_on=[built])
    wf.step(deploy, version=built, depends_on=[gate])
    return wf


def test_a_workflow_paused_at_an_approval_holds_its_question() -> None:
    result = shipping().run_sync()
    assert result.pending == Pending(
        reason="approval",
        state="act",
        steps=(PendingStep(id="go", tool="approval", question="Deploy v1.2 to production?"),),
    )
    assert result.pending.describe() == [
        "waiting for approval in act:",
        "  go: Deploy v1.2 to production?",
    ]


def test_the_picture_draws_the_pending_plan_as_waiting(tmp_path: Path) -> None:
    dot = to_dot(careful(tmp_path / "runs.db").run_sync("Mail my boss"), timings=False)
    assert 'label="waiting for a decision · before act"' in dot
    assert "call_1 · send_email\\nwaiting\\nto='boss@example.org'" in dot
    assert "sk-live-1234" not in dot


def test_the_approval_step_of_a_paused_workflow_reads_waiting() -> None:
    dot = to_dot(shipping().run_sync(), timings=False)
    assert 'label="go · approval\\nwaiting"' in dot
    assert 'label="deploy · deploy\\nnot run"' in dot


AGENTS = f"""
import planloop
from planloop.models import ToolCall
from planloop.testing import ScriptedModel


@planloop.tool
def send_email(to: str, body: str, api_key: str) -> str:
    '''Send an email.'''
    return "sent"


careful = planloop.Agent(
    ScriptedModel([ToolCall("send_email", {EMAIL!r}), "Sent."]),
    [send_email],
    interrupt_before=["act"],
)
"""


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLANLOOP_HOME": str(tmp_path / "home")}
    env.pop("PLANLOOP_STORE", None)
    return subprocess.run(
        [PLANLOOP, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )


def test_run_and_show_print_the_plan_that_waits(tmp_path: Path) -> None:
    (tmp_path / "agents.py").write_text(AGENTS)
    done = cli(tmp_path, "run", "agents.py:careful", "-i", "Mail my boss")
    assert done.returncode == 3, done.stderr
    wanted = (
        "waiting before act: a plan of 1 step\n"
        "  call_1: send_email(to='boss@example.org', body='Quarterly numbers attached.', "
        "api_key='[redacted]')\n"
    )
    assert wanted in done.stdout
    assert "sk-live-1234" not in done.stdout
    run_id = done.stdout.split("run: ", 1)[1].split()[0]
    shown = cli(tmp_path, "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert wanted in shown.stdout
    assert "sk-live-1234" not in shown.stdout
