"""Stored runs from the command line: the runs table, run ids typed by their first
characters, and a stored run's trace written as the JSON that ``planloop render`` reads.

In this process (click's runner), for speed; ``test_cli.py`` runs the installed command.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import planloop
from planloop import Trace
from planloop.cli import main
from planloop.engine.store import SQLiteStore
from planloop.visualize import to_mermaid
from tests._cli_agents import AGENTS


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's folder, holding agents.py; the store is ``home/planloop.db`` there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLANLOOP_HOME", str(tmp_path / "home"))
    (tmp_path / "agents.py").write_text(AGENTS)
    return tmp_path / "home"


def planloop_cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def value(out: str, label: str) -> str:
    [line] = [x for x in out.splitlines() if x.startswith(f"{label}:")]
    return line.split(":", 1)[1].strip()


def tiny_runs(home: Path, *run_ids: str) -> None:
    """Runs of a one-step workflow named 'tiny', with these ids, in the store."""
    wf = planloop.Workflow("tiny", store=home / "planloop.db")
    wf.step(lambda: 1, id="one")
    for run_id in run_ids:
        wf.run_sync(run_id=run_id)


def started(home: Path, run_id: str) -> str:
    with SQLiteStore(home / "planloop.db") as store:
        return store.get_run(run_id).started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def test_runs_lists_each_runs_name(home: Path) -> None:
    assert planloop_cli("run", "agents.py:report").exit_code == 0
    assert planloop_cli("run", "agents.py:helper").exit_code == 0
    listed = planloop_cli("runs")
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.splitlines()
    assert header.startswith("RUN ID".ljust(32) + "  NAME    STARTED  ")
    assert [row.split()[1] for row in rows] == ["helper", "report"]  # newest first


def test_a_run_id_may_be_given_by_its_first_characters(home: Path) -> None:
    tiny_runs(home, "abc1", "abc2", "abd", "ab")
    shown = planloop_cli("show", "abd")
    assert (shown.exit_code, value(shown.stdout, "run")) == (0, "abd")
    assert value(planloop_cli("show", "ab").stdout, "run") == "ab"  # a whole id wins
    replayed = planloop_cli("replay", "abc2")
    assert replayed.exit_code == 0
    assert replayed.stdout.startswith("replayed run abc2\n")

    for command in (["show"], ["replay"], ["resume", "--approve"]):
        done = planloop_cli(command[0], "abc", *command[1:])
        assert (done.exit_code, done.stdout, done.stderr) == (
            2,
            "",
            "Error: 'abc' is the start of 2 run ids; give more of the one you mean:\n"
            f"  abc2  tiny  {started(home, 'abc2')}  finished\n"  # newest first
            f"  abc1  tiny  {started(home, 'abc1')}  finished\n",
        ), command
    assert planloop_cli("show", "a").stderr == (
        "Error: 'a' is the start of 4 run ids; give more of the one you mean:\n"
        f"  ab    tiny  {started(home, 'ab')}  finished\n"
        f"  abd   tiny  {started(home, 'abd')}  finished\n"
        f"  abc2  tiny  {started(home, 'abc2')}  finished\n"
        f"  abc1  tiny  {started(home, 'abc1')}  finished\n"
    )
    db = home / "planloop.db"
    for given in ("abe", "a%", "a_d", "a*", "a?d", "a[b]", "A"):  # no wildcards; case matters
        done = planloop_cli("show", given)
        assert (done.exit_code, done.stderr) == (
            2,
            f"Error: no run {given!r} in the store {db}; `planloop runs` lists the stored runs\n",
        )
    done = planloop_cli("show", "")
    assert (done.exit_code, done.stderr) == (
        2,
        "Error: the run id is empty; `planloop runs` lists the stored runs\n",
    )


def test_a_paused_run_is_resumed_by_the_first_characters_of_its_id(home: Path) -> None:
    paused = planloop_cli("run", "agents.py:careful")
    assert paused.exit_code == 3, paused.output
    run_id = value(paused.stdout, "run")
    resumed = planloop_cli("resume", run_id[:6], "--approve")
    assert resumed.exit_code == 0, resumed.output
    assert value(resumed.stdout, "run") == run_id
    assert value(planloop_cli("show", run_id[:6]).stdout, "status") == "finished"


def test_an_ambiguous_prefix_lists_ten_of_its_runs(home: Path) -> None:
    tiny_runs(home, *(f"m{n:02}" for n in range(12)))
    done = planloop_cli("show", "m")
    assert done.exit_code == 2
    first, *listed, last = done.stderr.splitlines()
    assert (
        first == "Error: 'm' is the start of more than 10 run ids; give more of the one you mean:"
    )
    assert [line.split()[0] for line in listed] == [f"m{n:02}" for n in range(9, -1, -1)]
    assert last == "  ... and more (`planloop runs` lists them)"


def test_show_writes_the_trace_that_render_reads(home: Path, tmp_path: Path) -> None:
    run_id = value(planloop_cli("run", "agents.py:report").stdout, "run")
    with SQLiteStore(home / "planloop.db") as store:
        stored = store.load_trace(run_id)
    shown = planloop_cli("show", run_id[:8], "-o", "run.json")
    assert shown.exit_code == 0, shown.output
    assert value(shown.stdout, "status") == "finished"  # the summary, then the file
    assert shown.stdout.endswith("\ntrace: run.json\n")
    written = (tmp_path / "run.json").read_text()
    assert written == stored.to_json(indent=2) + "\n"
    assert Trace.from_json(written) == stored
    rendered = planloop_cli("render", "run.json", "--format", "mermaid")
    assert (rendered.exit_code, rendered.stdout) == (0, to_mermaid(stored))

    printed = planloop_cli("show", run_id, "--format", "json")  # no -o: the text alone
    assert (printed.exit_code, printed.stdout) == (0, written)
    assert planloop_cli("show", run_id, "--format", "mermaid").stdout == to_mermaid(stored)
    assert planloop_cli("show", run_id, "-o", "run.data", "--format", "json").exit_code == 0
    assert (tmp_path / "run.data").read_text() == written
    assert planloop_cli("show", run_id, "-o", "run.mmd").stdout.endswith("\npicture: run.mmd\n")
    assert (tmp_path / "run.mmd").read_text() == to_mermaid(stored)

    for args, message in (
        (
            ["-o", "run.txt"],
            "cannot tell the image format of 'run.txt' from '.txt'; use one of: .json, .dot, "
            ".gv, .mmd, .svg, .png, .pdf (or pass --format json|dot|mermaid|svg|png|pdf)",
        ),
        (
            ["-o", "run"],
            "cannot tell the image format of 'run' from no suffix; use one of: .json, .dot, "
            ".gv, .mmd, .svg, .png, .pdf (or pass --format json|dot|mermaid|svg|png|pdf)",
        ),
    ):
        done = planloop_cli("show", run_id, *args)
        assert (done.exit_code, done.stdout, done.stderr) == (2, "", f"Error: {message}\n")
    done = planloop_cli("show", run_id, "--format", "svg")
    assert done.exit_code == 2
    assert done.stderr.endswith("Error: --format svg needs --output FILE\n")
    done = planloop_cli("render", "run.json", "-o", "run.txt")
    assert (done.exit_code, done.stderr) == (
        2,
        "Error: cannot tell the image format of 'run.txt' from '.txt'; use one of: .dot, .gv, "
        ".mmd, .svg, .png, .pdf (or pass --format dot|mermaid|svg|png|pdf)\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "agents.py",
        "home",
        "run.data",
        "run.json",
        "run.mmd",
    ]
