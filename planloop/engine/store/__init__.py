"""Where runs are kept: runs, their trace events (append-only) and checkpoints.

A run records its :class:`~planloop.engine.trace.Trace` events and, with them,
the checkpoint after its latest transition (:meth:`Store.save`, one transaction
before each state whose handler may have effects; see
:class:`~planloop.engine.durable.Recorder`); ``resume`` later reads the last
checkpoint (:meth:`Store.load_checkpoint`) and the events (:meth:`Store.load_trace`).

Three layers:

* :class:`Store`, the protocol the engine uses (any object with its methods
  can be given as ``store=``), and the records it returns (:class:`RunRecord`,
  :class:`Checkpoint`);
* :class:`BaseStore`, what a store means whatever the database: argument
  checks, events and checkpoints turned into JSON and back, redaction of
  everything before it is written, error messages;
* a :class:`Backend`, how one database does it, over rows already encoded and
  redacted: :class:`SQLiteBackend` (one file, the default;
  :class:`SQLiteStore` is a :class:`BaseStore` over it) and
  :class:`PostgresBackend` (a PostgreSQL database; :class:`PostgresStore`). A new database is a
  new backend, held to the same behaviour by the conformance tests
  (``tests/engine/test_store_conformance.py``); what it needs is exported
  here: the row types, :class:`Lease`, :class:`Refusal`, :class:`TraceRows` and the errors of
  :func:`cannot_read`, :func:`cannot_write` and :func:`store_closed`.
"""

from __future__ import annotations

from planloop.engine.store._backend import (
    SEQ_LIMIT,
    Backend,
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
from planloop.engine.store._postgres import PostgresBackend, PostgresStore
from planloop.engine.store._protocol import Checkpoint, RunRecord, Store
from planloop.engine.store._schema import SCHEMA_VERSION
from planloop.engine.store._sqlite import SQLiteBackend, SQLiteStore, default_store_path

__all__ = [
    "SCHEMA_VERSION",
    "SEQ_LIMIT",
    "Backend",
    "BaseStore",
    "Checkpoint",
    "ChildRow",
    "EventRow",
    "Lease",
    "PostgresBackend",
    "PostgresStore",
    "Refusal",
    "RunRecord",
    "RunRow",
    "SQLiteBackend",
    "SQLiteStore",
    "Store",
    "TraceRows",
    "cannot_read",
    "cannot_write",
    "default_store_path",
    "store_closed",
]
