"""The default store: runs in one SQLite file (:class:`SQLiteStore`, over :class:`SQLiteBackend`).

* **Connections and locking.** One connection per backend, shared by all
  threads and guarded by a :class:`threading.Lock`. SQLite allows one writer per
  file at a time anyway, so per-thread connections would only add contention
  inside the process, resolved by SQLite's busy handler (which sleeps and
  retries) instead of a lock that hands over at once; one connection also makes
  :meth:`SQLiteBackend.close` close everything, from any thread. Between
  *processes* (or separate stores on one file) the database is in WAL mode, so
  readers never block the writer, and ``busy_timeout`` makes a writer wait for
  the file lock instead of failing. Every write runs in a ``BEGIN IMMEDIATE``
  transaction, or is one INSERT or UPDATE statement, which SQLite runs as such a
  transaction by itself: it takes the write lock up front, so two writers can
  never deadlock upgrading a read lock. A run's usual write, a few events and a
  checkpoint, is one multi-row INSERT.
  A process forked with an open store opens its own connection on first use
  (SQLite connections must not cross ``fork``).
* **Durability.** ``synchronous=NORMAL`` in WAL mode: a committed event or
  checkpoint survives the process being killed, which is what ``resume``
  needs; only a power loss or an OS crash may drop the last commits (the file
  stays consistent: the WAL is synced before it is copied into the database).
  A commit then costs no ``fsync``, only writes into the OS's cache, which
  matters at one checkpoint per transition; the syncs come with SQLite's
  automatic WAL checkpoints, every thousand pages or so.
* **Layout.** See :mod:`planloop.engine.store._schema`.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from planloop.engine.redact import Redactor
from planloop.engine.store._backend import (
    ChildRow,
    EventRow,
    Lease,
    Refusal,
    RunRow,
    TraceRows,
    cannot_read,
    cannot_write,
    store_closed,
)
from planloop.engine.store._base import BaseStore
from planloop.engine.store._lease import lease_times
from planloop.engine.store._protocol import RunRecord
from planloop.engine.store._schema import (
    CHECKPOINT_KIND,
    RUN_LIMIT,
    SPAN,
    connect,
    damaged,
    immediate,
    stamp,
)
from planloop.errors import StoreError

__all__ = ["SQLiteBackend", "SQLiteStore", "default_store_path"]

# How many times this process was forked from its parent's Python (0 or 1: counted
# in the child). A backend compares its pid only after a fork, not per write.
_FORKS = [0]


def _forked() -> None:
    _FORKS[0] += 1


os.register_at_fork(after_in_child=_forked)


def default_store_path() -> Path:
    """``$PLANLOOP_HOME/planloop.db`` if ``PLANLOOP_HOME`` is set, else ``./.planloop/planloop.db``.

    The directory is created when a store is first opened there, not here.

    Example:
        >>> default_store_path().name
        'planloop.db'
    """
    home = os.environ.get("PLANLOOP_HOME")
    base = Path(home).expanduser() if home else Path.cwd() / ".planloop"
    return base / "planloop.db"


_INSERT_EVENTS = "INSERT INTO events (pos, run_id, seq, kind, body) VALUES (?, ?, ?, ?, ?)"
_INSERT_CHECKPOINT = (
    "INSERT OR REPLACE INTO events (pos, run_id, seq, kind, body) VALUES (?, ?, ?, ?, ?)"
)
_INSERT_CHILD = "INSERT OR REPLACE INTO children (run_id, name, body) VALUES (?, ?, ?)"
_RUN_COLUMNS = (
    "run_id, name, status, stop_reason, iterations, started_at, ended_at,"
    " definition, definition_hash, lease_owner, last_seen, lease_expires"
)
_INSERT_RUN = f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join(['?'] * 12)})"

# A lease is taken, renewed and released by one conditional UPDATE each: SQLite runs
# the statement as a transaction that holds the write lock, so of two processes
# taking an expired lease at once one changes the row (rowcount 1) and the other
# then finds it alive (rowcount 0).
_TAKE_LEASE = (
    "UPDATE runs SET lease_owner = ?, last_seen = ?, lease_expires = ?"
    " WHERE run_id = ? AND (lease_owner IS NULL OR lease_expires <= ?)"
)
_RENEW_LEASE = (
    "UPDATE runs SET last_seen = ?, lease_expires = ? WHERE run_id = ? AND lease_owner = ?"
)
_RELEASE_LEASE = (
    "UPDATE runs SET lease_owner = NULL, last_seen = ?, lease_expires = ?"
    " WHERE run_id = ? AND lease_owner = ?"
)

_MAX_ROWS_PER_INSERT = 64
"""Rows of a write sent as one multi-row INSERT (5 values each, well under SQLite's
oldest limit of 999 bound values); more take ``executemany`` in a transaction."""


@functools.cache
def _insert_rows(n: int) -> str:
    """``INSERT INTO events`` of ``n`` rows, one statement (made once per ``n``)."""
    return "INSERT INTO events (pos, run_id, seq, kind, body) VALUES " + ", ".join(
        ["(?, ?, ?, ?, ?)"] * n
    )


def _glob_prefix(prefix: str) -> str:
    """A GLOB pattern of the texts that start with ``prefix``: its wildcards escaped."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in prefix) + "*"


