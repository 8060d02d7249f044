"""Where runs are kept: runs, their trace events (append-only) and checkpoints.

A run records its :class:`~planloop.engine.trace.Trace` events and, with them,
the checkpoint after its latest transition (:meth:`Store.save`, one transaction
before each state whose handler may have effects; see
:class:`~planloop.engine.durable.Recorder`); ``resume`` later reads the last
checkpoint (:meth:`Store.load_checkpoint`) and the events (:meth:`Store.load_trace`).

:class:`SQLiteStore` is the default implementation, on the standard library's
``sqlite3``. Its file lives at :func:`default_store_path` unless given.

Design:

* **Connections and locking.** One connection per store object, shared by all
  threads and guarded by a :class:`threading.Lock`. SQLite allows one writer per
  file at a time anyway, so per-thread connections would only add contention
  inside the process, resolved by SQLite's busy handler (which sleeps and
  retries) instead of a lock that hands over at once; one connection also makes
  :meth:`SQLiteStore.close` close everything, from any thread. Between
  *processes* (or separate store objects on one file) the database is in WAL
  mode, so readers never block the writer, and ``busy_timeout`` makes a writer
  wait for the file lock instead of failing. Every write runs in a
  ``BEGIN IMMEDIATE`` transaction, or is one INSERT or UPDATE statement, which
  SQLite runs as such a transaction by itself: it takes the write lock up front,
  so two writers can never deadlock upgrading a read lock (which no timeout
  resolves). A run's usual write, a few events and a checkpoint, is one
  multi-row INSERT.
  A process forked with an open store opens its own connection on first use
  (SQLite connections must not cross ``fork``).
* **Durability.** ``synchronous=NORMAL`` in WAL mode: a committed event or
  checkpoint survives the process being killed, which is what ``resume``
  needs; only a power loss or an OS crash may drop the last commits (the file
  stays consistent: the WAL is synced before it is copied into the database).
  A commit then costs no ``fsync``, only writes into the OS's cache, which
  matters at one checkpoint per transition; the syncs come with SQLite's
  automatic WAL checkpoints, every thousand pages or so.
* **JSON.** Event bodies are ``event.model_dump_json(fallback=repr)``, exactly
  as :meth:`Trace.to_json` writes them (values that are not JSON are kept as
  their ``repr``); they are read back through the ``TraceEvent`` union, so a
  stored trace equals the recorded one. Each event is serialized once, when it
  is written: a write costs the same however long the run already is.
  Checkpoint states are turned into JSON values by pydantic (models, enums,
  datetimes, tuples are understood; anything else becomes its ``repr``), so
  :meth:`load_checkpoint` returns plain JSON values.
* **Redaction.** Every event body and checkpoint passes through the store's
  :class:`Redactor` before it is written, so secrets never reach the file. The
  events of one write are scanned together (:meth:`Redactor.redact_json_many`)
  and only those that may hold a secret are parsed and rewritten.
* **Children.** The traces of a run's sub-agent runs (``Trace.children``, by
  the id of the step that ran them, each with its own children) are kept as
  whole JSON documents, redacted, in the same transaction as the events they
  come with; :meth:`SQLiteStore.load_trace` gives them back.
* **Schema.** The ``meta`` table holds :data:`SCHEMA_VERSION`. Since version 4
  a run's events and checkpoints are rows of one table, ``events``: a
  checkpoint is a row of kind ``_checkpoint`` (never part of a trace) whose
  ``seq`` is the number of events before it. Rows are keyed by one integer, the
  run's number (``runs.num``) times 2**33 plus twice ``seq`` (plus one for an
  event), so a run's rows are one range of a rowid table, in the order they
  happened, and a write appends a few rows to the end of it: about one page
  written per transaction, with no index to keep up beside the table. A
  database of version 1, 2 or 3 is upgraded in place when opened, in one
  transaction: the ``children`` table is added if missing, ``runs`` gets its
  ``num`` (before version 3), and ``events`` and ``checkpoints`` (keyed by
  ``(run_id, seq)`` before version 3, by ``pos`` in two tables in version 3)
  are copied into the one table, every row kept; older planloops then refuse
  the file as newer. A database of any other version, or a file that is not a
  planloop database, raises :class:`~planloop.errors.StoreError` and is left
  untouched.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import sqlite3
import threading
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_json, to_jsonable_python

from planloop.engine.redact import Redactor, default_redactor
from planloop.engine.trace import Trace, TraceEvent
from planloop.errors import StoreError

__all__ = [
    "SCHEMA_VERSION",
    "Checkpoint",
    "RunRecord",
    "SQLiteStore",
    "Store",
    "default_store_path",
]

SCHEMA_VERSION = 4
"""The version of the database layout this planloop reads and writes (2: child traces;
3: events and checkpoints keyed by run number and seq; 4: checkpoints are rows of the
events table, see ``_SPAN``)."""

_UPGRADABLE = {"1", "2", "3"}
"""Versions upgraded in place on opening (see :meth:`SQLiteStore._upgrade`)."""


_BUSY_TIMEOUT_MS = 30_000

# How many times this process was forked from its parent's Python (so far, 0 or 1:
# counted in the child). A store compares its pid only after a fork, not per write.
_FORKS = [0]


def _forked() -> None:
    _FORKS[0] += 1


os.register_at_fork(after_in_child=_forked)
_EVENT = TypeAdapter[Any](TraceEvent)


def default_store_path() -> Path:
    """``$PLANLOOP_HOME/planloop.db`` if ``PLANLOOP_HOME`` is set, else ``./.planloop/planloop.db``.

    The directory is created when a store is first opened there, not here.
    """
    home = os.environ.get("PLANLOOP_HOME")
    base = Path(home).expanduser() if home else Path.cwd() / ".planloop"
    return base / "planloop.db"


# ---------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` table.

    ``status`` is ``"running"`` until :meth:`Store.finish_run` records how the run
    ended (a :class:`~planloop.RunStatus` value, or whatever status the runner
    chose, such as ``"paused"``).
    """

    run_id: str
    name: str
    status: str
    stop_reason: str | None
    iterations: int
    started_at: datetime
    ended_at: datetime | None
    definition: str | None
    """Where the agent or workflow is defined (``FILE.py:NAME``), if known."""
    definition_hash: str | None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or ``None`` while the run has not ended."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class Checkpoint:
    """The state a run saved after a transition.

    ``seq`` is the number of events the run had recorded when it was saved: the
    checkpoint reflects ``trace.events[:seq]``.
    """

    run_id: str
    seq: int
    state: dict[str, Any]


