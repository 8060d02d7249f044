"""How a database keeps runs: the :class:`Backend` interface a store is built on.

A backend moves rows that are already encoded and redacted (JSON text) in and
out of one database. Everything else a store means — argument checks, turning
events and checkpoints into JSON and back, redaction, the error messages — is
:class:`~planloop.engine.store.BaseStore`'s, written once for every backend.
The conformance tests (``tests/engine/test_store_conformance.py`` and
``test_store_conformance_runs.py``) hold every backend to the same behaviour.

A new database takes three things: a class with the methods of :class:`Backend`
(its own schema, connections and SQL, and nothing else), a store that is a
:class:`~planloop.engine.store.BaseStore` over it (as
:class:`~planloop.engine.store.SQLiteStore` is over
:class:`~planloop.engine.store.SQLiteBackend`), and a harness in
``tests/engine/_store_harness.py`` that opens it for the conformance tests.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from planloop.engine.store._protocol import RunRecord
from planloop.errors import StoreError

__all__ = [
    "SEQ_LIMIT",
    "Backend",
    "ChildRow",
    "EventRow",
    "Lease",
    "Refusal",
    "RunRow",
    "TraceRows",
    "cannot_read",
    "cannot_write",
    "store_closed",
]

SEQ_LIMIT = 1 << 32
"""Event and checkpoint numbers are below this (a store refuses others before writing)."""

EventRow = tuple[str, str]
"""An event as a backend stores it: its ``kind`` and its JSON body."""

ChildRow = tuple[str, str]
"""A sub-run's trace as a backend stores it: the id of the step that ran it, and its JSON."""

RunRow = Sequence[Any]
"""A run as a backend reads it back: the fields of :class:`RunRecord`, in their order
(the lease's three last); the times as :class:`~datetime.datetime` or ISO 8601 text."""


class Lease(NamedTuple):
    """A process's hold on a run, as a backend writes it.

    Example:
        >>> from datetime import UTC, datetime, timedelta
        >>> now = datetime(2026, 1, 1, tzinfo=UTC)
        >>> Lease("box:4242:9f1c", now, now + timedelta(seconds=30)).expires.second
        30
    """

    owner: str
    """Who holds it: ``host:pid:random``, unique to one execution of the run."""
    seen: datetime
    """When it was taken or last renewed (UTC)."""
    expires: datetime
    """When it runs out unless renewed (UTC)."""


class TraceRows(NamedTuple):
    """What a backend reads back for a run's trace."""

    events: list[tuple[int, str]]
    """``(seq, body)`` of each event, by ``seq``."""
    children: list[ChildRow]
    """The child traces, in the order they were last stored."""


class Refusal(enum.StrEnum):
    """Why a backend wrote nothing of a batch."""

    unknown_run = "unknown_run"
    """No run has the id."""
    overlap = "overlap"
    """An event number of the batch is already stored."""


