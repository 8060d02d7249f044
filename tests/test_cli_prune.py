"""``planloop prune``, run as users run it: the installed command, on a real store file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from planloop.engine.store import SQLiteStore
from tests._cli_agents import AGENTS
from tests.engine._store_harness import sample
from tests.test_cli import cli

OLD = datetime.now(UTC) - timedelta(days=40)


def stored(path: Path, run_id: str, status: str, ended_at: datetime | None) -> None:
    """A run with events, a checkpoint and a sub-run trace, that ended ``ended_at`` (if)."""
    trace = sample()
    with SQLiteStore(path) as store:
        store.create_run(run_id, name="old", started_at=OLD - timedelta(hours=1))
        store.save(
            run_id, trace.events, first_seq=0, checkpoint={"s": 1}, children={"step_1": trace}
        )
        if ended_at is not None:
            store.finish_run(
                run_id, status=status, stop_reason=None, iterations=1, ended_at=ended_at
            )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A store with a recent run made by `planloop run`, and old runs of every status."""
    (tmp_path / "agents.py").write_text(AGENTS)
    done = cli(tmp_path, "run", "agents.py:report")
    assert done.returncode == 0, done.stderr
    path = tmp_path / "home" / "planloop.db"
    stored(path, "old-finished", "finished", OLD)
    stored(path, "old-stopped", "stopped", OLD)
    stored(path, "old-paused", "paused", OLD)
    stored(path, "old-running", "running", None)
    return tmp_path


def ids(tmp_path: Path) -> list[str]:
    """The ids `planloop runs` lists."""
    listed = cli(tmp_path, "runs")
    assert listed.returncode == 0, listed.stderr
    return sorted(line.split()[0] for line in listed.stdout.splitlines()[1:])


def test_prune_deletes_old_ended_runs_and_says_how_many(home: Path) -> None:
    before = ids(home)
    assert len(before) == 5
    store = home / "home" / "planloop.db"
    dry = cli(home, "prune", "--older-than", "30d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    header, *rows, last = dry.stdout.splitlines()
    assert header.split() == ["RUN", "ID", "NAME", "STARTED", "STATUS"]
    assert [(row.split()[0], row.split()[-1]) for row in rows] == [
        ("old-finished", "finished"),
        ("old-stopped", "stopped"),
    ]
    assert last == (
        f"would delete 2 runs from {store}: the finished or stopped runs that ended more"
        " than 30d ago (--dry-run: none was deleted)"
    )
    assert ids(home) == before

    stopped = cli(home, "prune", "--older-than", "4w", "--status", "stopped")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == (
        f"deleted 1 run from {store}: the stopped runs that ended more than 4w ago\n"
    )
    recent = cli(home, "prune", "--older-than", "90m", "--status", "finished")
    assert recent.returncode == 0, recent.stderr
    assert recent.stdout.startswith("deleted 1 run from ")
    assert ids(home) == sorted(set(before) - {"old-stopped", "old-finished"})
    gone = cli(home, "show", "old-finished")
    assert gone.returncode == 2
    assert gone.stderr.startswith("Error: no run 'old-finished'")
    with SQLiteStore(store) as opened:
        assert list(opened.load_trace("old-paused").children) == ["step_1"]

    again = cli(home, "--store", str(store), "prune", "--older-than", "45s")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("deleted 0 runs from ")
    everything = cli(home, "prune", "--older-than", "0s")
    assert everything.stdout.startswith("deleted 1 run from ")  # the run `planloop run` made
    assert ids(home) == ["old-paused", "old-running"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--older-than", "30"], "--older-than '30' is not an age: give a whole number and a"),
        (["--older-than", "-1d"], "--older-than '-1d' is not an age: give "),
        (["--older-than", "1.5h"], "as 45s, 90m, 12h, 30d or 2w"),
        (["--older-than", "9" * 30 + "w"], "is too long ago to compute"),
        (["--older-than", "1d", "--status", "paused"], "running and paused runs are never"),
        (["--older-than", "1d", "--status", "finished,running"], "--status running: "),
        (["--older-than", "1d", "--status", "finshed"], "--status 'finshed' is not the status"),
        (["--older-than", "1d", "--status", ","], "--status is empty: give finished or"),
    ],
)
def test_bad_options_are_one_line_with_exit_code_2_and_delete_nothing(
    home: Path, args: list[str], error: str
) -> None:
    done = cli(home, "prune", *args)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("Error: ")
    assert error in line
    assert len(ids(home)) == 5


def test_prune_without_a_store_creates_none(tmp_path: Path) -> None:
    done = cli(tmp_path, "prune", "--older-than", "1d")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"no runs recorded yet in {tmp_path / 'home' / 'planloop.db'}\n"
    assert not (tmp_path / "home").exists()
