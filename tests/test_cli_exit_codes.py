"""Every ``planloop`` command exits with the code that the table of ``planloop --help``
(and the README) gives for what happened; the table is read, not copied here.

In this process (click's runner), for speed; ``test_cli.py`` runs the installed command.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import planloop
from planloop.cli import main
from tests._cli_agents import AGENTS

README = Path(__file__).parents[1] / "README.md"
PLANLOOP = str(Path(sys.executable).parent / "planloop")

MEANINGS = {
    "finished": "the run finished (or the command succeeded)",
    "stopped": "the run stopped (a limit, an error), or a replay differs from the recording",
    "usage": "usage error: ",
    "paused": "the run is paused, waiting for a decision (planloop resume)",
}
"""How each row of the table starts."""


def documented_codes() -> dict[str, int]:
    """The exit code of each meaning, as the table at the end of ``planloop --help`` has it."""
    helped = CliRunner().invoke(main, ["--help"])
    assert helped.exit_code == 0
    table = helped.stdout.split("Exit codes:\n", 1)[1]
    rows = re.findall(r"^ +(\d)  (\S.*)$", table, re.MULTILINE)
    codes = {
        meaning: int(code)
        for code, text in rows
        for meaning, start in MEANINGS.items()
        if text.startswith(start)
    }
    assert len(rows) == len(codes) == len(MEANINGS), table
    return codes


def test_the_readme_gives_the_codes_of_the_help() -> None:
    text = " ".join(README.read_text().split())
    sentence = text.split("Exit codes: ", 1)[1].split(". ", 1)[0]
    words = {"finished": "finished", "stopped": "stopped", "usage errors": "usage"}
    words["paused"] = "paused"
    found = re.findall(r"(\d) (finished|stopped|usage errors|paused)\b", sentence)
    assert {words[word]: int(code) for code, word in found} == documented_codes()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's folder: definitions good and bad, files that are not what they seem."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLANLOOP_HOME", str(tmp_path / "home"))
    for name in ("PLANLOOP_STORE", "PLANLOOP_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "agents.py").write_text(AGENTS)
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(5)\n")
    (tmp_path / "broken.py").write_text("def (:\n")
    (tmp_path / "notes.txt").write_text("not Python\n")
    (tmp_path / "a_file").write_text("a file, not a folder\n")
    (tmp_path / "bad.db").write_text("not a database\n")
    (tmp_path / "bad_plan.json").write_text('{"steps": [{"id": 1}]}')
    wf = planloop.Workflow("tiny", store=tmp_path / "home" / "planloop.db")
    wf.step(lambda: 1, id="one")
    for run_id in ("dup-1", "dup-2"):  # started from Python: no recorded definition
        wf.run_sync(run_id=run_id)
    return tmp_path


def test_every_command_exits_as_the_help_says(folder: Path) -> None:
    codes = documented_codes()
    seen: list[tuple[str, tuple[str, ...], int]] = []  # meaning, arguments, exit code

    def check(meaning: str, *args: str) -> Result:
        result = CliRunner().invoke(main, list(args))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a traceback is never the answer
        seen.append((meaning, args, result.exit_code))
        return result

    def check_installed(meaning: str, *args: str) -> None:
        """``check``, with the installed command (in another process)."""
        done = subprocess.run([PLANLOOP, *args], capture_output=True, text=True, timeout=120)
        assert "Traceback" not in done.stderr, done.stderr
        seen.append((meaning, args, done.returncode))

    def run_id(result: Result) -> str:
        [line] = [x for x in result.stdout.splitlines() if x.startswith("run: ")]
        return line.removeprefix("run: ")

    # what succeeds, stops or pauses
    done = run_id(check("finished", "run", "agents.py:report"))
    check("finished", "run", "agents.py:helper", "-i", "Oslo?")
    check("stopped", "run", "agents.py:limited", "-i", "Oslo?")
    paused = run_id(check("paused", "run", "agents.py:careful", "-i", "Oslo?"))
    check("usage", "replay", paused)  # it has not ended
    check("paused", "resume", paused[:8], "--reject", "not now")  # it paused again
    check("finished", "resume", paused, "--approve")
    check("usage", "resume", paused, "--approve")  # it has ended
    waiting = run_id(check("paused", "run", "agents.py:careful"))
    check("finished", "runs")
    check("finished", "runs", "-n", "1")
    check("finished", "show", done)
    check("finished", "show", done[:6], "-o", "run.json")
    check("finished", "show", done, "--format", "mermaid")
    check("finished", "show", "dup-1")
    check("finished", "replay", done[:6])
    check("finished", "render", "run.json")
    check("finished", "render", "run.json", "-o", "run.dot")
    check_installed("finished", "demo", "--offline", "--out", "demo")  # loads what it draws
    check("finished", "prune", "--older-than", "30d", "--dry-run")
    check("finished", "prune", "--older-than", "2w", "--status", "stopped")  # none that old
    check("finished", "--version")
    check("finished", "--help")
    for name in main.commands:
        check("finished", name, "--help")

    # click's own usage errors
    check("usage")
    check("usage", "no-such-command")
    check("usage", "--store", ".", "runs")  # a folder
    for name, command in main.commands.items():
        check("usage", name, "--no-such-option")
        if any(isinstance(p, click.Argument) and p.required for p in command.params):
            check("usage", name)
    check("usage", "runs", "-n", "0")
    check("usage", "run", "agents.py:helper", "-i")
    check("usage", "show", done, "--format", "gif")
    check("usage", "render", "run.json", "--format", "json")
    check("usage", "render", "missing.json")
    check("usage", "prune")  # --older-than is required

    # planloop's usage and input errors
    for target in (
        "agents.py",
        "gone.py:helper",
        "agents.py:helpr",
        "agents.py:not_runnable",
        "notes.txt:x",
        "broken.py:x",
        "exits.py:x",
    ):
        check("usage", "run", target)
    check("usage", "--store", "a_file/runs.db", "run", "agents.py:helper")
    check("usage", "--store", "bad.db", "runs")
    check("usage", "--store", "bad.db", "show", done)
    check("usage", "--store", "missing.db", "show", done)
    for command in (["show"], ["replay"], ["resume", "--approve"]):
        for given in ("nope", "dup", ""):  # unknown, ambiguous, empty
            check("usage", command[0], given, *command[1:])
    check("usage", "show", done, "-o", "run.txt")
    check("usage", "show", done, "-o", "nodir/run.svg")
    check("usage", "show", done, "--format", "png")
    check("usage", "render", "agents.py")  # not a trace
    check("usage", "render", "run.json", "-o", "run.txt")
    check("usage", "render", "run.json", "--format", "svg")
    check("usage", "render", "run.json", "-o", "nodir/run.dot")
    check("usage", "resume", "dup-1")  # started from Python: no definition to build it from
    check("usage", "resume", waiting, "--approve", "--reject", "no")
    check("usage", "resume", waiting, "--edit", "missing.json")
    check("usage", "resume", waiting, "--edit", "bad_plan.json")
    check("usage", "demo", "--offline", "--model", "some-model")
    check("usage", "demo", "--base-url", "http://127.0.0.1:9/v1")  # and no model
    check("usage", "demo", "--offline", "--out", "a_file/demo")
    check("usage", "prune", "--older-than", "30x")
    check("usage", "prune", "--older-than", "1d", "--status", "paused")
    check("usage", "--store", "bad.db", "prune", "--older-than", "1d")

    wrong = [
        f"planloop {' '.join(args)}: exit {code}, the help says {codes[meaning]} ({meaning})"
        for meaning, args, code in seen
        if code != codes[meaning]
    ]
    assert not wrong, "\n".join(wrong)
    tried = {(args[0], meaning) for meaning, args, _ in seen if args}
    for name in main.commands:
        assert {(name, "finished"), (name, "usage")} <= tried, name
    assert {meaning for meaning, _, _ in seen} == set(MEANINGS)
