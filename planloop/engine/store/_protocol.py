"""What the engine sees of a store: the :class:`Store` protocol and the records it returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from planloop.engine.trace import Trace, TraceEvent

__all__ = ["Checkpoint", "RunRecord", "Store"]


@dataclass(frozen=True)
class RunRecord:
    """A stored run: what it is, and how far it got.

    ``status`` is ``"running"`` until :meth:`Store.finish_run` records how the run
    ended (a :class:`~planloop.RunStatus` value, or whatever status the runner
    chose, such as ``"paused"``).

    A process running the run holds a *lease* on it (see
    :class:`~planloop.engine.store.BaseStore`): ``lease_owner`` names it (host,
    process id, a random part), ``last_seen`` is when it last renewed the lease
    and ``lease_expires`` when the lease runs out unless renewed again. A run
    that ends or pauses gives its lease back. ``status`` stays ``"running"``
    whether its process is alive or was killed; :attr:`state` tells them apart:
    ``"abandoned"`` for a running run whose lease expired (its process is gone:
    resume it), else ``status``. A run recorded without a lease (by a store that
    has none) has no lease fields and its state is its status.

    Example:
        >>> from datetime import datetime
        >>> run = RunRecord(run_id="r1", name="demo", status="finished", stop_reason=None,
        ...                 iterations=2, started_at=datetime(2026, 1, 1, 12, 0, 0),
        ...                 ended_at=datetime(2026, 1, 1, 12, 0, 30), definition=None,
        ...                 definition_hash=None)
        >>> run.duration
        30.0
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
    lease_owner: str | None = None
    """The process holding the run's lease (``host:pid:random``), or ``None``."""
    last_seen: datetime | None = None
    """When the run's process last took or renewed its lease (UTC)."""
    lease_expires: datetime | None = None
    """When the lease runs out unless renewed (UTC); ``None``: the run never had one."""

    @property
    def abandoned(self) -> bool:
        """Whether the run says ``running`` but its lease expired: its process is gone.

        Example:
            >>> from datetime import UTC, datetime
            >>> run = RunRecord(run_id="r1", name="demo", status="running", stop_reason=None,
            ...                 iterations=0, started_at=datetime(2026, 1, 1, tzinfo=UTC),
            ...                 ended_at=None, definition=None, definition_hash=None,
            ...                 lease_owner=None, last_seen=datetime(2026, 1, 1, tzinfo=UTC),
            ...                 lease_expires=datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))
            >>> run.abandoned, run.state
            (True, 'abandoned')
        """
        expires = self.lease_expires
        if self.status != "running" or expires is None:
            return False
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return expires <= datetime.now(UTC)

    @property
    def state(self) -> str:
        """``"abandoned"`` for an :attr:`abandoned` run, else :attr:`status`."""
        return "abandoned" if self.abandoned else self.status

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

    Example:
        >>> Checkpoint(run_id="r1", seq=3, state={"state": "act"}).state["state"]
        'act'
    """

    run_id: str
    seq: int
    state: dict[str, Any]


@runtime_checkable
class Store(Protocol):
    """What a run needs to be recorded, listed and resumed.

    :class:`~planloop.SQLiteStore` is the default; give an ``Agent``, ``Workflow``
    or ``PlanAndExecute`` any object with these methods as ``store=``. A new
    database need not implement all of this:
    :class:`~planloop.engine.store.BaseStore` does, over the few methods of a
    :class:`~planloop.engine.store.Backend`.

    What every store promises (the conformance tests hold each backend to it):

    * A run is a record (:class:`RunRecord`), its events numbered from 0 and
      never changed once stored, a checkpoint after a number of events (the one
      with the highest number is the run's), and the traces of its sub-agent
      runs by step id.
    * Every write is atomic: all it was given is stored, or nothing is. Once it
      returns, what it wrote survives the process being killed.
    * Nothing is written before it is redacted by the store's
      :class:`~planloop.engine.redact.Redactor`: values under keys that look
      secret, and registered secret values, never reach the database.
    * A paused run (waiting for an approval) is one whose status is
      ``"paused"`` and whose latest checkpoint says what it waits for;
      :meth:`reopen_run` marks it running again when it is resumed.
    * Stores on the same database (other threads, other processes) see each
      other's writes; of two writing the same event numbers or creating the
      same run, exactly one succeeds.
    * A store may keep *leases* (:class:`~planloop.engine.store.BaseStore`
      does): the process running a run holds one, renewed while it runs, so a
      run whose process died is told apart (:attr:`RunRecord.state` is
      ``"abandoned"``) and two processes never resume the same run at once. A
      store without the lease methods records runs without leases.
    * Failures raise :class:`~planloop.errors.StoreError` with a message that
      names the run and the database; numbers out of range raise ``ValueError``.

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
        """Record a new run: status ``"running"``, no stop reason, 0 iterations, no end.

        Raises:
            StoreError: a run with this id is already stored.
        """
        ...

    def append_events(self, run_id: str, events: Sequence[TraceEvent], *, first_seq: int) -> None:
        """Append ``events`` as numbers ``first_seq, first_seq + 1, ...``; all or none.

        Raises:
            StoreError: the run is unknown, or a number is already stored
                (events are append-only; nothing was written).
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
        in one transaction.

        This is the write a run makes before each state whose handler may have
        effects, so it is the one whose cost a run pays per transition. Runs
        pass ``children`` only when they have some.

        Raises:
            StoreError: the run is unknown, or an event number is already
                stored (nothing was written).
        """
        ...

    def save_checkpoint(self, run_id: str, seq: int, state: Mapping[str, Any]) -> None:
        """Save ``state`` as the checkpoint after the run's first ``seq`` events,
        replacing one saved at the same ``seq``.

        ``state`` is stored as JSON values (values that are not JSON become text).

        Raises:
            StoreError: the run is unknown.
        """
        ...

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The checkpoint with the highest ``seq``, or ``None`` if there is none.

        Raises:
            StoreError: the run is unknown, or its checkpoint is corrupt.
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
    ) -> None:
        """Record how the run ended, or that it paused (``status="paused"``).

        Raises:
            StoreError: the run is unknown.
        """
        ...

    def reopen_run(self, run_id: str) -> None:
        """Mark a paused or interrupted run ``"running"`` again, with no end time
        (it is being resumed); its stop reason and iterations stay.

        Raises:
            StoreError: the run is unknown.
        """
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The run ``run_id``.

        Raises:
            StoreError: the run is unknown (the message names it).
        """
        ...

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The ``limit`` most recently started runs, newest first (of runs started
        at the same time, the one created last first)."""
        ...

    def load_trace(self, run_id: str) -> Trace:
        """The run's trace, rebuilt from its events, with its child traces.

        Raises:
            StoreError: the run is unknown, or an event or child trace is missing
                or corrupt (the message names the run and the event or step).
        """
        ...

    def close(self) -> None:
        """Release the store's resources (idempotent); using it afterwards raises
        :class:`~planloop.errors.StoreError`."""
        ...
