"""A planloop store file whose pages are damaged (a failing disk, a bad copy): the
error says the file is damaged and how to check and recover it, not that it is not a
planloop database, whether the damage shows when the store opens or at a later read
or write.

Each test makes a real store with a few runs, closes it, and overwrites one page in
the middle of the file with garbage (the page a table or the schema starts on, found
by asking SQLite before the damage, so the test knows which operation meets it).
"""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from planloop.engine import SQLiteStore, StoreError
from tests.engine._store_harness import T0, record, sample

RUNS = [f"run-{i}" for i in range(6)]


def damaged(path: Path) -> str:
    """The error for a damaged store at ``path``."""
    return (
        f"the store {path} is damaged: SQLite finds parts of the file corrupt (database"
        f" disk image is malformed). Check it with: sqlite3 {path} 'PRAGMA"
        " integrity_check'. To go on, restore the file from a backup, or copy what can"
        f" still be read into a new file (sqlite3 {path} .recover | sqlite3 NEW.db, or"
        " .dump where .recover is missing) and point the store at it, or at another"
        " file (set PLANLOOP_HOME or pass another path)."
    )


def make_store(path: Path) -> None:
    """A store with a few finished runs, each with its events and checkpoints."""
    trace = sample()
    with SQLiteStore(path) as store:
        for i, run_id in enumerate(RUNS):
            record(store, run_id, trace, start=T0 + timedelta(minutes=i))


def clobber(path: Path, table: str | None) -> None:
    """Overwrite the page ``table`` starts on (the schema's page for ``None``, past the
    file's 100-byte header) with garbage; the file's header stays valid."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    root = 1
    if table is not None:
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()[0]
    conn.close()
    assert 1 <= root < pages  # a page inside the file, not past its end
    start = (root - 1) * page_size + (100 if root == 1 else 0)
    end = root * page_size
    garbage = random.Random(root).randbytes(end - start)
    with path.open("r+b") as f:
        f.seek(start)
        f.write(garbage)
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    make_store(path)
    return path


@pytest.mark.parametrize("table", [None, "meta"])
def test_damage_met_at_open_says_the_file_is_damaged(path: Path, table: str | None) -> None:
    clobber(path, table)
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        SQLiteStore(path)
    assert str(info.value) == damaged(path) + " The file was not modified."
    assert "not a planloop database" not in str(info.value)
    assert path.read_bytes() == before


def test_damage_met_reading_runs_says_the_file_is_damaged(path: Path) -> None:
    clobber(path, "runs")
    with SQLiteStore(path) as store, pytest.raises(StoreError) as info:
        store.list_runs()
    assert str(info.value) == damaged(path)


def test_damage_met_reading_a_trace_says_the_file_is_damaged(path: Path) -> None:
    clobber(path, "events")
    with SQLiteStore(path) as store:
        assert [run.run_id for run in store.list_runs()] == RUNS[::-1]
        with pytest.raises(StoreError) as info:
            store.load_trace(RUNS[0])
    assert str(info.value) == damaged(path)


def test_damage_met_writing_says_the_file_is_damaged(path: Path) -> None:
    clobber(path, "runs")
    with SQLiteStore(path) as store, pytest.raises(StoreError) as info:
        store.create_run("new", name="n", started_at=T0)
    assert str(info.value) == damaged(path)


def test_a_file_that_is_no_planloop_store_is_still_called_so(tmp_path: Path) -> None:
    # the other side of the line: not SQLite at all, and SQLite of another schema
    text = tmp_path / "notes.db"
    text.write_text("a shopping list\n" * 500)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    with conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.close()
    for path, reason in [
        (text, "file is not a database"),
        (other, "it has no planloop 'meta' table"),
    ]:
        with pytest.raises(StoreError) as info:
            SQLiteStore(path)
        assert str(info.value) == (
            f"{path} is not a planloop database ({reason}). Point the store at another"
            " file (set PLANLOOP_HOME or pass another path). The file was not modified."
        )
