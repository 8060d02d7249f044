"""The stored runs a ``planloop`` command reads: the store it opens, the run a (partial)
run id names, and runs as a table."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from planloop._cli_errors import fail, planloop_errors

if TYPE_CHECKING:
    from planloop.engine.store import BaseStore, RunRecord

__all__ = [
    "StoreAt",
    "StoreType",
    "has_runs",
    "lease_lines",
    "open_store",
    "shown",
    "started",
    "store_path",
    "stored_run",
    "table",
]

StoreAt = Path | str
"""Where a command's store is: a SQLite file, or a ``postgresql://`` URL (a ``str``)."""

SHOWN_MATCHES = 10
"""How many runs the error about an ambiguous run id lists."""


class StoreType(click.ParamType[Any]):
    """``--store``'s value: a ``postgresql://`` URL as given, else a file path."""

    name = "PATH|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from planloop.engine.store._postgres_schema import is_url

        if isinstance(value, str) and is_url(value):
            return value.strip()
        return click.Path(dir_okay=False, path_type=Path).convert(value, param, ctx)


def store_path(option: StoreAt | None) -> StoreAt:
    """The ``--store`` file or URL, else ``$PLANLOOP_STORE`` if it is a ``postgresql://``
    URL, else the default store file (``$PLANLOOP_HOME``, or ``./.planloop``)."""
    from planloop.engine.store import default_store_path
    from planloop.engine.store._postgres_schema import is_url

    if option is not None:
        return option
    setting = os.environ.get("PLANLOOP_STORE", "").strip()
    return setting if is_url(setting) else default_store_path()


def has_runs(where: StoreAt) -> bool:
    """Whether the store may hold runs: a database always, a file once it exists."""
    return isinstance(where, str) or where.exists()


def shown(where: StoreAt) -> str:
    """``where`` as messages name it: a URL without its password."""
    from planloop.engine.store._postgres_schema import hide_password

    return hide_password(where) if isinstance(where, str) else str(where)


def open_store(path: StoreAt, *, run_id: str | None = None) -> BaseStore:
    """The store at ``path``; when reading the run ``run_id``, one that exists."""
    from planloop.engine.durable import open_store as open_option
    from planloop.engine.store import BaseStore

    if run_id is not None and not has_runs(path):
        fail(f"no run {run_id!r}: there is no store at {path} (set PLANLOOP_HOME or --store)")
    store = open_option(path)
    assert isinstance(store, BaseStore)  # a path or URL opens a SQLiteStore or PostgresStore
    return store


def stored_run(option: StoreAt | None, given: str) -> tuple[BaseStore, RunRecord]:
    """The store and the run that ``given`` names: a whole run id, or the first
    characters of exactly one (a whole id wins over the longer ones it starts).

    Raises:
        click.ClickException: no run, or several, have an id that starts with ``given``
            (the message lists them).
    """
    if not given:
        fail("the run id is empty; `planloop runs` lists the stored runs")
    with planloop_errors():
        store = open_store(store_path(option), run_id=given)
        found = store.find_runs(given, limit=SHOWN_MATCHES + 1)  # by id: a whole id first
        if not found:
            found = [store.get_run(given)]  # raises the store's "no run ..." error
    if found[0].run_id != given and len(found) > 1:
        fail(_ambiguous(given, found))
    return store, found[0]


def _ambiguous(given: str, found: list[RunRecord]) -> str:
    shown = sorted(found[:SHOWN_MATCHES], key=lambda r: r.started_at, reverse=True)
    rows = [(r.run_id, r.name or "-", started(r), r.status) for r in shown]
    more = "\n  ... and more (`planloop runs` lists them)" if len(found) > SHOWN_MATCHES else ""
    count = f"more than {SHOWN_MATCHES}" if more else str(len(found))
    return (
        f"{given!r} is the start of {count} run ids; give more of the one you mean:\n"
        + "\n".join(f"  {line}" for line in table(rows))
        + more
    )


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """``rows`` as lines of left-aligned columns, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def started(record: RunRecord) -> str:
    """When the run started, in local time."""
    return record.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def lease_lines(record: RunRecord) -> list[tuple[str, str]]:
    """What ``planloop show`` says of a running run's lease: who holds it and when its
    process was last seen (an ``abandoned`` run's, when its process was gone)."""
    if record.status != "running" or record.last_seen is None:
        return []
    seen = record.last_seen
    ago = (datetime.now(UTC) - (seen if seen.tzinfo else seen.replace(tzinfo=UTC))).total_seconds()
    when = f"{seen.astimezone().strftime('%Y-%m-%d %H:%M:%S')} ({max(ago, 0):.0f}s ago)"
    if record.abandoned:
        return [("last seen", f"{when}; its process is gone: `planloop resume` continues it")]
    return [("last seen", when), ("held by", record.lease_owner or "-")]
