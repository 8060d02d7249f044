"""Leases: which process is running a stored run, kept alive while it runs.

A process that runs a run (starts it, or resumes it) holds a *lease* on it in
the store: an owner id (:func:`new_owner`: host, process id and a random part),
when it was last seen, and when it expires. A :class:`Heartbeat` renews it every
``heartbeat_seconds`` for ``lease_seconds`` more, from a daemon thread (one for
all the process's runs), so an event loop blocked by a long synchronous call
does not let the lease lapse. When the run ends, pauses, fails or is cancelled
the lease is released.
A process that is killed stops renewing: its lease expires, and the run, still
``running`` in the store, is *abandoned* (:attr:`~planloop.engine.store.RunRecord.state`).

Resuming takes the lease first (:meth:`Leasing.take_lease`, one conditional
update): a run whose lease is alive raises :class:`~planloop.errors.RunLocked`,
and of two processes resuming an abandoned run at once exactly one gets it.

A store has leases when it has the methods of :class:`Leasing`
(:class:`~planloop.engine.store.BaseStore` does, over any backend); a run on a
store without them takes none.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "LEASE_ENV",
    "LEASE_SECONDS",
    "Heartbeat",
    "Leasing",
    "holding",
    "lease_times",
    "new_owner",
]

LEASE_SECONDS = 30.0
"""How long a lease lasts unless renewed, by default: a killed run is abandoned this
long after its last renewal at most. ``PLANLOOP_LEASE_SECONDS`` sets another default."""

LEASE_ENV = "PLANLOOP_LEASE_SECONDS"

_log = logging.getLogger("planloop.store")


def lease_times(
    lease_seconds: float | None, heartbeat_seconds: float | None
) -> tuple[float, float]:
    """How long a store's leases last and how often they are renewed: ``lease_seconds``,
    else ``$PLANLOOP_LEASE_SECONDS``, else :data:`LEASE_SECONDS`; ``heartbeat_seconds``,
    else a third of the lease (10 s by default).

    Raises:
        ValueError: a time is not a positive number, or the heartbeat is not below
            the lease (the message names the setting).

    Example:
        >>> lease_times(None, None) if LEASE_ENV not in os.environ else (30.0, 10.0)
        (30.0, 10.0)
        >>> lease_times(1.5, 0.5)
        (1.5, 0.5)
    """
    if lease_seconds is None:
        given = os.environ.get(LEASE_ENV, "").strip()
        try:
            lease_seconds = float(given) if given else LEASE_SECONDS
        except ValueError:
            raise ValueError(
                f"{LEASE_ENV}={given!r}; set it to a number of seconds (default 30)"
            ) from None
        what = LEASE_ENV
    else:
        what = "lease_seconds"
    if heartbeat_seconds is None:
        heartbeat_seconds = lease_seconds / 3
    for name, value in ((what, lease_seconds), ("heartbeat_seconds", heartbeat_seconds)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name}={value!r}; give a positive number of seconds")
    if heartbeat_seconds >= lease_seconds:
        raise ValueError(
            f"heartbeat_seconds={heartbeat_seconds!r} is not below {what}={lease_seconds!r}:"
            " a lease would expire before it is renewed; renew it a few times per lease"
            " (by default every third of it)"
        )
    return float(lease_seconds), float(heartbeat_seconds)


def new_owner() -> str:
    """An owner id for one execution of a run: ``host:pid:random``.

    Example:
        >>> owner = new_owner()
        >>> host, pid, part = owner.rsplit(":", 2)
        >>> int(pid) == os.getpid(), len(part)
        (True, 8)
    """
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@runtime_checkable
class Leasing(Protocol):
    """A store that keeps leases (:class:`~planloop.engine.store.BaseStore` does)."""

    @property
    def heartbeat_seconds(self) -> float: ...

    @property
    def closed(self) -> bool: ...

    def create_run(
        self,
        run_id: str,
        *,
        name: str,
        started_at: datetime,
        definition: str | None = None,
        definition_hash: str | None = None,
        owner: str | None = None,
    ) -> None: ...

    def take_lease(self, run_id: str, owner: str) -> None: ...

    def renew_lease(self, run_id: str, owner: str) -> bool: ...

    def release_lease(self, run_id: str, owner: str) -> None: ...


class Heartbeat:
    """Renews ``owner``'s lease on ``run_id`` every ``heartbeat_seconds`` until :meth:`stop`.

    The renewals are made by the process's one heartbeat thread (:class:`_Beats`),
    however many runs it holds, so a thousand runs at once cost one thread, not a
    thousand. A renewal that fails (the database is locked for long, the disk is
    full) is logged on the ``planloop.store`` logger and tried again at the next
    beat; it never stops or fails the run. A lease found held by another process
    (this one's expired, and it took it) is logged and no longer renewed.
    """

    def __init__(self, store: Leasing, run_id: str, owner: str) -> None:
        self.store, self._run_id, self._owner = store, run_id, owner
        self.due = time.monotonic() + store.heartbeat_seconds
        self._stopped = False
        _BEATS.add(self)

    def beat(self) -> bool:
        """Renew the lease once, on the heartbeat thread; whether to go on renewing it."""
        store, run_id, owner = self.store, self._run_id, self._owner
        self.due = time.monotonic() + store.heartbeat_seconds
        try:
            if store.renew_lease(run_id, owner):
                return True
        except Exception:  # noqa: BLE001 - a renewal error must never touch the run
            if store.closed:
                return False
            _log.warning("run %r: could not renew its lease", run_id, exc_info=True)
            return True
        if not self._stopped:  # renewed after stop(): the release came first, as it should
            _log.warning(
                "run %r: its lease is no longer held by this process (%s); another"
                " process may have resumed it",
                run_id,
                owner,
            )
        return False

    def stop(self) -> None:
        """Stop renewing and release the lease (an error is logged, never raised)."""
        self._stopped = True
        _BEATS.discard(self)
        try:
            self.store.release_lease(self._run_id, self._owner)
        except Exception:  # noqa: BLE001 - the run is over; its lease expires by itself
            _log.warning("run %r: could not release its lease", self._run_id, exc_info=True)


class _Beats:
    """The process's heartbeat thread and the leases it renews, each when it is due.

    The thread starts with the first lease held (again after a fork, which keeps
    no threads) and then waits for the next one due, or for a new lease.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held: set[Heartbeat] = set()
        self._thread: threading.Thread | None = None

    def add(self, heartbeat: Heartbeat) -> None:
        with self._changed:
            self._held.add(heartbeat)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="planloop-leases", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def discard(self, heartbeat: Heartbeat) -> None:
        with self._changed:
            self._held.discard(heartbeat)

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [h for h in self._held if h.due <= now]
                if not due:
                    nearest = min((h.due for h in self._held), default=None)
                    self._changed.wait(None if nearest is None else nearest - now)
                    continue
            for heartbeat in due:  # renewed outside the lock: a slow store holds up no run
                if not heartbeat.beat():
                    self.discard(heartbeat)


_BEATS = _Beats()


@contextmanager
def holding(store: object, run_id: str, owner: str | None, *, take: bool) -> Iterator[None]:
    """Hold ``owner``'s lease on ``run_id`` for the block: taken first when ``take``
    (else the run was created holding it), renewed while the block runs, released
    when it ends however it ends. Nothing happens when ``owner`` is ``None`` or
    ``store`` keeps no leases.

    Raises:
        RunLocked: ``take`` and another process holds a live lease on the run.
    """
    if owner is None or not isinstance(store, Leasing):
        yield
        return
    if take:
        store.take_lease(run_id, owner)
    heartbeat = Heartbeat(store, run_id, owner)
    try:
        yield
    finally:
        heartbeat.stop()
