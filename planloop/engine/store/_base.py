"""What a store means, for every backend: :class:`BaseStore`, a :class:`Store` on a backend.

A run is stored as its record (:class:`RunRecord`), its events (append-only,
numbered from 0), a checkpoint after each transition saved in the same
transaction as the events before it, and the traces of its sub-agent runs.
:class:`BaseStore` checks the arguments, encodes and redacts what is written
(:class:`~planloop.engine.store._codec.Encoder`), decodes what is read, and
words every error; the backend only moves rows in and out of its database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from planloop.engine._json import valid_text
from planloop.engine.redact import Redactor, default_redactor
from planloop.engine.store._backend import SEQ_LIMIT, Backend, Lease, Refusal
from planloop.engine.store._codec import (
    Encoder,
    decode_checkpoint,
    decode_children,
    decode_events,
    decode_run,
)
from planloop.engine.store._lease import lease_times
from planloop.engine.store._protocol import Checkpoint, RunRecord
from planloop.engine.trace import Trace, TraceEvent
from planloop.errors import RunLocked, StoreError

__all__ = ["BaseStore"]


class BaseStore:
    """A :class:`Store` over a :class:`Backend`: the part of every store that is the same
    whatever the database.

    Args:
        backend: the database the runs are kept in.
        redactor: applied to every event, checkpoint and child trace before it
            is written; the process-wide
            :func:`~planloop.engine.redact.default_redactor` when omitted (see
            :func:`~planloop.register_secret`). Register secrets on it
            (``store.redactor.register(...)``).
        lease_seconds: how long a run's lease lasts unless renewed (default
            ``$PLANLOOP_LEASE_SECONDS``, else 30): a run whose process was killed
            is abandoned, and can be resumed, at most this long after its last
            renewal.
        heartbeat_seconds: how often a running run renews its lease (default a
            third of ``lease_seconds``); below ``lease_seconds``.

    A process running a run holds a lease on it (see
    :mod:`~planloop.engine.store._lease`): :meth:`create_run` with an ``owner``
    creates the run holding one, :meth:`take_lease` takes one for a resume,
    :meth:`renew_lease` keeps it alive, :meth:`release_lease` gives it up.

    Example:
        >>> import datetime, pathlib, tempfile
        >>> from planloop.engine.store import BaseStore, SQLiteBackend
        >>> backend = SQLiteBackend(pathlib.Path(tempfile.mkdtemp()) / "runs.db")
        >>> with BaseStore(backend) as store:
        ...     store.create_run("r1", name="demo", started_at=datetime.datetime.now())
        ...     store.save_checkpoint("r1", 0, {"state": "plan", "api_key": "sk-1"})
        ...     store.load_checkpoint("r1").state
        {'state': 'plan', 'api_key': '[redacted]'}
    """

    def __init__(
        self,
        backend: Backend,
        *,
        redactor: Redactor | None = None,
        lease_seconds: float | None = None,
        heartbeat_seconds: float | None = None,
    ) -> None:
        lease_seconds, heartbeat_seconds = lease_times(lease_seconds, heartbeat_seconds)
        self._backend = backend
        self._encoder = Encoder(redactor if redactor is not None else default_redactor())
        self._lease = timedelta(seconds=lease_seconds)
        self._heartbeat = float(heartbeat_seconds)

    @property
    def backend(self) -> Backend:
        """The database this store keeps its runs in."""
        return self._backend

    @property
    def redactor(self) -> Redactor:
        """What keeps secrets out of the store: applied to everything before it is written."""
        return self._encoder.redactor

    @redactor.setter
    def redactor(self, redactor: Redactor) -> None:
        self._encoder = Encoder(redactor)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._backend.closed

    # -- runs -------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        *,
        name: str,
        started_at: datetime,
        definition: str | None = None,
        definition_hash: str | None = None,
        owner: str | None = None,
    ) -> None:
        """Record a new run, status ``"running"``; held by ``owner``'s lease if given.

        A ``name`` or ``definition`` holding lone surrogates is stored with each
        replaced by U+FFFD (see :mod:`~planloop.engine.store._codec`).

        Raises:
            StoreError: a run with this id is already stored, or the id holds a
                lone surrogate (UTF-8 cannot hold it, so no run can be found by it).
        """
        if valid_text(run_id) != run_id:
            raise StoreError(
                f"run id {run_id!r} cannot be stored: it holds a lone surrogate, which"
                " UTF-8 cannot encode; pass a run_id of valid text (or none, for a fresh one)"
            )
        run = RunRecord(
            run_id=run_id,
            name=valid_text(name),
            status="running",
            stop_reason=None,
            iterations=0,
            started_at=started_at,
            ended_at=None,
            definition=None if definition is None else valid_text(definition),
            definition_hash=definition_hash,
        )
        if owner is not None:
            lease = self._new_lease(owner)
            run = replace(run, lease_owner=owner, last_seen=lease.seen, lease_expires=lease.expires)
        if not self._backend.insert_run(run):
            raise StoreError(
                f"run {run_id!r} already exists in {self._backend.location}; run ids must be"
                " unique: pass another run_id (or none, for a fresh one), or resume that run"
            )

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
        found = self._backend.finish_run(
            run_id,
            status=str(status),
            stop_reason=None if stop_reason is None else str(stop_reason),
            iterations=iterations,
            ended_at=ended_at,
        )
        if not found:
            raise self._unknown(run_id)

    def reopen_run(self, run_id: str) -> None:
        """Mark the run ``"running"`` again, with no end time (it is being resumed).

        Raises:
            StoreError: the run is unknown.
        """
        if not self._backend.reopen_run(run_id):
            raise self._unknown(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        """The run ``run_id``.

        Raises:
            StoreError: no such run (the message names it), or its row is corrupt.
        """
        row = self._backend.read_run(run_id)
        if row is None:
            raise self._unknown(run_id)
        return decode_run(row)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The ``limit`` most recently started runs, newest first."""
        return [decode_run(row) for row in self._backend.read_runs(limit)]

    def find_runs(self, prefix: str, limit: int = 10) -> list[RunRecord]:
        """At most ``limit`` runs whose id starts with ``prefix``, by id.

        What lets a person type the first characters of a run id: one run is the
        run meant, several are ambiguous. Case matters, and no character is a
        wildcard (``%``, ``_``, ``*`` and ``?`` are themselves).

        Example:
            >>> import datetime, pathlib, tempfile
            >>> from planloop.engine.store import SQLiteStore
            >>> with SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "runs.db") as store:
            ...     for run_id in ("3f2a91", "3f7c04", "b1e5d0"):
            ...         store.create_run(run_id, name="demo", started_at=datetime.datetime.now())
            ...     [run.run_id for run in store.find_runs("3f")], store.find_runs("3f7")[0].run_id
            (['3f2a91', '3f7c04'], '3f7c04')
        """
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        return [decode_run(row) for row in self._backend.read_runs_by_prefix(prefix, limit)]

    # -- leases -----------------------------------------------------------

    @property
    def lease_seconds(self) -> float:
        """How long a lease lasts unless renewed."""
        return self._lease.total_seconds()

    @property
    def heartbeat_seconds(self) -> float:
        """How often a running run renews its lease."""
        return self._heartbeat

    def take_lease(self, run_id: str, owner: str) -> None:
        """Make ``owner`` the run's lease holder, for :attr:`lease_seconds`, unless a
        live lease holds it (one atomic conditional write: of two processes taking
        it at once, exactly one succeeds).

        Raises:
            RunLocked: another lease on the run is alive (the error names its owner
                and when it expires).
            StoreError: the run is unknown.
        """
        now = datetime.now(UTC)
        if self._backend.take_lease(run_id, self._new_lease(owner, now), now=now):
            return
        record = self.get_run(run_id)  # raises for an unknown run
        raise RunLocked(run_id, owner=record.lease_owner, expires=record.lease_expires)

    def renew_lease(self, run_id: str, owner: str) -> bool:
        """Extend ``owner``'s lease by :attr:`lease_seconds` from now; ``False`` when
        ``owner`` no longer holds it."""
        return self._backend.renew_lease(run_id, self._new_lease(owner))

    def release_lease(self, run_id: str, owner: str) -> None:
        """Give up ``owner``'s lease, if it holds it (else nothing happens)."""
        self._backend.release_lease(run_id, owner, now=datetime.now(UTC))

    def _new_lease(self, owner: str, now: datetime | None = None) -> Lease:
        seen = datetime.now(UTC) if now is None else now
        return Lease(owner, seen, seen + self._lease)

    # -- events and checkpoints -------------------------------------------

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
        the same id (a step that ran again after a crash).

        Raises:
            StoreError: the run is unknown, or an event number is already taken
                (nothing was written).
        """
        if first_seq < 0:
            raise ValueError(f"first_seq must be >= 0, got {first_seq}")
        _check_seq(first_seq + len(events))
        encoder = self._encoder
        refused = self._backend.write(
            run_id,
            first_seq=first_seq,
            events=encoder.events(events),
            checkpoint=None if checkpoint is None else encoder.checkpoint(checkpoint),
            children=encoder.children(children) if children else (),
        )
        if refused is not None:
            raise self._refused(refused, run_id, first_seq, max(len(events), 1))

    def save_checkpoint(self, run_id: str, seq: int, state: Mapping[str, Any]) -> None:
        """Save ``state`` as the run's checkpoint after its first ``seq`` events.

        ``state`` is turned into JSON values (pydantic's rules; anything else is
        stored as its ``repr``) and redacted. Saving again at the same ``seq``
        replaces that checkpoint; earlier ones are kept.

        Raises:
            StoreError: the run is unknown.
        """
        _check_seq(seq)
        refused = self._backend.write(
            run_id,
            first_seq=seq,
            events=(),
            checkpoint=self._encoder.checkpoint(state),
            children=(),
        )
        if refused is not None:
            raise self._refused(refused, run_id, seq, 1)

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The run's latest checkpoint (highest ``seq``), or ``None`` if it has none.

        Raises:
            StoreError: the run is unknown, or the checkpoint is corrupt.
        """
        row = self._backend.read_checkpoint(run_id)
        if row is None:
            self._require(run_id)
            return None
        seq, body = row
        return decode_checkpoint(run_id, self._backend.location, seq, body)

    def load_trace(self, run_id: str) -> Trace:
        """The run's trace, rebuilt from its events, with its child traces.

        Raises:
            StoreError: the run is unknown, an event row is corrupt or does not
                validate, or an event is missing (the message names the run and
                the event number), or a child trace is corrupt (the message names
                the step). Other runs are unaffected.
        """
        rows = self._backend.read_trace(run_id)
        if not rows.events and not rows.children:
            self._require(run_id)
        location = self._backend.location
        return Trace(
            run_id=run_id,
            events=decode_events(run_id, location, rows.events),
            children=decode_children(run_id, location, rows.children),
        )

    # -- retention --------------------------------------------------------

    def prune(
        self,
        older_than: timedelta | float,
        *,
        statuses: Iterable[str] = ("finished", "stopped"),
        dry_run: bool = False,
    ) -> list[RunRecord]:
        """Delete the runs that ended more than ``older_than`` ago (a
        :class:`~datetime.timedelta`, or seconds) with one of ``statuses``, each
        with everything stored for it (events, checkpoints, child traces); the
        runs deleted, by id. With ``dry_run``, the runs that would be, deleting none.

        The runs go in one transaction: all of them or none. A run that is running
        or paused is never deleted (it has not ended, or waits to be resumed), nor
        one resumed by another process while this one prunes. The database keeps
        the space it freed for new runs; ``sqlite3 FILE VACUUM`` gives a SQLite
        file's back to the disk.

        Raises:
            ValueError: ``older_than`` is negative, or ``statuses`` is empty or
                holds ``"running"`` or ``"paused"``.
            StoreError: the database failed the deletes (none was made).

        Example:
            >>> import datetime, pathlib, tempfile
            >>> from planloop.engine.store import SQLiteStore
            >>> now = datetime.datetime.now(datetime.UTC)
            >>> with SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "runs.db") as store:
            ...     for run_id, days in (("old", 40), ("new", 1)):
            ...         ended = now - datetime.timedelta(days=days)
            ...         store.create_run(run_id, name="demo", started_at=ended)
            ...         store.finish_run(run_id, status="finished", stop_reason=None,
            ...                          iterations=1, ended_at=ended)
            ...     [run.run_id for run in store.prune(datetime.timedelta(days=30))]
            ...     [run.run_id for run in store.list_runs()]
            ['old']
            ['new']
        """
        age = older_than if isinstance(older_than, timedelta) else timedelta(seconds=older_than)
        if age < timedelta(0):
            raise ValueError(f"older_than must not be negative, got {older_than!r}")
        chosen = [statuses] if isinstance(statuses, str) else list(statuses)
        if not chosen:
            raise ValueError("statuses is empty: give the statuses of the runs to delete")
        for status in chosen:
            if status in _NEVER_PRUNED:
                raise ValueError(
                    f"runs that are {status} are never pruned ({_NEVER_PRUNED[status]});"
                    " give statuses of runs that ended, such as 'finished' and 'stopped'"
                )
        try:
            ended_before = datetime.now(UTC) - age
        except OverflowError:  # before the year 1: no run ended that long ago
            ended_before = datetime.min.replace(tzinfo=UTC)
        rows = self._backend.prune_runs(
            [str(status) for status in chosen], ended_before, delete=not dry_run
        )
        return [decode_run(row) for row in rows]

    # -- lifetime ---------------------------------------------------------

    def close(self) -> None:
        """Release the backend's database (idempotent); using the store afterwards is an error."""
        self._backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<{type(self).__name__} {self._backend.location!r}{state}>"

    # -- errors -----------------------------------------------------------

    def _require(self, run_id: str) -> None:
        if self._backend.read_run(run_id) is None:
            raise self._unknown(run_id)

    def _unknown(self, run_id: str) -> StoreError:
        return StoreError(
            f"no run {run_id!r} in the store {self._backend.location};"
            " `planloop runs` lists the stored runs"
        )

    def _refused(self, refusal: Refusal, run_id: str, first: int, count: int) -> StoreError:
        if refusal is Refusal.unknown_run:
            return self._unknown(run_id)
        span = f"seq {first}" if count == 1 else f"seqs {first}..{first + count - 1}"
        return StoreError(
            f"run {run_id!r} in {self._backend.location}: an event in {span} is already"
            " stored; events are append-only (nothing was written)"
        )


_NEVER_PRUNED = {
    "running": "it has not ended",
    "paused": "it waits for a decision, to be resumed",
}


def _check_seq(seq: int) -> None:
    if not 0 <= seq < SEQ_LIMIT:
        raise ValueError(f"event and checkpoint numbers are from 0 to 2**32 - 1, got {seq}")
