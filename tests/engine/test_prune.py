"""Retention: ``store.prune`` deletes whole runs that ended long enough ago, on every backend.

The conformance tests run against every backend of ``_store_harness.HARNESSES``;
the last ones are SQLite's own, on a real file: a failure in the middle of a
prune rolls every run back, and a run resumed by another connection while a
prune waits for the write lock is not deleted.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from planloop import Trace
from planloop.engine.store import BaseStore, SQLiteStore
from planloop.errors import StoreError
from tests.engine._store_harness import HARNESSES, Harness, SQLiteHarness, record, sample

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=1)
EAST, WEST = timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))


@pytest.fixture(params=sorted(HARNESSES))
def db(request: pytest.FixtureRequest) -> Harness:
    """One database of the backend under test."""
    return HARNESSES[request.param](request)


def ended(store: BaseStore, run_id: str, status: str, at: datetime) -> None:
    """A recorded run (events, checkpoints, a child trace) that ended ``at`` with ``status``."""
    trace = sample()
    record(store, run_id, trace, start=OLD - timedelta(days=1))
    store.save(run_id, [], first_seq=len(trace.events), children={"step_1": trace})
    store.finish_run(run_id, status=status, stop_reason=None, iterations=2, ended_at=at)


def fill(store: BaseStore) -> None:
    """Runs of every kind: old and recent, ended and not, times with and without a zone."""
    ended(store, "old-finished", "finished", OLD)
    ended(store, "old-stopped", "stopped", OLD)
    ended(store, "old-naive", "finished", OLD.replace(tzinfo=None))  # no zone: UTC
    # Ended 30 days and 4 hours ago, written by the clock of a zone 14 hours ahead of
    # UTC (its text reads 29 days and 14 hours ago), and 29 days and 20 hours ago by one
    # 14 hours behind (its text reads 30 days and 10 hours ago): the times are compared.
    ended(store, "old-offset", "stopped", (NOW - timedelta(days=30, hours=4)).astimezone(EAST))
    ended(store, "recent-finished", "finished", RECENT)
    ended(store, "old-paused", "paused", OLD)  # waits for a decision: never pruned
    store.create_run("old-running", name="sample", started_at=OLD)  # never ended
    ended(store, "recent-west", "finished", (NOW - timedelta(days=29, hours=20)).astimezone(WEST))


OLD_ENDED = ["old-finished", "old-naive", "old-offset", "old-stopped"]
KEPT = ["old-paused", "old-running", "recent-finished", "recent-west"]


def test_prune_deletes_old_ended_runs_with_all_their_rows_and_keeps_the_rest(
    db: Harness,
) -> None:
    with db.open() as store:
        fill(store)
        kept = {run_id: store.load_trace(run_id) for run_id in KEPT}
        before = db.counts()
        assert set(OLD_ENDED) <= set(before)
        would = store.prune(timedelta(days=30), dry_run=True)
        assert [run.run_id for run in would] == OLD_ENDED
        assert db.counts() == before  # a dry run deletes nothing
        pruned = store.prune(timedelta(days=30))
        assert pruned == would
        assert {run.status for run in pruned} == {"finished", "stopped"}
        assert store.prune(timedelta(days=30)) == []
    after = db.counts()
    assert set(after) == set(before) - set(OLD_ENDED)
    assert all(after[run_id] == before[run_id] for run_id in after)
    with db.open() as other:  # another connection, as another process would see it
        assert sorted(run.run_id for run in other.list_runs()) == KEPT
        for run_id in OLD_ENDED:
            for read in (other.get_run, other.load_trace, other.load_checkpoint):
                with pytest.raises(StoreError, match=f"no run {run_id!r}"):
                    read(run_id)
        assert {run_id: other.load_trace(run_id) for run_id in KEPT} == kept
        assert list(other.load_trace("recent-finished").children) == ["step_1"]


def test_a_pruned_run_id_starts_afresh_and_a_store_that_read_the_old_run_finds_nothing(
    db: Harness,
) -> None:
    with db.open() as reader, db.open() as store:
        ended(store, "r", "finished", OLD)
        assert reader.load_trace("r").events  # the reader knows where run r's rows were
        assert [run.run_id for run in store.prune(timedelta(days=30))] == ["r"]
        ended(store, "newer", "finished", RECENT)  # may take the number the pruned run had
        with pytest.raises(StoreError, match="no run 'r'"):
            reader.load_trace("r")
        assert reader.load_checkpoint("newer") is not None
        with pytest.raises(StoreError, match="no run 'r'"):
            reader.load_checkpoint("r")
        store.create_run("r", name="again", started_at=NOW)
        assert store.load_trace("r") == Trace(run_id="r")  # no event or child of the old run
        assert store.load_checkpoint("r") is None
        assert reader.load_trace("r") == Trace(run_id="r")


def test_the_statuses_and_the_age_choose_the_runs(db: Harness) -> None:
    with db.open() as store:
        fill(store)
        stopped = store.prune(timedelta(days=30), statuses=["stopped"])
        assert [run.run_id for run in stopped] == ["old-offset", "old-stopped"]
        assert [run.run_id for run in store.prune(30 * 86400.0, statuses="finished")] == [
            "old-finished",
            "old-naive",
        ]
        assert [run.run_id for run in store.prune(timedelta(days=2))] == ["recent-west"]
        assert [run.run_id for run in store.prune(0)] == ["recent-finished"]
        assert sorted(run.run_id for run in store.list_runs()) == ["old-paused", "old-running"]


@pytest.mark.parametrize(
    ("older_than", "statuses", "message"),
    [
        (-1.0, ("finished",), "older_than must not be negative, got -1.0"),
        (timedelta(days=-1), ("finished",), "older_than must not be negative"),
        (0, (), "statuses is empty"),
        (0, ("finished", "running"), "runs that are running are never pruned"),
        (0, ["paused"], r"runs that are paused are never pruned \(it waits for a decision"),
    ],
)
def test_bad_arguments_are_refused_and_nothing_is_deleted(
    db: Harness, older_than: float | timedelta, statuses: tuple[str, ...], message: str
) -> None:
    with db.open() as store:
        fill(store)
        with pytest.raises(ValueError, match=message):
            store.prune(older_than, statuses=statuses)
        assert len(store.list_runs()) == len(OLD_ENDED) + len(KEPT)


# --- SQLite, on a real file ------------------------------------------------------------


def test_a_failure_in_the_middle_of_a_prune_deletes_no_run(tmp_path: Path) -> None:
    harness = SQLiteHarness(tmp_path)
    with harness.open() as store:
        fill(store)
    before = harness.counts()
    conn = sqlite3.connect(harness.path)
    conn.execute(
        "CREATE TRIGGER fail BEFORE DELETE ON children WHEN old.run_id = 'old-offset'"
        " BEGIN SELECT RAISE(ABORT, 'the disk is on fire'); END"
    )
    conn.commit()
    with harness.open() as store:
        with pytest.raises(StoreError, match=r"cannot write to the store .*the disk is on fire"):
            store.prune(timedelta(days=30))  # old-finished and old-naive went first
        assert harness.counts() == before
        assert len(store.list_runs()) == len(OLD_ENDED) + len(KEPT)
        assert list(store.load_trace("old-finished").children) == ["step_1"]
        conn.execute("DROP TRIGGER fail")
        conn.commit()
        assert [run.run_id for run in store.prune(timedelta(days=30))] == OLD_ENDED
        conn_of_store = store.backend._conn  # type: ignore[attr-defined]
        assert conn_of_store.execute("PRAGMA foreign_keys").fetchone() == (1,)  # on again
    assert conn.execute("SELECT count(*) FROM children").fetchone() == (len(KEPT) - 1,)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == sum(
        sum(counts) for counts in harness.counts().values()
    )
    conn.close()


def test_a_run_resumed_while_a_prune_waits_for_the_write_lock_is_kept(tmp_path: Path) -> None:
    harness = SQLiteHarness(tmp_path)
    with harness.open() as store:
        ended(store, "old-1", "finished", OLD)
        ended(store, "old-2", "finished", OLD)
        recorded = store.load_trace("old-2")
    resumer = sqlite3.connect(harness.path, isolation_level=None)
    resumer.execute("BEGIN IMMEDIATE")  # another process resuming old-2: it holds the lock
    resumer.execute("UPDATE runs SET status = 'running', ended_at = NULL WHERE run_id = 'old-2'")
    store = SQLiteStore(harness.path)
    waiting = threading.Event()
    # Set when the prune starts its first statement that needs the write lock.
    store.backend._conn.set_trace_callback(  # type: ignore[attr-defined]
        lambda sql: waiting.set() if sql.startswith(("BEGIN", "DELETE")) else None
    )
    pruned: list[list[str]] = []
    prune = threading.Thread(
        target=lambda: pruned.append([r.run_id for r in store.prune(timedelta(days=30))])
    )
    prune.start()
    assert waiting.wait(timeout=60)
    resumer.execute("COMMIT")  # the prune cannot have chosen its runs before this
    prune.join(timeout=60)
    assert pruned == [["old-1"]]
    assert store.get_run("old-2").status == "running"
    assert store.load_trace("old-2") == recorded
    store.close()
    resumer.close()
