"""A store backend in memory: the Backend interface at its plainest, for the conformance tests.

It shows that a backend needs nothing of planloop's store but rows of text, and it
runs the conformance tests beside SQLite, so a test that holds for one database
only (its layout, its error texts) shows up as a failure here.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from planloop.engine.store import (
    ChildRow,
    EventRow,
    Lease,
    Refusal,
    RunRecord,
    RunRow,
    TraceRows,
    store_closed,
)


@dataclass
class MemoryRuns:
    """The database: what several backends (stores) over it share."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    runs: dict[str, list[object]] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    events: dict[str, dict[int, EventRow]] = field(default_factory=dict)
    checkpoints: dict[str, dict[int, str]] = field(default_factory=dict)
    children: dict[str, dict[str, str]] = field(default_factory=dict)
    numbers: itertools.count[int] = field(default_factory=itertools.count)


class MemoryBackend:
    """A :class:`~planloop.engine.store.Backend` over a :class:`MemoryRuns`."""

    def __init__(self, db: MemoryRuns) -> None:
        self.db = db
        self._closed = False

    @property
    def location(self) -> str:
        return "memory"

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True

    def _open(self) -> MemoryRuns:
        if self._closed:
            raise store_closed(self.location)
        return self.db

    def insert_run(self, run: RunRecord) -> bool:
        db = self._open()
        with db.lock:
            if run.run_id in db.runs:
                return False
            db.runs[run.run_id] = [
                run.run_id,
                run.name,
                run.status,
                run.stop_reason,
                run.iterations,
                run.started_at,
                run.ended_at,
                run.definition,
                run.definition_hash,
                run.lease_owner,
                run.last_seen,
                run.lease_expires,
            ]
            db.created[run.run_id] = next(db.numbers)
            db.events[run.run_id], db.checkpoints[run.run_id] = {}, {}
            db.children[run.run_id] = {}
        return True

    def write(
        self,
        run_id: str,
        *,
        first_seq: int,
        events: Sequence[EventRow],
        checkpoint: str | None,
        children: Sequence[ChildRow],
    ) -> Refusal | None:
        db = self._open()
        with db.lock:
            if run_id not in db.runs:
                return Refusal.unknown_run
            stored = db.events[run_id]
            numbers = range(first_seq, first_seq + len(events))
            if any(seq in stored for seq in numbers):
                return Refusal.overlap
            stored.update(zip(numbers, events, strict=True))
            if checkpoint is not None:
                db.checkpoints[run_id][first_seq + len(events)] = checkpoint
            kept = db.children[run_id]
            for name, body in children:
                kept.pop(name, None)  # comes last in the order
                kept[name] = body
        return None

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        stop_reason: str | None,
        iterations: int,
        ended_at: datetime,
    ) -> bool:
        db = self._open()
        with db.lock:
            row = db.runs.get(run_id)
            if row is None:
                return False
            row[2:5], row[6] = [status, stop_reason, iterations], ended_at
        return True

    def reopen_run(self, run_id: str) -> bool:
        db = self._open()
        with db.lock:
            row = db.runs.get(run_id)
            if row is None:
                return False
            row[2], row[6] = "running", None
        return True

    # The row's last three fields are the lease: owner, last seen, expires.

    def take_lease(self, run_id: str, lease: Lease, *, now: datetime) -> bool:
        db = self._open()
        with db.lock:
            row = db.runs.get(run_id)
            if row is None:
                return False
            expires = row[11]
            if row[9] is not None and isinstance(expires, datetime) and expires > now:
                return False
            row[9:12] = [lease.owner, lease.seen, lease.expires]
        return True

    def renew_lease(self, run_id: str, lease: Lease) -> bool:
        db = self._open()
        with db.lock:
            row = db.runs.get(run_id)
            if row is None or row[9] != lease.owner:
                return False
            row[10:12] = [lease.seen, lease.expires]
        return True

    def release_lease(self, run_id: str, owner: str, *, now: datetime) -> bool:
        db = self._open()
        with db.lock:
            row = db.runs.get(run_id)
            if row is None or row[9] != owner:
                return False
            row[9:12] = [None, now, now]
        return True

    def read_run(self, run_id: str) -> RunRow | None:
        db = self._open()
        with db.lock:
            row = db.runs.get(run_id)
            return None if row is None else tuple(row)

    def read_runs(self, limit: int) -> list[RunRow]:
        db = self._open()
        with db.lock:
            rows = [tuple(row) for row in db.runs.values()]
            created = dict(db.created)
        rows.sort(key=lambda row: (row[5], created[str(row[0])]), reverse=True)
        return rows[:limit]

    def read_runs_by_prefix(self, prefix: str, limit: int) -> list[RunRow]:
        db = self._open()
        with db.lock:
            rows = [tuple(row) for run_id, row in db.runs.items() if run_id.startswith(prefix)]
        return sorted(rows, key=lambda row: str(row[0]))[:limit]

    def read_trace(self, run_id: str) -> TraceRows:
        db = self._open()
        with db.lock:
            events = sorted(db.events.get(run_id, {}).items())
            children = list(db.children.get(run_id, {}).items())
        return TraceRows([(seq, body) for seq, (_, body) in events], children)

    def read_checkpoint(self, run_id: str) -> tuple[int, str] | None:
        db = self._open()
        with db.lock:
            checkpoints = db.checkpoints.get(run_id)
            if not checkpoints:
                return None
            seq = max(checkpoints)
            return seq, checkpoints[seq]

    def prune_runs(
        self, statuses: Sequence[str], ended_before: datetime, *, delete: bool
    ) -> list[RunRow]:
        db = self._open()
        with db.lock:  # chosen and deleted under one lock: none reopened in between
            chosen = sorted(
                run_id
                for run_id, row in db.runs.items()
                if row[2] in statuses and _ended_before(row[6], ended_before)
            )
            rows = [tuple(db.runs[run_id]) for run_id in chosen]
            if delete:
                for run_id in chosen:
                    for table in (db.runs, db.created, db.events, db.checkpoints, db.children):
                        del table[run_id]
        return rows


def _ended_before(ended: object, limit: datetime) -> bool:
    """Whether ``ended`` (a run's end time, ``None`` if it has not ended) is before
    ``limit``; a time without a time zone is UTC."""
    if not isinstance(ended, datetime):
        return False
    return (ended if ended.tzinfo is not None else ended.replace(tzinfo=UTC)) < limit
