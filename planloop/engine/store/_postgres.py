"""Runs in a PostgreSQL database (:class:`PostgresStore`, over :class:`PostgresBackend`).

* **Connections.** A :class:`psycopg_pool.ConnectionPool` per backend (1 to 4
  connections, checked before use so that a restarted server is survived), shared
  by all threads; each call takes a connection for its statements and gives it back.
  A process forked with an open store opens its own pool on first use (a pool must
  not cross ``fork``). Connections are in autocommit mode: a lone statement is its
  own transaction, and the writes of several statements are explicit transactions.
* **Concurrency.** Other processes may use the database at once. A write of
  events is one transaction; of two writers racing for an event number, the second
  waits for the first's commit and then fails on the key (READ COMMITTED): exactly
  one wins. A lease is one conditional UPDATE, re-checked by PostgreSQL on the row
  another transaction just changed. Pruning locks the runs it chooses
  (``SELECT ... FOR UPDATE``) before deleting them.
* **Blocking.** Every method waits for the server (a network round trip or
  more), and the engine calls the store on its event loop: a run's writes block
  the loop that long. Moving the waiting off the loop is the design note's
  second part (``docs/postgresql.md``), not done yet.
* **Layout.** See :mod:`planloop.engine.store._postgres_schema`.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from planloop.engine.redact import Redactor
from planloop.engine.store._backend import (
    ChildRow,
    EventRow,
    Lease,
    Refusal,
    RunRow,
    TraceRows,
    store_closed,
)
from planloop.engine.store._base import BaseStore
from planloop.engine.store._lease import lease_times
from planloop.engine.store._postgres_schema import create, explain, hide_password, psycopg_module
from planloop.engine.store._protocol import RunRecord
from planloop.errors import StoreError

__all__ = ["PostgresBackend", "PostgresStore"]

CONNECT_TIMEOUT = 10
"""Seconds to wait for the server when connecting."""

POOL_SIZE = 4
"""The most connections one backend holds."""

_RUN_COLUMNS = (
    "run_id, name, status, stop_reason, iterations, started_at, ended_at,"
    " definition, definition_hash, lease_owner, last_seen, lease_expires"
)
_INSERT_RUN = (
    f"INSERT INTO planloop.runs ({_RUN_COLUMNS}) VALUES ({', '.join(['%s'] * 12)})"
    " ON CONFLICT (run_id) DO NOTHING RETURNING num"
)
_UPSERT_CHECKPOINT = (
    "INSERT INTO planloop.checkpoints (run_id, seq, body) VALUES (%s, %s, %s)"
    " ON CONFLICT (run_id, seq) DO UPDATE SET body = EXCLUDED.body"
)
_UPSERT_CHILD = (
    "INSERT INTO planloop.children (run_id, name, body) VALUES (%s, %s, %s)"
    " ON CONFLICT (run_id, name) DO UPDATE"
    " SET body = EXCLUDED.body, stored = nextval('planloop.children_order')"
)
_TAKE_LEASE = (
    "UPDATE planloop.runs SET lease_owner = %s, last_seen = %s, lease_expires = %s"
    " WHERE run_id = %s AND (lease_owner IS NULL OR lease_expires <= %s)"
)
_RENEW_LEASE = (
    "UPDATE planloop.runs SET last_seen = %s, lease_expires = %s"
    " WHERE run_id = %s AND lease_owner = %s"
)
_RELEASE_LEASE = (
    "UPDATE planloop.runs SET lease_owner = NULL, last_seen = %s, lease_expires = %s"
    " WHERE run_id = %s AND lease_owner = %s"
)


def _utc(moment: datetime | None) -> datetime | None:
    """``moment`` with a time zone (a naive one is UTC), as the lease columns take it."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern of the texts that start with ``prefix``: its wildcards escaped."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class PostgresBackend:
    """The :class:`~planloop.engine.store.Backend` of a PostgreSQL database: the tables
    of the schema ``planloop`` in the database of ``url``, created on first use.

    Args:
        url: a ``postgresql://user:password@host:port/database`` URL (or a libpq
            ``key=value`` string); messages show it with the password hidden
            (:attr:`location`).

    Raises:
        StoreError: psycopg is not installed; the server cannot be reached, refuses
            the user, has no such database, or the user may not create or use the
            schema; or the schema is not a planloop store of this version. The
            message names the URL without its password, and says what to do.
    """

    def __init__(self, url: str) -> None:
        self._psycopg = psycopg_module()
        self._url = url
        self.location = hide_password(url)
        self._lock = threading.Lock()
        self._closed = False
        try:
            with self._psycopg.connect(
                url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            ) as conn:
                create(conn, self.location)
        except self._psycopg.Error as exc:
            raise explain(url, exc, doing="open") from None
        self._pid = os.getpid()
        self._pool = self._new_pool()

    def _new_pool(self) -> Any:
        """A pool of this process, closed by :meth:`close`, or when the backend is
        garbage-collected or the interpreter exits (a pool left to its own ``__del__``
        may be collected in one of its worker threads, which cannot join itself)."""
        from psycopg_pool import ConnectionPool

        pool = ConnectionPool(
            self._url,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            configure=_configure,
            check=ConnectionPool.check_connection,
            timeout=CONNECT_TIMEOUT * 3,
            name="planloop-store",
            open=True,
        )
        self._finalizer = weakref.finalize(self, _close_pool, pool, os.getpid())
        return pool

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the pool's connections (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._finalizer()

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
            _utc(run.last_seen),
            _utc(run.lease_expires),
        )
        with self._connection(writing=True) as conn:
            return conn.execute(_INSERT_RUN, row).fetchone() is not None

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
            "UPDATE planloop.runs SET status = %s, stop_reason = %s, iterations = %s,"
            " ended_at = %s WHERE run_id = %s",
            (status, stop_reason, iterations, ended_at.isoformat(), run_id),
        )

    def reopen_run(self, run_id: str) -> bool:
        return self._update(
            "UPDATE planloop.runs SET status = 'running', ended_at = NULL WHERE run_id = %s",
            (run_id,),
        )

    def take_lease(self, run_id: str, lease: Lease, *, now: datetime) -> bool:
        seen, expires = _utc(lease.seen), _utc(lease.expires)
        return self._update(_TAKE_LEASE, (lease.owner, seen, expires, run_id, _utc(now)))

    def renew_lease(self, run_id: str, lease: Lease) -> bool:
        return self._update(
            _RENEW_LEASE, (_utc(lease.seen), _utc(lease.expires), run_id, lease.owner)
        )

    def release_lease(self, run_id: str, owner: str, *, now: datetime) -> bool:
        return self._update(_RELEASE_LEASE, (_utc(now), _utc(now), run_id, owner))

    def read_run(self, run_id: str) -> RunRow | None:
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM planloop.runs WHERE run_id = %s", (run_id,))
        return rows[0] if rows else None

    def read_runs(self, limit: int) -> list[RunRow]:
        return self._read(
            f"SELECT {_RUN_COLUMNS} FROM planloop.runs ORDER BY started_at DESC, num DESC LIMIT %s",
            (limit,),
        )

    def read_runs_by_prefix(self, prefix: str, limit: int) -> list[RunRow]:
        # run_id is COLLATE "C": LIKE with a fixed prefix is a range of its index.
        return self._read(
            f"SELECT {_RUN_COLUMNS} FROM planloop.runs WHERE run_id LIKE %s"
            " ORDER BY run_id LIMIT %s",
            (_like_prefix(prefix), limit),
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
        if not events and checkpoint is None and not children:
            return (
                None
                if self._read("SELECT 1 FROM planloop.runs WHERE run_id = %s", (run_id,))
                else Refusal.unknown_run
            )
        errors = self._psycopg.errors
        values: list[Any] = []
        for seq, (kind, body) in enumerate(events, first_seq):
            values += (run_id, seq, kind, body)
        try:
            with self._connection(writing=True) as conn, conn.transaction():
                if events:
                    marks = ", ".join(["(%s, %s, %s, %s)"] * len(events))
                    conn.execute(
                        f"INSERT INTO planloop.events (run_id, seq, kind, body) VALUES {marks}",
                        values,
                    )
                if checkpoint is not None:
                    conn.execute(_UPSERT_CHECKPOINT, (run_id, first_seq + len(events), checkpoint))
                if children:
                    with conn.cursor() as cursor:
                        cursor.executemany(
                            _UPSERT_CHILD, [(run_id, name, body) for name, body in children]
                        )
        except errors.ForeignKeyViolation:
            return Refusal.unknown_run
        except errors.UniqueViolation:
            return Refusal.overlap
        return None

    def read_trace(self, run_id: str) -> TraceRows:
        with self._connection(writing=False) as conn, conn.transaction():
            # Both reads from one snapshot.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            events = conn.execute(
                "SELECT seq, body FROM planloop.events WHERE run_id = %s ORDER BY seq",
                (run_id,),
            ).fetchall()
            children = conn.execute(
                "SELECT name, body FROM planloop.children WHERE run_id = %s ORDER BY stored",
                (run_id,),
            ).fetchall()
        return TraceRows(events, children)

    def read_checkpoint(self, run_id: str) -> tuple[int, str] | None:
        rows = self._read(
            "SELECT seq, body FROM planloop.checkpoints WHERE run_id = %s"
            " ORDER BY seq DESC LIMIT 1",
            (run_id,),
        )
        return (rows[0][0], rows[0][1]) if rows else None

    # -- retention --------------------------------------------------------

    def prune_runs(
        self, statuses: Sequence[str], ended_before: datetime, *, delete: bool
    ) -> list[RunRow]:
        # The sessions are in UTC (see _configure): an end time without a time zone
        # is read as UTC.
        select = (
            f"SELECT {_RUN_COLUMNS} FROM planloop.runs WHERE status = ANY(%s)"
            " AND ended_at::timestamptz < %s ORDER BY run_id"
        )
        params = (list(statuses), _utc(ended_before))
        if not delete:
            return self._read(select, params)
        with self._connection(writing=True) as conn, conn.transaction():
            # FOR UPDATE locks the chosen rows until the commit: a reopen waits, then
            # finds the run gone; a run reopened before is not chosen (its status).
            rows: list[RunRow] = conn.execute(select + " FOR UPDATE", params).fetchall()
            ids = [row[0] for row in rows]
            if ids:
                for table in ("events", "checkpoints", "children", "runs"):
                    conn.execute(
                        f"DELETE FROM planloop.{table} WHERE run_id = ANY(%s)",
                        (ids,),
                    )
        return rows

    # -- plumbing ---------------------------------------------------------

    def _connection(self, *, writing: bool) -> Any:
        """A context giving a connection of the pool, whose psycopg errors (other than
        the refusals ``write`` expects) become the store's."""
        return _Borrowed(self, writing=writing)

    def _current_pool(self) -> Any:
        with self._lock:
            if self._closed:
                raise store_closed(self.location)
            if os.getpid() != self._pid:
                # Forked: the parent's pool must not be used (nor closed) here.
                self._finalizer.detach()
                self._pid = os.getpid()
                self._pool = self._new_pool()
            return self._pool

    def _update(self, sql: str, params: Sequence[Any]) -> bool:
        """Run one UPDATE (atomic by itself); whether it changed a row."""
        with self._connection(writing=True) as conn:
            return bool(conn.execute(sql, params).rowcount > 0)

    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._connection(writing=False) as conn:
            return list(conn.execute(sql, params).fetchall())