class SQLiteBackend:
    """A :class:`~planloop.engine.store.Backend` on one SQLite file (created if needed).

    Raises:
        StoreError: the file is not a planloop database, is damaged, has another
            schema version, or cannot be opened. The file is not modified. A read
            or write that meets damaged pages later raises one saying the file is
            damaged, and how to check and recover it.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._bases: dict[str, int] = {}  # run id -> the first ``pos`` of its rows
        self._lock = threading.Lock()
        self._closed = False
        self._stale: list[sqlite3.Connection] = []  # a parent's, never used after a fork
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory of the store {self.path}: {exc}"
            ) from None
        self._conn = connect(self.path)
        self._cursor = self._conn.cursor()  # the writes', reused: none made per statement
        self._pid = os.getpid()
        self._forks = _FORKS[0]

    @property
    def location(self) -> str:
        """The file's path."""
        return str(self.path)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the connection (idempotent); the last one to close folds the WAL into the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if os.getpid() == self._pid:
                self._conn.close()

    # -- runs -------------------------------------------------------------

    def insert_run(self, run: RunRecord) -> bool:
        row = (
            run.run_id,
            run.name,
            run.status,
            run.stop_reason,
            run.iterations,
            run.started_at.isoformat(),
            None if run.ended_at is None else run.ended_at.isoformat(),
            run.definition,
            run.definition_hash,
            run.lease_owner,
            None if run.last_seen is None else stamp(run.last_seen),
            None if run.lease_expires is None else stamp(run.lease_expires),
        )
        with self._lock:
            try:
                num = self._connection().execute(_INSERT_RUN, row).lastrowid
            except sqlite3.IntegrityError:
                return False
            except sqlite3.Error as exc:
                raise self._failed(exc, writing=True) from None
        self._remember(run.run_id, num)
        return True

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        stop_reason: str | None,
        iterations: int,
        ended_at: datetime,
    ) -> bool:
        return self._update(
            "UPDATE runs SET status = ?, stop_reason = ?, iterations = ?, ended_at = ?"
            " WHERE run_id = ?",
            (status, stop_reason, iterations, ended_at.isoformat(), run_id),
        )

    def reopen_run(self, run_id: str) -> bool:
        return self._update(
            "UPDATE runs SET status = 'running', ended_at = NULL WHERE run_id = ?", (run_id,)
        )

    def take_lease(self, run_id: str, lease: Lease, *, now: datetime) -> bool:
        owner, seen, expires = lease.owner, stamp(lease.seen), stamp(lease.expires)
        return self._update(_TAKE_LEASE, (owner, seen, expires, run_id, stamp(now)))

    def renew_lease(self, run_id: str, lease: Lease) -> bool:
        return self._update(
            _RENEW_LEASE, (stamp(lease.seen), stamp(lease.expires), run_id, lease.owner)
        )

    def release_lease(self, run_id: str, owner: str, *, now: datetime) -> bool:
        return self._update(_RELEASE_LEASE, (stamp(now), stamp(now), run_id, owner))

    def read_run(self, run_id: str) -> RunRow | None:
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def read_runs(self, limit: int) -> list[RunRow]:
        return self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC, num DESC LIMIT ?",
            (limit,),
        )

    def read_runs_by_prefix(self, prefix: str, limit: int) -> list[RunRow]:
        # GLOB, not LIKE: LIKE ignores case by default, and then SQLite cannot use
        # the index of run_id (case-sensitive text); GLOB's prefix is a range on it.
        return self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id GLOB ? ORDER BY run_id LIMIT ?",
            (_glob_prefix(prefix), limit),
        )

    # -- events, checkpoints, children ------------------------------------

    def write(
        self,
        run_id: str,
        *,
        first_seq: int,
        events: Sequence[EventRow],
        checkpoint: str | None,
        children: Sequence[ChildRow],
    ) -> Refusal | None:
        base = self._base(run_id)
        if base is None:
            return Refusal.unknown_run
        # The rows, flat (five values each), as one multi-row INSERT binds them.
        values: list[Any] = []
        seq = first_seq
        pos = base + 2 * seq + 1  # an event's: after the checkpoint of its seq
        for kind, body in events:
            values += (pos, run_id, seq, kind, body)
            seq += 1
            pos += 2
        if checkpoint is not None:
            values += (pos - 1, run_id, seq, CHECKPOINT_KIND, checkpoint)
        if not values and not children:
            return None
        with self._lock:
            try:
                self._insert(run_id, values, len(events), checkpoint is not None, children)
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc).upper():
                    return Refusal.unknown_run
                return Refusal.overlap
            except sqlite3.Error as exc:
                raise self._failed(exc, writing=True) from None
        return None

    def _insert(
        self,
        run_id: str,
        values: list[Any],
        events: int,
        checkpoint: bool,
        children: Sequence[ChildRow],
    ) -> None:
        """Insert ``values`` (``events`` event rows, then the checkpoint's if
        ``checkpoint``) and ``children``, atomically. Called under the lock."""
        conn = self._connection()
        cursor = self._cursor
        n = len(values) // 5
        # The usual write, a few events and a checkpoint, is one statement: atomic by
        # itself, and it takes the write lock as BEGIN IMMEDIATE does, without the
        # BEGIN and COMMIT round trips. Where a row is already there it writes nothing,
        # and the transaction below says which event it was, or replaces the checkpoint.
        if not children and n <= _MAX_ROWS_PER_INSERT:
            try:
                cursor.execute(_insert_rows(n) if events else _INSERT_CHECKPOINT, values)
                return
            except sqlite3.IntegrityError:
                pass
        with immediate(conn):
            if events:
                rows = [values[i : i + 5] for i in range(0, 5 * events, 5)]
                cursor.executemany(_INSERT_EVENTS, rows)
            if checkpoint:
                cursor.execute(_INSERT_CHECKPOINT, values[-5:])
            if children:
                cursor.executemany(_INSERT_CHILD, [(run_id, *child) for child in children])

    def read_trace(self, run_id: str) -> TraceRows:
        base = self._base(run_id)
        if base is None:
            return TraceRows([], [])
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN")  # both reads from one snapshot of the file
                try:
                    events = conn.execute(
                        "SELECT seq, body FROM events WHERE pos >= ? AND pos < ? AND kind != ?"
                        " AND run_id = ? ORDER BY pos",
                        (base, base + SPAN, CHECKPOINT_KIND, run_id),
                    ).fetchall()
                    children = conn.execute(
                        "SELECT name, body FROM children WHERE run_id = ? ORDER BY rowid",
                        (run_id,),
                    ).fetchall()
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failed(exc, writing=False) from None
        return TraceRows(events, children)

    def read_checkpoint(self, run_id: str) -> tuple[int, str] | None:
        base = self._base(run_id)
        if base is None:
            return None
        rows = self._read(
            "SELECT seq, body FROM events WHERE pos >= ? AND pos < ? AND kind = ?"
            " AND run_id = ? ORDER BY pos DESC LIMIT 1",
            (base, base + SPAN, CHECKPOINT_KIND, run_id),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    # -- retention --------------------------------------------------------

    def prune_runs(
        self, statuses: Sequence[str], ended_before: datetime, *, delete: bool
    ) -> list[RunRow]:
        # julianday() reads the ISO 8601 times whatever their offset (none is UTC).
        marks = ", ".join("?" * len(statuses))
        select = (
            f"SELECT num, {_RUN_COLUMNS} FROM runs WHERE status IN ({marks})"
            " AND julianday(ended_at) < julianday(?) ORDER BY run_id"
        )
        params = (*statuses, ended_before.isoformat())
        if not delete:
            return [row[1:] for row in self._read(select, params)]
        with self._lock:
            conn = self._connection()
            try:
                # Off for these deletes only, which remove a run's rows before the run: on,
                # SQLite would scan the whole events table (no index on its run_id) for
                # every run deleted. It cannot change inside a transaction, hence outside.
                conn.execute("PRAGMA foreign_keys = OFF")
                with immediate(conn):  # chosen under the write lock: none reopened meanwhile
                    rows = conn.execute(select, params).fetchall()
                    for num, run_id, *_ in rows:
                        conn.execute(
                            "DELETE FROM events WHERE pos >= ? AND pos < ?",
                            (num * SPAN, (num + 1) * SPAN),
                        )
                        conn.execute("DELETE FROM children WHERE run_id = ?", (run_id,))
                        conn.execute("DELETE FROM runs WHERE num = ?", (num,))
            except sqlite3.Error as exc:
                raise self._failed(exc, writing=True) from None
            finally:
                conn.execute("PRAGMA foreign_keys = ON")
            for _, run_id, *_ in rows:
                self._bases.pop(run_id, None)
        return [row[1:] for row in rows]

    # -- plumbing ---------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """The connection of this process (opened after a fork). Called under the lock."""
        if self._closed:
            raise store_closed(self.location)
        if self._forks != _FORKS[0]:
            self._forks = _FORKS[0]
            if os.getpid() != self._pid:
                # Forked: the parent's connection must not be used (nor closed) here.
                self._stale.append(self._conn)
                self._conn = connect(self.path)
                self._cursor = self._conn.cursor()
                self._pid = os.getpid()
        return self._conn

    def _failed(self, error: sqlite3.Error, *, writing: bool) -> StoreError:
        """The error for a read or write that SQLite failed: the file is damaged, or
        the read or write failed for another reason (locked, disk full, ...)."""
        found = damaged(self.path, error)
        if found is not None:
            return found
        return (cannot_write if writing else cannot_read)(self.location, error)

    def _update(self, sql: str, params: Sequence[Any]) -> bool:
        """Run one UPDATE (atomic by itself); whether it changed a row."""
        with self._lock:
            try:
                return self._connection().execute(sql, params).rowcount > 0
            except sqlite3.Error as exc:
                raise self._failed(exc, writing=True) from None

    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._failed(exc, writing=False) from None

    def _base(self, run_id: str) -> int | None:
        """The first ``pos`` of the run's rows (its number times ``SPAN``), or ``None``
        when there is no such run."""
        base = self._bases.get(run_id)
        if base is None:
            rows = self._read("SELECT num FROM runs WHERE run_id = ?", (run_id,))
            if not rows:
                return None
            base = self._remember(run_id, rows[0][0])
        return base

    def _remember(self, run_id: str, num: Any) -> int:
        # A run's number never changes: kept for the process (a few thousand at most).
        # Once the run is pruned, its number may be a newer run's: reads take only the
        # rows of the range that carry the run's id, so a kept number finds none.
        if not isinstance(num, int) or not 0 <= num < RUN_LIMIT:
            raise StoreError(f"run {run_id!r} in {self.path}: its number {num!r} is corrupt")
        if len(self._bases) >= 4096:
            self._bases.clear()
        base = self._bases[run_id] = num * SPAN
        return base


class SQLiteStore(BaseStore):
    """The default :class:`~planloop.Store`: one SQLite file, safe to share between threads
    and processes.

    Args:
        path: the database file; :func:`default_store_path` when omitted. Its
            directory is created if needed.
        redactor: applied to every event and checkpoint before it is written;
            the process-wide :func:`~planloop.engine.redact.default_redactor` when
            omitted (see :func:`~planloop.register_secret`).
            Register secrets on it (``store.redactor.register(...)``).
        lease_seconds: how long a run's lease lasts unless renewed: a run whose
            process was killed is listed as abandoned, and can be resumed, this
            long after its last renewal at most (default ``$PLANLOOP_LEASE_SECONDS``,
            else 30).
        heartbeat_seconds: how often a running run renews its lease (default a
            third of ``lease_seconds``: 10); less than ``lease_seconds``.

    Raises:
        StoreError: the file is not a planloop database, is damaged, has another
            schema version, or cannot be opened. The file is not modified (a
            file of the previous layout, version 4, is brought to this one).
        ValueError: ``heartbeat_seconds`` is not a positive number below ``lease_seconds``.

    Example:
        >>> import tempfile, datetime, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "runs.db"
        >>> with SQLiteStore(path) as store:
        ...     store.create_run("r1", name="demo", started_at=datetime.datetime.now())
        ...     store.get_run("r1").status
        'running'
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        redactor: Redactor | None = None,
        lease_seconds: float | None = None,
        heartbeat_seconds: float | None = None,
    ) -> None:
        lease_seconds, heartbeat_seconds = lease_times(lease_seconds, heartbeat_seconds)
        backend = SQLiteBackend(path if path is not None else default_store_path())
        super().__init__(
            backend,
            redactor=redactor,
            lease_seconds=lease_seconds,
            heartbeat_seconds=heartbeat_seconds,
        )
        self.path = backend.path
