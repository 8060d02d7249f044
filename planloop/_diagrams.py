"""A picture of every run: ``diagram_dir=`` and ``PLANLOOP_DIAGRAM_DIR``.

Agents, workflows and plan-and-execute runs write ``<run_id>.svg`` into a
directory when a run ends, however it ends: finished, stopped for any reason
(cancelled too), or failed with a :class:`~planloop.RunError`. The hook rides
on :attr:`LoopConfig.on_end <planloop.engine.loop.LoopConfig>`, so the engine
never imports :mod:`planloop.visualize`.

Drawing or writing the picture never changes a run's result and never hides
its error: a failure becomes a :class:`~planloop.DiagramWarning` saying what
went wrong and how to fix it.

Runs nested inside another planloop run (the sub-agents of
:class:`~planloop.PlanAndExecute`, an agent called from a workflow step) do not
write a file of their own because of ``PLANLOOP_DIAGRAM_DIR``: the outer run's
picture already shows them. An agent given ``diagram_dir=`` explicitly writes
its own file wherever it runs.
"""

from __future__ import annotations

import contextvars
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planloop.engine.result import RunResult
from planloop.engine.states import StopReason
from planloop.errors import DefinitionError, DiagramWarning
from planloop.visualize import RenderError, to_svg

__all__ = ["ENV_VAR", "check_dir", "diagram_hook", "inside_run"]

ENV_VAR = "PLANLOOP_DIAGRAM_DIR"
"""Where runs write their pictures when no ``diagram_dir=`` is given (read at run time)."""

inside_run: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "planloop_inside_run", default=False
)
"""True while a planloop run is in progress in this context (so a run started now is nested)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def check_dir(value: Any) -> Path | None:
    """The ``diagram_dir=`` argument as a path, checked before anything runs.

    Raises:
        DefinitionError: ``value`` is not a path, is empty, or is (or lies under) a file.
    """
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise DefinitionError(
            f"diagram_dir={value!r}; use a directory path (str or os.PathLike) or None"
        )
    text = os.fspath(value)
    if not isinstance(text, str):
        raise DefinitionError(f"diagram_dir={value!r}; use a str path, not bytes")
    if not text:
        raise DefinitionError(
            "diagram_dir='' names no directory; use a path such as 'diagrams', "
            "or None for no pictures"
        )
    path = Path(text)
    problem = _not_a_dir(path)
    if problem is not None:
        raise DefinitionError(f"diagram_dir={text!r}: {problem}; use a directory path")
    return path


def diagram_hook(directory: Path | None, *, nested: bool) -> Callable[[RunResult], None] | None:
    """The ``on_end`` hook that writes this run's picture, or ``None`` for no picture.

    ``directory`` is the object's ``diagram_dir``; without one, ``PLANLOOP_DIAGRAM_DIR``
    is used unless the run is ``nested`` in another run.
    """
    if directory is not None:
        source = "diagram_dir="
    else:
        if nested:
            return None
        env = os.environ.get(ENV_VAR, "")
        if not env:
            return None
        directory, source = Path(env), ENV_VAR
    return _Writer(directory, source)


class _Writer:
    __slots__ = ("directory", "source")

    def __init__(self, directory: Path, source: str) -> None:
        self.directory = directory
        self.source = source

    def __call__(self, result: RunResult) -> None:
        directory = self.directory
        fix = (
            f"point {ENV_VAR} to a writable directory, or unset it"
            if self.source == ENV_VAR
            else "pass diagram_dir= a writable directory, or None for no pictures"
        )
        problem = _not_a_dir(directory)
        if problem is not None:
            _warn(f"planloop wrote no run diagram: {self._where()}: {problem}; {fix}", result)
            return
        try:
            svg = to_svg(result)
        except RenderError as exc:  # no Graphviz: the message names the install commands
            _warn(f"planloop wrote no run diagram to {self._where()}: {exc}", result)
            return
        except Exception as exc:  # noqa: BLE001 - a picture must never break a run
            _warn(
                f"planloop could not draw run {result.run_id!r} "
                f"({type(exc).__name__}: {exc}); the run itself is unaffected. "
                "This is a bug in planloop: please report it with the run's trace "
                "(result.trace.to_json())",
                result,
            )
            return
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"{_file_stem(result.run_id)}.svg").write_text(svg, encoding="utf-8")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            _warn(f"planloop wrote no run diagram: {self._where()}: {reason}; {fix}", result)

    def _where(self) -> str:
        if self.source == ENV_VAR:
            return f"{ENV_VAR}={str(self.directory)!r}"
        return f"diagram_dir={str(self.directory)!r}"


def _warn(message: str, result: RunResult) -> None:
    try:
        warnings.warn(message, DiagramWarning, stacklevel=3)
    except Warning:
        # Warnings are turned into errors (``-W error``). That is for the caller to
        # see, except when the run failed: its RunError is raised next and must not
        # be replaced by a complaint about the picture.
        if result.stop_reason is not StopReason.error:
            raise


def _not_a_dir(path: Path) -> str | None:
    """Why no directory can be at ``path`` (or be made there), or ``None``."""
    probe = path
    while True:
        if os.path.isdir(probe):
            return None
        if os.path.lexists(probe):
            if probe == path:
                return "it is a file, not a directory"
            return f"{str(probe)!r} is a file, so no directory can be made under it"
        parent = probe.parent
        if parent == probe:
            return None
        probe = parent


def _file_stem(run_id: str) -> str:
    # A run id is the caller's text: keep it from naming a path outside the directory.
    stem = _UNSAFE.sub("_", run_id).strip(".")
    return stem or "run"
