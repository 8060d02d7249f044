"""The databases the store conformance tests run against, and what the tests record.

A harness opens stores on one database of its own and can reach past the store
into it: count the rows a run has, and damage them, the way a failing disk or a
careless hand would. A new backend joins the conformance tests by adding a
harness to ``HARNESSES``: a function of the test's fixture request, so that a
backend with a server can ask for a fixture that starts it once per session.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest

from planloop import Agent, Trace
from planloop.engine import Redactor
from planloop.engine.store import BaseStore, PostgresStore, SQLiteStore, Store
from planloop.engine.trace import Transitioned
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from tests.engine._memory_backend import MemoryBackend, MemoryRuns

T0 = datetime(2026, 1, 1, 12, 0, 0)


def add(a: int, b: int) -> int:
    """Add."""
    return a + b


def sample() -> Trace:
    """A real run's trace: two acts, then an answer."""
    model = ScriptedModel(
        [ToolCall("add", {"a": 1, "b": 2}), ToolCall("add", {"a": 3, "b": 4}), "3 and 7"]
    )
    return Agent(model, [add], store=False).run_sync({"question": "1+2, 3+4", "n": [1, 2]}).trace


def record(store: Store, run_id: str, trace: Trace, *, start: datetime = T0) -> None:
    """Record ``trace`` the way a run will: event by event, a checkpoint per transition."""
    store.create_run(run_id, name="sample", started_at=start, definition="f.py:agent")
    for seq, event in enumerate(trace.events):
        store.append_events(run_id, [event], first_seq=seq)
        if isinstance(event, Transitioned):
            store.save_checkpoint(run_id, seq + 1, {"state": event.target, "seq": seq})
    store.finish_run(
        run_id, status="finished", stop_reason=None, iterations=trace.iterations, ended_at=start
    )


class Harness(Protocol):
    """One database of a backend, for a test."""

    def open(self, *, redactor: Redactor | None = None) -> BaseStore:
        """A new store on the database (another connection, as another process would)."""
        ...

    def store_option(self) -> str | None:
        """What another process passes as ``store=`` to reach the database, or
        ``None`` when no other process can (a database inside this one)."""
        ...

    def counts(self) -> dict[str, tuple[int, int]]:
        """The events and checkpoints stored for each run that has any."""
        ...

    def set_event(self, run_id: str, seq: int, body: str) -> None:
        """Overwrite the body of the run's event ``seq``."""
        ...

    def drop_event(self, run_id: str, seq: int) -> None:
        """Delete the run's event ``seq``."""
        ...

    def set_checkpoint(self, run_id: str, seq: int, body: str) -> None:
        """Overwrite the body of the run's checkpoint at ``seq``."""
        ...

    def set_child(self, run_id: str, name: str, body: str) -> None:
        """Overwrite the body of the run's child trace of step ``name``."""
        ...


CHECKPOINT = "_checkpoint"  # the kind of a checkpoint's row in SQLite's events table


