"""``planloop prune``: delete the stored runs that ended long enough ago.

Its options are read here: an age as ``45s``, ``90m``, ``12h``, ``30d`` or ``2w``,
and the statuses of the runs to delete; a bad one is one line and exit code 2.
"""

from __future__ import annotations

import re
from datetime import timedelta

import click

from planloop._cli_errors import fail, planloop_errors
from planloop._cli_runs import StoreAt, has_runs, open_store, shown, started, table

__all__ = ["ENDED", "age", "prune", "statuses"]

ENDED = ("finished", "stopped")
"""The statuses of runs that ended, which ``--status`` may name."""

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_FORMS = "a whole number and a unit, as 45s, 90m, 12h, 30d or 2w"


def age(text: str) -> timedelta:
    """The ``--older-than`` age ``text``: a whole number and a unit (s, m, h, d or w).

    Example:
        >>> age("30d"), age("90m")
        (datetime.timedelta(days=30), datetime.timedelta(seconds=5400))
    """
    found = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if found is None:
        fail(f"--older-than {text!r} is not an age: give {_FORMS}")
    number, unit = found.groups()
    try:
        return timedelta(**{_UNITS[unit]: int(number)})
    except OverflowError:
        fail(f"--older-than {text!r} is too long ago to compute: give {_FORMS}")


def statuses(text: str) -> list[str]:
    """The ``--status`` statuses ``text`` names, comma-separated: of runs that ended.

    Example:
        >>> statuses("stopped"), statuses("finished, stopped")
        (['stopped'], ['finished', 'stopped'])
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    accepted = f"give {' or '.join(ENDED)}, or both ({','.join(ENDED)})"
    if not names:
        fail(f"--status is empty: {accepted}")
    for name in names:
        if name in ("running", "paused"):
            fail(
                f"--status {name}: running and paused runs are never pruned (they may go"
                f" on); {accepted}"
            )
        if name not in ENDED:
            fail(f"--status {name!r} is not the status of a run that ended: {accepted}")
    return names


def prune(path: StoreAt, older_than: str, status: str, *, dry_run: bool) -> None:
    """Delete (or with ``dry_run`` list) the runs of the store at ``path`` that ended
    more than ``older_than`` ago with a status of ``status``, and say how many."""
    chosen, ago = statuses(status), age(older_than)
    which = f"{' or '.join(chosen)} runs that ended more than {older_than.strip()} ago"
    if not has_runs(path):
        click.echo(f"no runs recorded yet in {path}")
        return
    with planloop_errors(), open_store(path) as store:
        records = store.prune(ago, statuses=chosen, dry_run=dry_run)
    count = f"{len(records)} run{'' if len(records) == 1 else 's'}"
    if not dry_run:
        click.echo(f"deleted {count} from {shown(path)}: the {which}")
        return
    if records:
        header = ("RUN ID", "NAME", "STARTED", "STATUS")
        rows = [(r.run_id, r.name or "-", started(r), r.status) for r in records]
        for line in table([header, *rows]):
            click.echo(line)
    click.echo(
        f"would delete {count} from {shown(path)}: the {which} (--dry-run: none was deleted)"
    )