def _close_pool(pool: Any, pid: int) -> None:
    """Close ``pool`` if this process opened it (a forked child leaves its parent's alone)."""
    if os.getpid() == pid:
        pool.close()


def _configure(conn: Any) -> None:
    """Set up a new connection of the pool: its session's time zone is UTC."""
    conn.execute("SET TIME ZONE 'UTC'")


class _Borrowed:
    """A connection taken from the backend's pool for one ``with`` block."""

    def __init__(self, backend: PostgresBackend, *, writing: bool) -> None:
        self._backend = backend
        self._writing = writing
        self._context: Any = None

    def __enter__(self) -> Any:
        try:
            self._context = self._backend._current_pool().connection()
            return self._context.__enter__()
        except self._backend._psycopg.Error as exc:  # the pool's PoolTimeout is one
            raise self._failed(exc) from None

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> Literal[False]:
        self._context.__exit__(kind, error, tb)
        errors = self._backend._psycopg.errors
        expected = (errors.ForeignKeyViolation, errors.UniqueViolation)
        if isinstance(error, self._backend._psycopg.Error) and not isinstance(error, expected):
            raise self._failed(error) from None
        return False

    def _failed(self, error: BaseException) -> StoreError:
        doing = "write to" if self._writing else "read"
        return explain(self._backend._url, error, doing=doing)