# ---------------------------------------------------------------------------
# The protocol


@runtime_checkable
class Store(Protocol):
    """What a run needs to be recorded, listed and resumed.

    :class:`SQLiteStore` is the default; give an ``Agent``, ``Workflow`` or
    ``PlanAndExecute`` any object with these methods as ``store=``.

    Example:
        >>> import pathlib, tempfile
        >>> import planloop
        >>> store = planloop.SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "runs.db")
        >>> isinstance(store, planloop.Store)
        True
        >>> wf = planloop.Workflow("double", store=store)
        >>> _ = wf.step(lambda: 21 * 2, id="answer")
        >>> _ = wf.run_sync(run_id="double-1")
        >>> [(run.run_id, run.status) for run in store.list_runs()]
        [('double-1', 'finished')]
        >>> store.load_trace("double-1").output
        42
        >>> store.close()
    """

    def create_run(
        self,
        run_id: str,
        *,
        name: str,
        started_at: datetime,
        definition: str | None = None,
        definition_hash: str | None = None,
    ) -> None:
        """Record a new run, status ``"running"``. A run id already stored is an error."""
        ...

    def append_events(self, run_id: str, events: Sequence[TraceEvent], *, first_seq: int) -> None:
        """Append ``events`` as numbers ``first_seq, first_seq + 1, ...``; all or none.

        Events are append-only: a number already stored is an error.
        """
        ...

    def save(
        self,
        run_id: str,
        events: Sequence[TraceEvent],
        *,
        first_seq: int,
        checkpoint: Mapping[str, Any] | None = None,
        children: Mapping[str, Trace] | None = None,
    ) -> None:
        """Append ``events``, save ``checkpoint`` (if given) after them and store
        ``children`` (sub-agent traces by step id, replacing any of the same id),
        atomically. Runs pass ``children`` only when they have some."""
        ...

    def save_checkpoint(self, run_id: str, seq: int, state: Mapping[str, Any]) -> None:
        """Save ``state`` as the checkpoint after the run's first ``seq`` events."""
        ...

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The checkpoint with the highest ``seq``, or ``None`` if there is none."""
        ...

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        stop_reason: str | None,
        iterations: int,
        ended_at: datetime,
    ) -> None:
        """Record how the run ended."""
        ...

    def reopen_run(self, run_id: str) -> None:
        """Mark a paused or interrupted run ``"running"`` again (it is being resumed)."""
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The run ``run_id``; an unknown id is an error."""
        ...

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The ``limit`` most recently started runs, newest first."""
        ...

    def load_trace(self, run_id: str) -> Trace:
        """The run's trace, rebuilt from its events, with its child traces."""
        ...

    def close(self) -> None:
        """Release the store's resources; using it afterwards is an error."""
        ...


# ---------------------------------------------------------------------------
# SQLite