class SQLiteHarness:
    """A SQLite file in the test's directory."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "s.db"

    def open(self, *, redactor: Redactor | None = None) -> BaseStore:
        return SQLiteStore(self.path, redactor=redactor)

    def store_option(self) -> str:
        return str(self.path)

    def _change(self, sql: str, *params: object) -> None:
        conn = sqlite3.connect(self.path)
        with conn:
            assert conn.execute(sql, params).rowcount == 1
        conn.close()

    def counts(self) -> dict[str, tuple[int, int]]:
        conn = sqlite3.connect(self.path)
        rows = conn.execute(
            "SELECT run_id, sum(kind != ?), sum(kind = ?) FROM events GROUP BY run_id",
            (CHECKPOINT, CHECKPOINT),
        ).fetchall()
        conn.close()
        return {run_id: (events, checkpoints) for run_id, events, checkpoints in rows}

    def set_event(self, run_id: str, seq: int, body: str) -> None:
        where = "run_id = ? AND seq = ? AND kind != ?"
        self._change(f"UPDATE events SET body = ? WHERE {where}", body, run_id, seq, CHECKPOINT)

    def drop_event(self, run_id: str, seq: int) -> None:
        where = "run_id = ? AND seq = ? AND kind != ?"
        self._change(f"DELETE FROM events WHERE {where}", run_id, seq, CHECKPOINT)

    def set_checkpoint(self, run_id: str, seq: int, body: str) -> None:
        where = "run_id = ? AND seq = ? AND kind = ?"
        self._change(f"UPDATE events SET body = ? WHERE {where}", body, run_id, seq, CHECKPOINT)

    def set_child(self, run_id: str, name: str, body: str) -> None:
        sql = "UPDATE children SET body = ? WHERE run_id = ? AND name = ?"
        self._change(sql, body, run_id, name)


class MemoryHarness:
    """The in-memory reference backend of ``_memory_backend``."""

    def __init__(self) -> None:
        self.db = MemoryRuns()

    def open(self, *, redactor: Redactor | None = None) -> BaseStore:
        return BaseStore(MemoryBackend(self.db), redactor=redactor)

    def store_option(self) -> None:
        return None

    def counts(self) -> dict[str, tuple[int, int]]:
        db = self.db
        return {
            run_id: (len(db.events[run_id]), len(db.checkpoints[run_id]))
            for run_id in db.runs
            if db.events[run_id] or db.checkpoints[run_id]
        }

    def set_event(self, run_id: str, seq: int, body: str) -> None:
        kind, _ = self.db.events[run_id][seq]
        self.db.events[run_id][seq] = (kind, body)

    def drop_event(self, run_id: str, seq: int) -> None:
        del self.db.events[run_id][seq]

    def set_checkpoint(self, run_id: str, seq: int, body: str) -> None:
        assert seq in self.db.checkpoints[run_id]
        self.db.checkpoints[run_id][seq] = body

    def set_child(self, run_id: str, name: str, body: str) -> None:
        assert name in self.db.children[run_id]
        self.db.children[run_id][name] = body


class PostgresHarness:
    """A database of its own on the session's PostgreSQL server."""

    def __init__(self, url: str) -> None:
        self.url = url

    def open(self, *, redactor: Redactor | None = None) -> BaseStore:
        return PostgresStore(self.url, redactor=redactor)

    def store_option(self) -> str:
        return self.url

    def _change(self, sql: str, *params: object) -> None:
        # PostgreSQL's TEXT cannot hold NUL (a body never has one: JSON escapes it), so
        # garbage is written without its NULs: the rest of it corrupts the row as well.
        params = tuple(p.replace("\x00", "") if isinstance(p, str) else p for p in params)
        with psycopg.connect(self.url, autocommit=True) as conn:
            assert conn.execute(sql.encode(), params).rowcount == 1

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql.encode()).fetchall()

    def counts(self) -> dict[str, tuple[int, int]]:
        events = dict(self._rows("SELECT run_id, count(*) FROM planloop.events GROUP BY run_id"))
        checkpoints = dict(
            self._rows("SELECT run_id, count(*) FROM planloop.checkpoints GROUP BY run_id")
        )
        return {
            run_id: (events.get(run_id, 0), checkpoints.get(run_id, 0))
            for run_id in {*events, *checkpoints}
        }

    def set_event(self, run_id: str, seq: int, body: str) -> None:
        sql = "UPDATE planloop.events SET body = %s WHERE run_id = %s AND seq = %s"
        self._change(sql, body, run_id, seq)

    def drop_event(self, run_id: str, seq: int) -> None:
        self._change("DELETE FROM planloop.events WHERE run_id = %s AND seq = %s", run_id, seq)

    def set_checkpoint(self, run_id: str, seq: int, body: str) -> None:
        sql = "UPDATE planloop.checkpoints SET body = %s WHERE run_id = %s AND seq = %s"
        self._change(sql, body, run_id, seq)

    def set_child(self, run_id: str, name: str, body: str) -> None:
        sql = "UPDATE planloop.children SET body = %s WHERE run_id = %s AND name = %s"
        self._change(sql, body, run_id, name)


def _postgresql_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("fresh_postgresql_url")
    return url


def _tmp_path(request: pytest.FixtureRequest) -> Path:
    path: Path = request.getfixturevalue("tmp_path")
    return path


HARNESSES: dict[str, Callable[[pytest.FixtureRequest], Harness]] = {
    "sqlite": lambda request: SQLiteHarness(_tmp_path(request)),
    "memory": lambda request: MemoryHarness(),
    "postgresql": lambda request: PostgresHarness(_postgresql_url(request)),
}
"""Every backend the conformance tests run against, by test id."""
