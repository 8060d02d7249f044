"""The SQLite store's database layout, and opening a file as one (created when empty).

The ``meta`` table names the application and holds :data:`SCHEMA_VERSION`. A
run's events and checkpoints are rows of one table, ``events``: a checkpoint is
a row of kind ``_checkpoint`` (never part of a trace) whose ``seq`` is the
number of events before it. Rows are keyed by one integer, ``pos``: the run's
number (``runs.num``) times :data:`SPAN`, plus ``2 * seq + 1`` for event
``seq`` and ``2 * seq`` for the checkpoint after the first ``seq`` events (so it
sorts after them and before the next). A run's rows are then one range of a
rowid table, in the order they happened, and a write appends a few rows to the
end of it: about one page written per transaction, and no index beside the
table to keep up to date, which matters at a write or two per iteration.

A run's lease (which process runs it, see :class:`~planloop.engine.store.BaseStore`)
is three columns of ``runs``: ``lease_owner``, ``last_seen`` and ``lease_expires``,
the times as UTC ISO 8601 text with microseconds (:func:`stamp`), all of one
length, so that text order is time order and SQL compares them as text.

The store reads and writes one layout. A file of the layout before it (version
4, which had no lease columns) is brought to this one when it is opened, in one
transaction (:func:`_migrate`: the columns added, the version set; a crash
leaves the old layout whole). A file of any other version, or that is not a
planloop database, raises :class:`~planloop.errors.StoreError` and is left
untouched. A file whose pages SQLite
finds corrupt (``SQLITE_CORRUPT``, "database disk image is malformed") raises one
that says the file is damaged and how to check and recover it (:func:`damaged`),
whether the damage shows when the store opens or at a later read or write.
"""

from __future__ import annotations

import shlex
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from planloop.engine.store._backend import SEQ_LIMIT
from planloop.errors import StoreError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CHECKPOINT_KIND",
    "RUN_LIMIT",
    "SCHEMA_VERSION",
    "SPAN",
    "connect",
    "damaged",
    "immediate",
    "stamp",
]

SCHEMA_VERSION = 5
"""The version of the database layout this planloop reads and writes."""

_MIGRATES_FROM = 4
"""The one older version that opening a file brings to :data:`SCHEMA_VERSION`."""

SPAN = 2 * SEQ_LIMIT
"""The ``pos`` range of one run: its events and checkpoints, interleaved."""

RUN_LIMIT = (1 << 63) // SPAN
"""Run numbers are below this (``pos`` fits in SQLite's 64-bit integers)."""

CHECKPOINT_KIND = "_checkpoint"
"""The ``kind`` of a checkpoint's row in ``events`` (no trace event has it)."""

BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for another process's write lock before failing."""

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
    definition_hash TEXT,
    lease_owner     TEXT,
    last_seen       TEXT,
    lease_expires   TEXT
)
"""

_LEASE_COLUMNS = ("lease_owner", "last_seen", "lease_expires")

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

# The traces of a run's sub-agent runs, by step id. With a rowid: it keeps the
# order in which they were stored.
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


def connect(path: Path) -> sqlite3.Connection:
    """A connection to the store at ``path``, its schema created if the file is empty
    (or migrated, if it has the layout before leases: see :func:`_migrate`).

    It is in autocommit mode (transactions are explicit), usable from any thread
    (the caller serializes its use), in WAL mode with ``synchronous=NORMAL``,
    with foreign keys enforced and a busy timeout of :data:`BUSY_TIMEOUT_MS`.

    Raises:
        StoreError: the file cannot be opened, is not a planloop database, is
            damaged, or has another schema version (the file is not modified).
    """
    try:
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        found = _check(conn, path)
        if found is None:
            _create(conn, path)
        elif found != SCHEMA_VERSION:
            _migrate(conn, path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        conn.close()
        raise damaged(path, exc, opening=True) or StoreError(
            f"cannot open the store {path}: {exc}"
        ) from None
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A ``BEGIN IMMEDIATE`` transaction: committed at the end of the block, rolled
    back if it raises. Taking the write lock up front means two writers can never
    deadlock upgrading a read lock, which no timeout resolves."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _create(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in the empty database of ``conn``, unless another process
    just did (checked again under the write lock)."""
    try:
        with immediate(conn):
            if _check(conn, path) is not None:
                return
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?),"
                " ('application', 'planloop')",
                (str(SCHEMA_VERSION),),
            )
    except sqlite3.Error as exc:
        raise damaged(path, exc, opening=True) or StoreError(
            f"cannot create the store {path}: {exc}"
        ) from None


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the database of ``conn``, of version :data:`_MIGRATES_FROM`, to
    :data:`SCHEMA_VERSION` in one transaction, unless another process just did.

    The lease columns are added. A run the file says is running gets a lease
    that expired now, owned by no one: no process of this version runs it, so it
    is listed as abandoned and can be resumed.
    """
    try:
        with immediate(conn):
            if _check(conn, path) == SCHEMA_VERSION:
                return
            for column in _LEASE_COLUMNS:
                conn.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
            now = stamp(datetime.now(UTC))
            conn.execute(
                "UPDATE runs SET last_seen = ?, lease_expires = ? WHERE status = 'running'",
                (now, now),
            )
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )
    except sqlite3.Error as exc:
        raise damaged(path, exc, opening=True) or StoreError(
            f"cannot bring the store {path} from schema version {_MIGRATES_FROM} to"
            f" {SCHEMA_VERSION}: {exc}. The file was not modified."
        ) from None


def stamp(moment: datetime) -> str:
    """``moment`` as the store writes times: UTC ISO 8601 with microseconds, so that
    every stamp has the same length and text order is time order.

    Example:
        >>> stamp(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
        '2026-01-01T12:00:00.000000+00:00'
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _check(conn: sqlite3.Connection, path: Path) -> int | None:
    """The schema version of the planloop database ``conn`` holds (ours, or the one
    we migrate from), or ``None`` if it holds nothing.

    Raises:
        StoreError: it holds something else.
    """
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    except sqlite3.DatabaseError as exc:
        raise damaged(path, exc, opening=True) or _foreign(path, str(exc)) from None
    if not tables:
        return None
    if "meta" not in tables:
        raise _foreign(path, "it has no planloop 'meta' table")
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as exc:
        raise damaged(path, exc, opening=True) or _foreign(
            path, f"its 'meta' table cannot be read: {exc}"
        ) from None
    if meta.get("application") != "planloop" or "schema_version" not in meta:
        raise _foreign(path, "its 'meta' table does not identify a planloop store")
    found = str(meta["schema_version"])
    if found not in (str(SCHEMA_VERSION), str(_MIGRATES_FROM)):
        raise _other_version(path, found)
    return int(found)


def _other_version(path: Path, found: str) -> StoreError:
    try:
        newer = int(found) > SCHEMA_VERSION
    except ValueError:
        newer = False
    who = "a newer" if newer else "an older" if found.isdigit() else "another"
    return StoreError(
        f"the store {path} has schema version {found}, but this planloop reads version"
        f" {SCHEMA_VERSION}: it was written by {who} version of planloop. Open it with that"
        " version, or move the file away to start a new store here (or set PLANLOOP_HOME or"
        " pass another path). The file was not modified."
    )


def _foreign(path: Path, reason: str) -> StoreError:
    return StoreError(
        f"{path} is not a planloop database ({reason}). Point the store at another"
        " file (set PLANLOOP_HOME or pass another path). The file was not modified."
    )


def damaged(path: Path | str, error: sqlite3.Error, *, opening: bool = False) -> StoreError | None:
    """The error for ``error`` if SQLite raised it because pages of the file at ``path``
    are corrupt (``SQLITE_CORRUPT`` or one of its extended codes), else ``None``.

    A file whose header is not SQLite's is not damaged but foreign (SQLite says
    "file is not a database"); it gets the "not a planloop database" error instead.
    ``opening`` says the store was being opened, so the file was not modified.
    """
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(code, int) or code & 0xFF != sqlite3.SQLITE_CORRUPT:
        return None
    where = shlex.quote(str(path))
    return StoreError(
        f"the store {path} is damaged: SQLite finds parts of the file corrupt ({error})."
        f" Check it with: sqlite3 {where} 'PRAGMA integrity_check'. To go on, restore the"
        " file from a backup, or copy what can still be read into a new file"
        f" (sqlite3 {where} .recover | sqlite3 NEW.db, or .dump where .recover is missing)"
        " and point the store at it, or at another file (set PLANLOOP_HOME or pass"
        " another path)." + (" The file was not modified." if opening else "")
    )
