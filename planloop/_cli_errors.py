"""How the ``planloop`` command fails: one ``Error: ...`` message on stderr and an exit
code from the table of ``planloop --help``, never a traceback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

__all__ = [
    "EXIT_FINISHED",
    "EXIT_PAUSED",
    "EXIT_STOPPED",
    "EXIT_USAGE",
    "fail",
    "planloop_errors",
    "writing",
]

EXIT_FINISHED, EXIT_STOPPED, EXIT_USAGE, EXIT_PAUSED = 0, 1, 2, 3


class _UsageFailure(click.ClickException):
    """One message on stderr, exit code 2."""

    exit_code = EXIT_USAGE


def fail(message: str) -> NoReturn:
    """Stop the command: ``Error: message`` on stderr, exit code 2 (a usage or input error)."""
    raise _UsageFailure(message)


@contextmanager
def planloop_errors() -> Iterator[None]:
    """planloop's own errors as one message and exit code 2 (run failures are handled apart)."""
    from planloop.errors import CannotResume, DefinitionError, StoreError

    try:
        yield
    except (StoreError, CannotResume, DefinitionError) as exc:
        fail(str(exc))


@contextmanager
def writing(option: str) -> Iterator[None]:
    """A file or folder that ``option`` names and that cannot be written: one line, exit 2.

    Only errors about a path (an ``OSError`` with a file name) are turned into that line;
    anything else is not about the output and propagates.
    """
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            raise
        fail(_cannot_write(Path(os.fsdecode(exc.filename)), exc, option))


def _cannot_write(path: Path, exc: OSError, option: str) -> str:
    """Why ``path`` could not be written (``exc`` says), and what to do instead."""
    if isinstance(exc, FileNotFoundError) and not path.parent.exists():
        return (
            f"cannot write {path}: folder {path.parent} does not exist; "
            f"create it or choose another {option}"
        )
    if isinstance(exc, NotADirectoryError):
        blocker = next((p for p in reversed(path.parents) if p.is_file()), None)
        if blocker is not None:
            return (
                f"cannot write {path}: {blocker} is a file, not a folder; choose another {option}"
            )
    return f"cannot write {path}: {exc.strerror or exc}; choose another {option}"
