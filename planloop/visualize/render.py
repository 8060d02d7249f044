"""DOT text to SVG, PNG or PDF through Graphviz.

The system ``dot`` program is used when it is on ``PATH``; otherwise
pygraphviz draws in-process. Neither is imported or started until something
is rendered, so DOT text keeps working without Graphviz.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from planloop.errors import PlanloopError

__all__ = ["FORMATS", "InvalidFormat", "RenderError", "render_dot"]

FORMATS: tuple[str, ...] = ("svg", "png", "pdf")
"""The image formats :func:`render_dot` produces."""

_INSTALL_HINT = "install Graphviz with `pip install pygraphviz` or `apt-get install graphviz`"


class RenderError(PlanloopError, RuntimeError):
    """Graphviz is missing or could not draw the diagram (the message says how to install it).

    Example:
        >>> from planloop.visualize import render_dot
        >>> try:
        ...     render_dot("digraph { a -> }", "svg")
        ... except RenderError as err:
        ...     print(type(err).__name__)
        RenderError
    """


class InvalidFormat(PlanloopError, ValueError):
    """An image format (or file suffix) planloop cannot write.

    Example:
        >>> from planloop import Plan, Step
        >>> from planloop.visualize import render
        >>> try:
        ...     render(Plan([Step(id="a", tool="t")]), "plan.bmp")
        ... except InvalidFormat as err:
        ...     print(str(err).split(";")[0])
        cannot tell the image format of 'plan.bmp' from '.bmp'
    """


_lock = threading.Lock()
_first_draw_done = False


def render_dot(dot_text: str, fmt: str = "svg", *, timeout: float = 60.0) -> bytes:
    """Draw ``dot_text`` as ``fmt`` (``svg``, ``png`` or ``pdf``) and return the file's bytes.

    Args:
        dot_text: a DOT graph, e.g. from :func:`~planloop.visualize.to_dot`.
        fmt: the image format.
        timeout: seconds the system ``dot`` may take (in-process drawing has no timeout).

    Raises:
        InvalidFormat: ``fmt`` is not one of :data:`FORMATS`.
        RenderError: no Graphviz could draw it; the message names the install commands.

    Example:
        >>> render_dot('digraph { a -> b }', "svg").lstrip().startswith((b"<?xml", b"<svg"))
        True
    """
    if fmt not in FORMATS:
        raise InvalidFormat(f"unknown image format {fmt!r}; use one of: {', '.join(FORMATS)}")
    problems: list[str] = []
    exe = shutil.which("dot")
    if exe is not None:
        try:
            return _run_dot(exe, dot_text, fmt, timeout)
        except _Failed as exc:
            problems.append(str(exc))
    try:
        return _draw_in_process(dot_text, fmt)
    except _Failed as exc:
        problems.append(str(exc))
    if exe is None:
        problems.insert(0, "no `dot` program on PATH")
    detail = "; ".join(problems)
    raise RenderError(
        f"cannot render {fmt}: {detail}; {_INSTALL_HINT} (DOT text needs neither: use to_dot())"
    )


class _Failed(Exception):
    """One renderer did not work; the message says why."""


def _run_dot(exe: str, dot_text: str, fmt: str, timeout: float) -> bytes:
    try:
        done = subprocess.run(
            [exe, f"-T{fmt}"],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _Failed(f"`{exe}` took longer than {timeout:g} s") from None
    except OSError as exc:
        raise _Failed(f"`{exe}` could not be started ({exc})") from None
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
        raise _Failed(f"`{exe} -T{fmt}` failed: {message}")
    return done.stdout


def _draw_in_process(dot_text: str, fmt: str) -> bytes:
    try:
        import pygraphviz
    except ImportError:
        raise _Failed("pygraphviz is not installed") from None
    # Graphviz keeps global state; two threads drawing at once can crash it.
    with _lock, _quiet_fontconfig(pygraphviz.__file__):
        try:
            graph = pygraphviz.AGraph(string=dot_text)
            data = graph.draw(format=fmt, prog="dot")
        except Exception as exc:  # noqa: BLE001 - pygraphviz raises several unrelated types
            raise _Failed(f"pygraphviz failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, bytes) or not data:
        raise _Failed("pygraphviz returned no data")
    return data


@contextlib.contextmanager
def _quiet_fontconfig(module_file: str) -> Iterator[None]:
    """During the first drawing, drop Fontconfig's warnings from the process's stderr.

    The pygraphviz wheel for Linux bundles an older fontconfig that, when it
    starts, parses the system's newer config files and prints "Fontconfig
    warning: ... unknown element" (harmless; fonts still work). It starts once
    per process, in the first drawing, and no setting avoids the parse
    (FONTCONFIG_FILE does not: the template directory is read regardless). So
    that one drawing runs with file descriptor 2 captured; every other line
    is written back to stderr afterwards. A pygraphviz built against the
    system's Graphviz prints nothing and is left alone.
    """
    global _first_draw_done
    if _first_draw_done or not _bundled_fontconfig(module_file):
        _first_draw_done = True
        yield
        return
    _first_draw_done = True
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().splitlines(keepends=True)
                if not line.startswith(b"Fontconfig warning:")
            ]
            if kept:
                os.write(2, b"".join(kept))


def _bundled_fontconfig(module_file: str) -> bool:
    libs = Path(module_file).resolve().parent.parent / "pygraphviz.libs"
    return any(libs.glob("libfontconfig*"))