# The events and checkpoints of a run are rows of one table, keyed by one integer,
# ``pos``: the run's number (``runs.num``, given when the run is created) times
# ``_SPAN``, plus ``2 * seq + 1`` for event ``seq`` and ``2 * seq`` for the checkpoint
# after the first ``seq`` events (so it sorts after them and before the next). A
# run's rows are one range of a rowid table (no index beside the table to keep up
# to date), appended at its end: a write of a few events and a checkpoint changes
# about one page, instead of two in version 3 (one of ``events``, one of
# ``checkpoints``) and four or five with version 2's ``(run_id, seq)`` keys, which
# matters at two writes per iteration.
_SEQ_LIMIT = 1 << 32
"""Event and checkpoint numbers are below this."""

_SPAN = 2 * _SEQ_LIMIT
"""The ``pos`` range of one run: its events and checkpoints, interleaved."""

_RUN_LIMIT = (1 << 63) // _SPAN
"""Run numbers are below this (``pos`` fits in SQLite's 64-bit integers)."""

_CHECKPOINT_KIND = "_checkpoint"
"""The ``kind`` of a checkpoint's row in ``events`` (no trace event has it)."""

_RUNS = """
CREATE TABLE runs (
    num             INTEGER PRIMARY KEY,
    run_id          TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    status          TEXT NOT NULL,
    stop_reason     TEXT,
    iterations      INTEGER NOT NULL DEFAULT 0,
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    definition      TEXT,
    definition_hash TEXT
)
"""

_RUNS_BY_START = "CREATE INDEX runs_by_start ON runs (started_at)"

_EVENTS = """
CREATE TABLE events (
    pos    INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    seq    INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    body   TEXT NOT NULL
)
"""

# Added in version 2: the traces of a run's sub-agent runs, by step id. With a
# rowid: it keeps the order in which they were stored.
_CHILDREN = """
CREATE TABLE children (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    name   TEXT NOT NULL,
    body   TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
)
"""

_META = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""

_SCHEMA = (_META, _RUNS, _RUNS_BY_START, _EVENTS, _CHILDREN)

# How a table of an older version is rebuilt in the current layout: its rows, in
# the order they were stored, copied into ``<table>_v4`` (then renamed). Events
# and checkpoints (keyed by ``(run_id, seq)`` before version 3, by ``pos`` in
# version 3: both have ``run_id`` and ``seq``) go into one new ``events``.
_COPY_RUNS = (
    "INSERT INTO runs_v4 (num, run_id, name, status, stop_reason, iterations, started_at,"
    " ended_at, definition, definition_hash) SELECT rowid, run_id, name, status, stop_reason,"
    " iterations, started_at, ended_at, definition, definition_hash FROM runs ORDER BY rowid"
)
_COPY_EVENTS = (
    f"INSERT INTO events_v4 (pos, run_id, seq, kind, body) SELECT r.num * {_SPAN}"
    " + 2 * e.seq + 1, e.run_id, e.seq, e.kind, e.body FROM events AS e"
    " JOIN runs AS r ON r.run_id = e.run_id"
)
_COPY_CHECKPOINTS = (
    f"INSERT INTO events_v4 (pos, run_id, seq, kind, body) SELECT r.num * {_SPAN}"
    f" + 2 * c.seq, c.run_id, c.seq, '{_CHECKPOINT_KIND}', c.body FROM checkpoints AS c"
    " JOIN runs AS r ON r.run_id = c.run_id"
)

_INSERT_EVENTS = "INSERT INTO events (pos, run_id, seq, kind, body) VALUES (?, ?, ?, ?, ?)"
_INSERT_CHECKPOINT = (
    "INSERT OR REPLACE INTO events (pos, run_id, seq, kind, body) VALUES (?, ?, ?, ?, ?)"
)

_MAX_ROWS_PER_INSERT = 64
"""Rows of a :meth:`SQLiteStore.save` written by one multi-row INSERT (5 values each,
well under SQLite's oldest limit of 999 bound values); more take ``executemany``."""


@functools.cache
def _insert_rows(n: int) -> str:
    """``INSERT INTO events`` of ``n`` rows, one statement (made once per ``n``)."""
    return "INSERT INTO events (pos, run_id, seq, kind, body) VALUES " + ", ".join(
        ["(?, ?, ?, ?, ?)"] * n
    )


_INSERT_CHILD = "INSERT OR REPLACE INTO children (run_id, name, body) VALUES (?, ?, ?)"

_RUN_COLUMNS = (
    "run_id, name, status, stop_reason, iterations, started_at, ended_at,"
    " definition, definition_hash"
)