class PostgresStore(BaseStore):
    """A :class:`~planloop.Store` in a PostgreSQL database, shared by threads, processes
    and machines: the schema ``planloop`` of the database at ``url``, created on first use.

    Needs the ``planloop[postgresql]`` extra (psycopg 3 and psycopg-pool). Store
    writes wait for the server on the run's event loop for now (a round trip each).

    Args:
        url: ``postgresql://user:password@host:port/database``; every message names
            it with the password hidden (:attr:`location`).
        redactor: applied to every event and checkpoint before it is written (see
            :class:`~planloop.SQLiteStore`).
        lease_seconds: how long a run's lease lasts unless renewed (see
            :class:`~planloop.SQLiteStore`; default ``$PLANLOOP_LEASE_SECONDS``, else 30).
        heartbeat_seconds: how often a running run renews its lease (default a
            third of ``lease_seconds``).

    Raises:
        StoreError: psycopg is missing, the server cannot be reached or refuses the
            user, the database is missing, the user may not create or use the schema,
            or it holds something else (the message says which, and what to do).
        ValueError: ``heartbeat_seconds`` is not a positive number below ``lease_seconds``.

    Example:
        >>> from planloop.engine.store._postgres_schema import hide_password
        >>> hide_password("postgresql://me:s3cret@db.example:5432/runs")
        'postgresql://me:***@db.example:5432/runs'
        >>> store = PostgresStore("postgresql://me:s3cret@db.example/runs")  # doctest: +SKIP
        >>> store.location  # doctest: +SKIP
        'postgresql://me:***@db.example/runs'
    """

    def __init__(
        self,
        url: str,
        *,
        redactor: Redactor | None = None,
        lease_seconds: float | None = None,
        heartbeat_seconds: float | None = None,
    ) -> None:
        lease_seconds, heartbeat_seconds = lease_times(lease_seconds, heartbeat_seconds)
        backend = PostgresBackend(url)
        super().__init__(
            backend,
            redactor=redactor,
            lease_seconds=lease_seconds,
            heartbeat_seconds=heartbeat_seconds,
        )
        self.location = backend.location