class Backend(Protocol):
    """One database of runs, as :class:`~planloop.engine.store.BaseStore` uses it.

    Every method may be called from any thread, at the same time as others on
    the same backend; and other backends (other processes) may use the same
    database at once. A method either does all it says or nothing. A failure of
    the database itself (it cannot be reached, the disk is full, the backend is
    closed) raises :class:`~planloop.errors.StoreError` made by
    :func:`cannot_read`, :func:`cannot_write` or :func:`store_closed`; the
    outcomes a store expects (an unknown run, an event already stored) are
    return values, and the store words the error. Once a write returns, what it
    wrote survives the process being killed.

    A run's rows are its events, numbered from 0 (``seq``) and never changed
    once stored; its checkpoints, each after a number of events, the latest
    (highest number) being the one read back; and its child traces, one per
    step id. Arguments are checked before a backend sees them: ``run_id`` is a
    string, every number is from 0 to ``SEQ_LIMIT - 1``, bodies are JSON text.
    """

    @property
    def location(self) -> str:
        """The database as messages name it: a file path, or a URL without its password."""
        ...

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        ...

    def insert_run(self, run: RunRecord) -> bool:
        """Store a new run, with its lease if it has one (``run.lease_owner``);
        ``False`` (nothing written) when a run has its id already.

        Of two backends inserting the same id at once, exactly one succeeds.
        """
        ...

    def write(
        self,
        run_id: str,
        *,
        first_seq: int,
        events: Sequence[EventRow],
        checkpoint: str | None,
        children: Sequence[ChildRow],
    ) -> Refusal | None:
        """Store a batch of the run's rows in one transaction; ``None`` when written.

        ``events`` are numbered ``first_seq, first_seq + 1, ...``. ``checkpoint``,
        if given, is the checkpoint after the first ``first_seq + len(events)``
        events, replacing one already stored at that number. Each of
        ``children`` replaces the run's child trace of the same step id and
        comes last in their order.

        The batch is written whole or not at all: if one of its event numbers
        is taken, nothing is written and the result is ``Refusal.overlap``,
        even when another writer stored that number an instant before. A run
        that does not exist gives ``Refusal.unknown_run``, for an empty batch
        too.
        """
        ...

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        stop_reason: str | None,
        iterations: int,
        ended_at: datetime,
    ) -> bool:
        """Set how the run ended; ``False`` when there is no such run."""
        ...

    def reopen_run(self, run_id: str) -> bool:
        """Set the run's status to ``"running"`` and clear its end time (its stop reason
        and iterations stay); ``False`` when there is no such run."""
        ...

    # A run's lease: which process runs it, and until when (see BaseStore). Every
    # lease method is one conditional write, atomic against other processes.

    def take_lease(self, run_id: str, lease: Lease, *, now: datetime) -> bool:
        """Give the run to ``lease`` if no live lease holds it: none was taken, it was
        released, or it expired at or before ``now``. ``False`` (nothing written)
        when another lease is alive, or there is no such run.

        One conditional update: of two backends taking the same run's lease at
        once, exactly one gets ``True``.
        """
        ...

    def renew_lease(self, run_id: str, lease: Lease) -> bool:
        """Move the lease's last-seen and expiry times on, if ``lease.owner`` still
        holds it; ``False`` (nothing written) when it does not."""
        ...

    def release_lease(self, run_id: str, owner: str, *, now: datetime) -> bool:
        """Give the lease up if ``owner`` holds it: no owner, last seen and expired at
        ``now``; ``False`` (nothing written) when ``owner`` does not hold it."""
        ...

    def read_run(self, run_id: str) -> RunRow | None:
        """The run's row, or ``None`` when there is no such run."""
        ...

    def read_runs(self, limit: int) -> list[RunRow]:
        """The ``limit`` runs started last, newest first; of runs started at the same
        time, the one stored last comes first."""
        ...

    def read_runs_by_prefix(self, prefix: str, limit: int) -> list[RunRow]:
        """At most ``limit`` runs whose id starts with ``prefix`` (case-sensitive;
        no character is a wildcard), by id: a search of an index of the ids where
        the database has one, not a scan of every run."""
        ...

    def read_trace(self, run_id: str) -> TraceRows:
        """The run's events and child traces as of one moment (empty for an unknown run)."""
        ...

    def read_checkpoint(self, run_id: str) -> tuple[int, str] | None:
        """``(seq, body)`` of the run's checkpoint with the highest ``seq``, or ``None``
        when it has none (or there is no such run)."""
        ...

    def prune_runs(
        self, statuses: Sequence[str], ended_before: datetime, *, delete: bool
    ) -> list[RunRow]:
        """The runs whose status is one of ``statuses`` and whose end time is before
        ``ended_before`` (a time with a time zone; a stored end time without one
        counts as UTC), by id; with ``delete``, they are deleted too, with all their
        rows (events, checkpoints, child traces).

        ``statuses`` never holds ``"running"`` or ``"paused"``. The runs are chosen
        and deleted in one transaction, all or none of them, that no other writer
        comes into: a run another backend reopened (marked running) before it
        committed is not chosen, and it cannot be reopened in the middle.
        """
        ...

    def close(self) -> None:
        """Release the database (idempotent); every other method then raises
        :func:`store_closed`'s error."""
        ...


def cannot_read(location: str, error: BaseException) -> StoreError:
    """The error of a read that the database failed."""
    return StoreError(f"cannot read the store {location}: {error}")


def cannot_write(location: str, error: BaseException) -> StoreError:
    """The error of a write that the database failed (nothing was written)."""
    return StoreError(f"cannot write to the store {location}: {error}")


def store_closed(location: str) -> StoreError:
    """The error of using a backend after :meth:`Backend.close`."""
    return StoreError(f"the store {location} is closed")
