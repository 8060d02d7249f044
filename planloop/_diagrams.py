"""A picture of every run: ``diagram_dir=`` and ``PLANLOOP_DIAGRAM_DIR``.

Agents, workflows and plan-and-execute runs write ``<run_id>.svg`` into a
directory when a run ends, however it ends: finished, stopped for any reason
(cancelled too), or failed with a :class:`~planloop.RunError`. The file name is
:func:`file_stem` of the run id. The hook rides on
:attr:`LoopConfig.on_end <planloop.engine.loop.LoopConfig>`, so the engine
never imports :mod:`planloop.visualize`.

Drawing or writing the picture never changes a run's result and never hides
its error: a failure becomes a :class:`~planloop.DiagramWarning` saying what
went wrong and how to fix it. Nor does it hold up the run's end for long:
Graphviz gets :data:`RENDER_TIMEOUT` seconds, and a picture it cannot draw in
that time (or at all, without Graphviz) is saved as DOT text, ``<run_id>.dot``,
with a warning that gives the command that draws it.

Runs nested inside another planloop run (the sub-agents of
:class:`~planloop.PlanAndExecute`, an agent called from a workflow step) do not
write a file of their own because of ``PLANLOOP_DIAGRAM_DIR``: the outer run's
picture already shows them. An agent given ``diagram_dir=`` explicitly writes
its own file wherever it runs.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planloop.engine.result import RunResult
from planloop.engine.states import StopReason
from planloop.errors import DefinitionError, DiagramWarning
from planloop.visualize import RenderError, render_dot, to_dot

__all__ = ["ENV_VAR", "RENDER_TIMEOUT", "check_dir", "diagram_hook", "file_stem", "inside_run"]

ENV_VAR = "PLANLOOP_DIAGRAM_DIR"
"""Where runs write their pictures when no ``diagram_dir=`` is given (read at run time)."""

inside_run: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "planloop_inside_run", default=False
)
"""True while a planloop run is in progress in this context (so a run started now is nested)."""

RENDER_TIMEOUT = 5.0
"""Seconds Graphviz may draw a run's picture at the run's end.

``render_dot`` stops a drawing that takes longer and does not try it again with
another renderer, so a run's end waits at most about this long for its picture
before saving DOT text.
"""

_KEPT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.")
_MAX_STEM = 200
"""Longest file stem, in bytes: room for a suffix under the usual 255-byte name limit."""
_HASH_CHARS = 16


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
            dot = to_dot(result)
        except Exception as exc:  # noqa: BLE001 - a picture must never break a run
            _warn(
                f"planloop could not draw run {result.run_id!r} "
                f"({type(exc).__name__}: {exc}); the run itself is unaffected. "
                "This is a bug in planloop: please report it with the run's trace "
                "(result.trace.to_json())",
                result,
            )
            return
        stem = file_stem(result.run_id)
        svg_path, dot_path = directory / f"{stem}.svg", directory / f"{stem}.dot"
        try:
            svg: bytes | None = render_dot(dot, "svg", timeout=RENDER_TIMEOUT)
            why = ""
        except RenderError as exc:  # too slow, or no Graphviz (the message says which)
            svg, why = None, str(exc)
        # The file of the other kind, left by an earlier run with the same id, goes.
        written, stale = (svg_path, dot_path) if svg is not None else (dot_path, svg_path)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            written.write_bytes(svg if svg is not None else dot.encode("utf-8"))
            stale.unlink(missing_ok=True)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            _warn(f"planloop wrote no run diagram: {self._where()}: {reason}; {fix}", result)
            return
        if svg is None:
            _warn(
                f"planloop saved the diagram of run {result.run_id!r} as DOT text, {dot_path}, "
                f"instead of SVG: {why}. Draw it with: dot -Tsvg {dot_path} -o {svg_path}",
                result,
            )

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


def file_stem(run_id: str) -> str:
    """The file name, without suffix, of run ``run_id``'s picture: different ids, different names.

    An id of ASCII letters, digits, ``_``, ``-`` and ``.`` is its own name, except a
    leading ``.``. Any other character, and a leading ``.``, is written as ``%XX`` for
    each of its UTF-8 bytes, as in URLs: ``a/b`` is ``a%2Fb``, ``..`` is ``%2E.``, ``café``
    is ``caf%C3%A9``. So no name is a path outside the directory or a hidden file, and
    the name reads back to the exact id (``urllib.parse.unquote``). An id whose name would
    be longer than 200 bytes, or empty, is named by the first part of that name, ``~``
    and 16 hex digits of the SHA-256 of the id (``~`` is escaped in every other name, so
    the two kinds of name never meet).

    Ids that differ only in case (``Run``, ``run``) get names that differ only in case:
    distinct files on Linux, but one file on a case-insensitive filesystem (macOS and
    Windows by default), where the later run's picture replaces the earlier one.

    Example:
        >>> [file_stem(i) for i in ("nightly-1", "a/b", "..", "run 2")]
        ['nightly-1', 'a%2Fb', '%2E.', 'run%202']
    """
    parts = [
        ch if ch in _KEPT and not (i == 0 and ch == ".") else _escaped(ch)
        for i, ch in enumerate(run_id)
    ]
    stem = "".join(parts)
    if stem and len(stem) <= _MAX_STEM:
        return stem
    head, room = [], _MAX_STEM - 1 - _HASH_CHARS
    for part in parts:  # whole characters only, so the head still reads back
        room -= len(part)
        if room < 0:
            break
        head.append(part)
    digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{''.join(head)}~{digest[:_HASH_CHARS]}"


def _escaped(ch: str) -> str:
    return "".join(f"%{byte:02X}" for byte in ch.encode("utf-8", "surrogatepass"))