class SQLiteStore:
    """The default :class:`Store`: one SQLite file, safe to share between threads and processes.

    Args:
        path: the database file; :func:`default_store_path` when omitted. Its
            directory is created if needed.
        redactor: applied to every event and checkpoint before it is written;
            the process-wide :func:`~planloop.engine.redact.default_redactor` when
            omitted (see :func:`~planloop.register_secret`).
            Register secrets on it (``store.redactor.register(...)``).

    Raises:
        StoreError: the file is not a planloop database, has another schema
            version, or cannot be opened. The file is not modified.

    Example:
        >>> import tempfile, datetime, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "runs.db"
        >>> with SQLiteStore(path) as store:
        ...     store.create_run("r1", name="demo", started_at=datetime.datetime.now())
        ...     store.get_run("r1").status
        'running'
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, redactor: Redactor | None = None
    ) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.redactor = redactor if redactor is not None else default_redactor()
        self._safe_for: Redactor | None = None
        self._safe: dict[type[BaseModel], bool] = {}
        self._clean: dict[tuple[Any, ...], bool] = {}  # checkpoint keys -> none secret
        self._bases: dict[str, int] = {}  # run id -> the first ``pos`` of its rows
        self._lock = threading.Lock()
        self._closed = False
        self._stale: list[sqlite3.Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory of the store {self.path}: {exc}"
            ) from None
        self._conn = self._open()
        self._cursor = self._conn.cursor()  # save's, reused: no cursor made per statement
        self._pid = os.getpid()
        self._forks = _FORKS[0]

    # -- opening ----------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._check_or_create(conn)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open the store {self.path}: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_or_create(self, conn: sqlite3.Connection) -> None:
        if self._check(conn) == "current":
            return
        # Empty (create the schema) or of an older version (upgrade it), unless
        # another process just did; checked again under the write lock.
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = self._check(conn)
                if found == "empty":
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?),"
                        " ('application', 'planloop')",
                        (str(SCHEMA_VERSION),),
                    )
                elif found != "current":
                    self._upgrade(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot create the store {self.path}: {exc}") from None

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        """Bring a database of an older version to the current layout, in the caller's
        transaction (all of it or nothing), keeping every row.

        Each step looks at the tables as they are rather than at the version
        number: version 1 lacks ``children``; versions 1 and 2 key events and
        checkpoints by ``(run_id, seq)``, and their runs have no ``num``; versions
        1 to 3 keep checkpoints in a table of their own. The tables of the old
        layout are rebuilt (copied, dropped, the copy renamed), with foreign keys
        not yet enforced on this connection.
        """
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "children" not in tables:
            conn.execute(_CHILDREN)
        if "num" not in _columns(conn, "runs"):
            conn.execute(_RUNS.replace("TABLE runs", "TABLE runs_v4"))
            conn.execute(_COPY_RUNS)
            self._check_copied(conn, "runs", "runs", 0)
            self._replace(conn, "runs")
            conn.execute(_RUNS_BY_START)  # dropped with the old table
        if "checkpoints" in tables:
            conn.execute(_EVENTS.replace("TABLE events", "TABLE events_v4"))
            conn.execute(_COPY_EVENTS)
            self._check_copied(conn, "events", "events", 0)
            events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            conn.execute(_COPY_CHECKPOINTS)
            self._check_copied(conn, "events", "checkpoints", events)
            conn.execute("DROP TABLE checkpoints")
            self._replace(conn, "events")
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
        )

    def _check_copied(self, conn: sqlite3.Connection, table: str, source: str, before: int) -> None:
        """Check that ``<table>_v4`` holds every row of ``source`` beyond the ``before``
        rows it held already (a row of no run is not copied: the upgrade stops)."""
        copied = conn.execute(f"SELECT count(*) FROM {table}_v4").fetchone()[0] - before
        stored = conn.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        if copied != stored:
            raise StoreError(
                f"cannot upgrade the store {self.path}: {stored - copied} rows of its"
                f" {source!r} table belong to no run. The file was not modified."
            )

    def _replace(self, conn: sqlite3.Connection, table: str) -> None:
        """Put ``<table>_v4`` (checked to hold all of its rows) in the place of ``table``."""
        conn.execute(f"DROP TABLE {table}")
        conn.execute(f"ALTER TABLE {table}_v4 RENAME TO {table}")

    def _check(self, conn: sqlite3.Connection) -> str:
        """``"current"`` if ``conn`` holds a planloop database of our version, ``"empty"``
        if it holds nothing, or the older version it has that can be upgraded."""
        try:
            tables = {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        except sqlite3.DatabaseError as exc:
            raise self._foreign(str(exc)) from None
        if not tables:
            return "empty"
        if "meta" not in tables:
            raise self._foreign("it has no planloop 'meta' table")
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise self._foreign(f"its 'meta' table cannot be read: {exc}") from None
        if meta.get("application") != "planloop" or "schema_version" not in meta:
            raise self._foreign("its 'meta' table does not identify a planloop store")
        found = str(meta["schema_version"])
        if found in _UPGRADABLE:
            return found
        if found != str(SCHEMA_VERSION):
            try:
                newer = int(found) > SCHEMA_VERSION
            except ValueError:
                newer = False
            who = "a newer" if newer else "another"
            raise StoreError(
                f"the store {self.path} has schema version {found}, but this planloop"
                f" expects version {SCHEMA_VERSION}: it was written by {who} version of"
                " planloop. Open it with that version, or point this one at a new file"
                " (set PLANLOOP_HOME or pass another path). The file was not modified."
            )
        return "current"

    def _foreign(self, reason: str) -> StoreError:
        return StoreError(
            f"{self.path} is not a planloop database ({reason}). Point the store at another"
            " file (set PLANLOOP_HOME or pass another path). The file was not modified."
        )

    # -- plumbing ---------------------------------------------------------

    @property
    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")
        if self._forks != _FORKS[0]:
            self._forks = _FORKS[0]
            if os.getpid() != self._pid:
                # Forked: the parent's connection must not be used (nor closed) here.
                self._stale.append(self._conn)
                self._conn = self._open()
                self._cursor = self._conn.cursor()
                self._pid = os.getpid()
        return self._conn

    def _write(self, sql: str, params: Sequence[Any], *, many: bool = False) -> int:
        """Run one statement (or ``executemany``) in a ``BEGIN IMMEDIATE`` transaction.

        Returns the number of rows it changed.
        """
        return self._transaction([(sql, params, many)])[0]

    def _transaction(self, statements: Sequence[tuple[str, Sequence[Any], bool]]) -> list[int]:
        """Run ``(sql, params, many)`` statements in one ``BEGIN IMMEDIATE`` transaction.

        Returns the number of rows each changed; all of them are written or none.
        """
        if len(statements) == 1 and (not statements[0][2] or len(statements[0][1]) == 1):
            # One row: SQLite makes a lone statement atomic by itself, and the
            # BEGIN / COMMIT round trips would double the cost of a step's record.
            sql, params, many = statements[0]
            if many:
                params = params[0]
            with self._lock:
                try:
                    return [self._connection.execute(sql, params).rowcount]
                except sqlite3.IntegrityError:
                    raise
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot write to the store {self.path}: {exc}") from None
        with self._lock:
            conn = self._connection
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    changed = []
                    for sql, params, many in statements:
                        run = conn.executemany if many else conn.execute
                        changed.append(run(sql, params).rowcount)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from None
            return changed

    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._lock:
            try:
                return self._connection.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot read the store {self.path}: {exc}") from None

    def _base(self, run_id: str) -> int:
        """The first ``pos`` of the run's events and checkpoints: its number times ``_SPAN``.

        Raises:
            StoreError: the run is unknown.
        """
        base = self._bases.get(run_id)
        if base is None:
            rows = self._read("SELECT num FROM runs WHERE run_id = ?", (run_id,))
            if not rows:
                raise _unknown(run_id, self.path)
            base = self._remember(run_id, rows[0][0])
        return base

    def _remember(self, run_id: str, num: Any) -> int:
        # Run numbers never change: kept for the process (a few thousand at most).
        if not isinstance(num, int) or not 0 <= num < _RUN_LIMIT:
            raise StoreError(f"run {run_id!r} in {self.path}: its number {num!r} is corrupt")
        if len(self._bases) >= 4096:
            self._bases.clear()
        base = self._bases[run_id] = num * _SPAN
        return base

    # -- runs -------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        *,
        name: str,
        started_at: datetime,
        definition: str | None = None,
        definition_hash: str | None = None,
    ) -> None:
        """Record a new run, status ``"running"``.

        Raises:
            StoreError: a run with this id is already stored.
        """
        with self._lock:
            try:
                cursor = self._connection.execute(
                    "INSERT INTO runs (run_id, name, status, iterations, started_at,"
                    " definition, definition_hash) VALUES (?, ?, 'running', 0, ?, ?, ?)",
                    (run_id, name, started_at.isoformat(), definition, definition_hash),
                )
            except sqlite3.IntegrityError:
                raise StoreError(
                    f"run {run_id!r} already exists in {self.path}; run ids must be unique:"
                    " pass another run_id (or none, for a fresh one), or resume that run"
                ) from None
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from None
        self._remember(run_id, cursor.lastrowid)

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        stop_reason: str | None,
        iterations: int,
        ended_at: datetime,
    ) -> None:
        """Record how the run ended (``status`` is a :class:`~planloop.RunStatus` or other text).

        Raises:
            StoreError: the run is unknown.
        """
        found = self._write(
            "UPDATE runs SET status = ?, stop_reason = ?, iterations = ?, ended_at = ?"
            " WHERE run_id = ?",
            (
                str(status),
                None if stop_reason is None else str(stop_reason),
                iterations,
                ended_at.isoformat(),
                run_id,
            ),
        )
        if not found:
            raise _unknown(run_id, self.path)

    def reopen_run(self, run_id: str) -> None:
        """Mark the run ``"running"`` again, with no end time (it is being resumed).

        Raises:
            StoreError: the run is unknown.
        """
        found = self._write(
            "UPDATE runs SET status = 'running', ended_at = NULL WHERE run_id = ?", (run_id,)
        )
        if not found:
            raise _unknown(run_id, self.path)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def get_run(self, run_id: str) -> RunRecord:
        """The run ``run_id``.

        Raises:
            StoreError: no such run (the message names it), or its row is corrupt.
        """
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise _unknown(run_id, self.path)
        return _run_record(rows[0])

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The ``limit`` most recently started runs, newest first."""
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC, num DESC LIMIT ?",
            (limit,),
        )
        return [_run_record(row) for row in rows]

    # -- events -----------------------------------------------------------

    def append_events(self, run_id: str, events: Sequence[TraceEvent], *, first_seq: int) -> None:
        """Append ``events`` as numbers ``first_seq, first_seq + 1, ...``, all or none.

        Each body is the event's JSON (as :meth:`Trace.to_json` writes it), redacted.

        Raises:
            StoreError: the run is unknown, or one of the numbers is already
                taken (events are append-only; nothing was written).
        """
        self.save(run_id, events, first_seq=first_seq)

    def save(
        self,
        run_id: str,
        events: Sequence[TraceEvent],
        *,
        first_seq: int,
        checkpoint: Mapping[str, Any] | None = None,
        children: Mapping[str, Trace] | None = None,
    ) -> None:
        """Append ``events`` and, if given, save ``checkpoint`` after them and store
        ``children`` (sub-agent traces by step id), in one transaction.

        This is what a run calls before each state with effects (and when a step
        ends): the events since the last call and the state after them are
        stored together or not at all. A child trace replaces a stored one of
        the same id (a step that ran again after a crash); each is redacted.

        Raises:
            StoreError: the run is unknown, or an event number is already taken
                (nothing was written).
        """
        if first_seq < 0:
            raise ValueError(f"first_seq must be >= 0, got {first_seq}")
        _check_seq(first_seq + len(events))
        base = self._bases.get(run_id)
        if base is None:
            base = self._base(run_id)
        redactor = self.redactor
        if self._safe_for is not redactor:  # verdicts depend on the redactor's patterns
            self._safe_for, self._safe, self._clean = redactor, {}, {}
        safe = self._safe
        # The rows, flat (five values each), as one multi-row INSERT binds them.
        values: list[Any] = []
        scan: list[bool] = []
        seq = first_seq
        pos = base + 2 * seq + 1  # an event's: after the checkpoint of its seq
        for event in events:
            verdict = safe.get(type(event))  # only event classes are there
            if verdict is None:
                if not isinstance(event, BaseModel):
                    raise TypeError(f"not a trace event: {event!r}")
                verdict = self._keys_are_safe(type(event))
            # The body is what ``event.model_dump_json(fallback=repr)`` returns,
            # without its keyword handling (a few microseconds per write).
            values += (
                pos,
                run_id,
                seq,
                str(getattr(event, "kind", "")),
                event.__pydantic_serializer__.to_json(event, fallback=repr).decode(),
            )
            # Events whose every key is known, none secret, need no scan for keys.
            scan.append(not verdict)
            seq += 1
            pos += 2
        if scan:
            values[4::5] = redactor.redact_json_many(values[4::5], scan)
        if checkpoint is not None:
            values += (pos - 1, run_id, seq, _CHECKPOINT_KIND, self._checkpoint_body(checkpoint))
        kids = None
        if children:
            kids = [
                (run_id, str(name), redactor.redact_json(child.to_json()))
                for name, child in children.items()
            ]
        if not values and not kids:
            return
        # The one write of a run's iteration, twice per iteration. Its usual form, a
        # few events and a checkpoint, is one INSERT of all the rows: a lone statement
        # is atomic by itself and takes the write lock as BEGIN IMMEDIATE does, without
        # the BEGIN and COMMIT round trips. Where a row is already there, that INSERT
        # writes nothing and the transaction below says which event it was, or
        # replaces the checkpoint.
        n = len(values) // 5
        with self._lock:
            conn = self._connection
            cursor = self._cursor
            try:
                if not kids and n <= _MAX_ROWS_PER_INSERT:
                    try:
                        cursor.execute(_insert_rows(n) if scan else _INSERT_CHECKPOINT, values)
                        return
                    except sqlite3.IntegrityError:
                        pass
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    if scan:
                        cursor.executemany(
                            _INSERT_EVENTS,
                            [values[i : i + 5] for i in range(0, 5 * len(scan), 5)],
                        )
                    if checkpoint is not None:
                        cursor.execute(_INSERT_CHECKPOINT, values[-5:])
                    if kids:
                        cursor.executemany(_INSERT_CHILD, kids)
                    cursor.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError as exc:
                raise self._integrity(run_id, exc, first_seq, max(len(scan), 1)) from None
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write to the store {self.path}: {exc}") from None

    def _clean_keys(self, state: Mapping[str, Any]) -> bool:
        """Whether ``state`` is a dict whose keys are all strings and none looks secret."""
        if type(state) is not dict:
            return False
        redactor = self.redactor
        if self._safe_for is not redactor:  # verdicts depend on the redactor's patterns
            self._safe_for, self._safe, self._clean = redactor, {}, {}
        keys = tuple(state)
        clean = self._clean.get(keys)
        if clean is None:
            clean = all(type(k) is str and not redactor.is_secret_key(k) for k in keys)
            if len(self._clean) >= 256:
                self._clean.clear()
            self._clean[keys] = clean
        return clean

    def _keys_are_safe(self, cls: type[BaseModel]) -> bool:
        """Whether the JSON of a ``cls`` can only hold keys, all known, that are not secret."""
        redactor = self.redactor
        if self._safe_for is not redactor:  # verdicts depend on the redactor's patterns
            self._safe_for, self._safe, self._clean = redactor, {}, {}
        safe = self._safe.get(cls)
        if safe is None:
            keys = _static_keys(cls)
            safe = keys is not None and not any(redactor.is_secret_key(k) for k in keys)
            self._safe[cls] = safe
        return safe

    def _checkpoint_body(self, state: Mapping[str, Any]) -> str:
        # A run's checkpoint: a few counters and names under the same keys every
        # time. When no key can be secret and no value needs converting, its JSON
        # is written as it is (pydantic's encoder: the same text as ``_ENCODER``'s
        # for these values, in a fraction of the time) unless it holds a literal.
        if self._clean_keys(state) and all(type(v) in _FLAT for v in state.values()):
            text = to_json(state).decode()
            if not self.redactor.may_hold_literals(text):
                return text
        if all(type(v) in _PLAIN for v in state.values()):
            value: Any = dict(state)  # already JSON values: nothing for pydantic to convert
        else:
            value = to_jsonable_python(dict(state), fallback=repr)
        return _ENCODER.encode(self.redactor.redact(value))

    def load_trace(self, run_id: str) -> Trace:
        """The run's trace, rebuilt from its events, with its child traces.

        Raises:
            StoreError: the run is unknown, an event row is corrupt or does not
                validate, or an event is missing (the message names the run and
                the event number), or a child trace is corrupt (the message names
                the step). Other runs are unaffected.
        """
        base = self._base(run_id)
        rows = self._read(
            "SELECT seq, body FROM events WHERE pos >= ? AND pos < ? AND kind != ? ORDER BY pos",
            (base, base + _SPAN, _CHECKPOINT_KIND),
        )
        events = []
        for index, (seq, body) in enumerate(rows):
            if seq != index:
                raise StoreError(
                    f"run {run_id!r} in {self.path}: event {index} is missing (the next"
                    f" stored event is number {seq}); the stored trace is incomplete"
                )
            try:
                events.append(_EVENT.validate_json(body))
            except (ValidationError, TypeError, ValueError) as exc:
                raise StoreError(
                    f"run {run_id!r} in {self.path}: event seq {seq} is corrupt and cannot"
                    f" be read: {_first_error(exc)}"
                ) from None
        children = {}
        rows = self._read(
            "SELECT name, body FROM children WHERE run_id = ? ORDER BY rowid", (run_id,)
        )
        for name, body in rows:
            try:
                children[name] = Trace.model_validate_json(body)
            except (ValidationError, TypeError, ValueError) as exc:
                raise StoreError(
                    f"run {run_id!r} in {self.path}: the trace of the sub-agent run of step"
                    f" {name!r} is corrupt and cannot be read: {_first_error(exc)}"
                ) from None
        return Trace(run_id=run_id, events=events, children=children)

    # -- checkpoints ------------------------------------------------------

    def save_checkpoint(self, run_id: str, seq: int, state: Mapping[str, Any]) -> None:
        """Save ``state`` as the run's checkpoint after its first ``seq`` events.

        ``state`` is turned into JSON values (pydantic's rules; anything else is
        stored as its ``repr``) and redacted. Saving again at the same ``seq``
        replaces that checkpoint; earlier ones are kept.

        Raises:
            StoreError: the run is unknown.
        """
        _check_seq(seq)
        base = self._base(run_id)
        try:
            self._write(
                _INSERT_CHECKPOINT,
                (base + 2 * seq, run_id, seq, _CHECKPOINT_KIND, self._checkpoint_body(state)),
            )
        except sqlite3.IntegrityError as exc:
            raise self._integrity(run_id, exc, seq, 1) from None

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The run's latest checkpoint (highest ``seq``), or ``None`` if it has none.

        Raises:
            StoreError: the run is unknown, or the checkpoint is corrupt.
        """
        base = self._base(run_id)
        rows = self._read(
            "SELECT seq, body FROM events WHERE pos >= ? AND pos < ? AND kind = ?"
            " ORDER BY pos DESC LIMIT 1",
            (base, base + _SPAN, _CHECKPOINT_KIND),
        )
        if not rows:
            return None
        seq, body = rows[0]
        try:
            state = json.loads(body)
        except (TypeError, ValueError) as exc:
            state = exc
        if not isinstance(state, dict):
            raise StoreError(
                f"run {run_id!r} in {self.path}: the checkpoint at seq {seq} is corrupt"
                " (not a JSON object)"
            )
        return Checkpoint(run_id=run_id, seq=int(seq), state=state)

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent); the last one to close folds the WAL into the file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if os.getpid() == self._pid:
                self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<SQLiteStore {str(self.path)!r}{state}>"

    def _integrity(
        self, run_id: str, exc: sqlite3.IntegrityError, first: int, count: int
    ) -> StoreError:
        if "FOREIGN KEY" in str(exc).upper():
            return _unknown(run_id, self.path)
        last = first + count - 1
        span = f"seq {first}" if count == 1 else f"seqs {first}..{last}"
        return StoreError(
            f"run {run_id!r} in {self.path}: an event in {span} is already stored;"
            " events are append-only (nothing was written)"
        )


_PLAIN = frozenset({str, int, float, bool, type(None)})
_FLAT = frozenset({str, int, bool, type(None)})  # no float: NaN and infinities differ
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one, not one per call
_SCALARS = (str, int, float, bool, type(None), datetime, enum.Enum)


def _static_keys(cls: Any) -> frozenset[str] | None:
    """Every dict key the JSON of an instance of ``cls`` can hold, or ``None`` when
    values of any shape can appear in it (``Any``, a dict)."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        if cls.model_config.get("extra") == "allow" or cls.model_computed_fields:
            return None  # keys beyond the declared fields
        keys = set(cls.model_fields)
        for info in cls.model_fields.values():
            if info.alias is not None or info.serialization_alias is not None:
                return None  # dumped under another name: not worth following
            inner = _static_keys(info.annotation)
            if inner is None:
                return None
            keys |= inner
        return frozenset(keys)
    if isinstance(cls, type) and issubclass(cls, _SCALARS):
        return frozenset()
    origin = typing.get_origin(cls)
    if origin is typing.Literal:
        return frozenset()
    if origin in (typing.Union, types.UnionType, tuple, list, frozenset, set):
        found: set[str] = set()
        for arg in typing.get_args(cls):
            if arg is Ellipsis:
                continue
            inner = _static_keys(arg)
            if inner is None:
                return None
            found |= inner
        return frozenset(found)
    return None


def _check_seq(seq: int) -> None:
    if not 0 <= seq < _SEQ_LIMIT:
        raise ValueError(f"event and checkpoint numbers are from 0 to 2**32 - 1, got {seq}")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _unknown(run_id: str, path: Path) -> StoreError:
    return StoreError(
        f"no run {run_id!r} in the store {path}; `planloop runs` lists the stored runs"
    )


def _run_record(row: Sequence[Any]) -> RunRecord:
    run_id = row[0]
    try:
        return RunRecord(
            run_id=run_id,
            name=row[1],
            status=row[2],
            stop_reason=row[3],
            iterations=int(row[4]),
            started_at=datetime.fromisoformat(row[5]),
            ended_at=None if row[6] is None else datetime.fromisoformat(row[6]),
            definition=row[7],
            definition_hash=row[8],
        )
    except (TypeError, ValueError) as exc:
        raise StoreError(f"run {run_id!r}: its row in the runs table is corrupt: {exc}") from None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = exc.error_count() - 1
        extra = f" (and {more} more)" if more > 0 else ""
        return f"at {where}: {err['msg']}{extra}"
    return str(exc)
