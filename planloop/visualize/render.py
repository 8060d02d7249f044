"""DOT text to SVG, PNG or PDF through Graphviz.

The system ``dot`` program is used when it is on ``PATH``; otherwise (or when
it cannot be started) pygraphviz draws, in a child process (a Graphviz crash
cannot take the caller's program with it). Neither is imported or started
until something is rendered, so DOT text keeps working without Graphviz. Each
drawing has a time limit; one that passes it is an error that says so, and
is not drawn again by the other renderer.
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from planloop.errors import InvalidFormat, RenderError

__all__ = ["FORMATS", "InvalidFormat", "RenderError", "render_dot"]

FORMATS: tuple[str, ...] = ("svg", "png", "pdf")
"""The image formats :func:`render_dot` produces."""

_INSTALL_HINT = "install Graphviz with `pip install pygraphviz` or `apt-get install graphviz`"


def render_dot(dot_text: str, fmt: str = "svg", *, timeout: float = 60.0) -> bytes:
    """Draw ``dot_text`` as ``fmt`` (``svg``, ``png`` or ``pdf``) and return the file's bytes.

    The ``dot`` program draws when it is on ``PATH``; pygraphviz only when
    there is no ``dot`` or it cannot be started. A drawing that takes longer
    than ``timeout`` is stopped and not tried again with the other one.

    Args:
        dot_text: a DOT graph, e.g. from :func:`~planloop.visualize.to_dot`.
        fmt: the image format.
        timeout: seconds Graphviz may take to draw it.

    Raises:
        InvalidFormat: ``fmt`` is not one of :data:`FORMATS`.
        RenderError: no Graphviz is installed (the message names the install
            commands), Graphviz failed on this graph, or it took longer than
            ``timeout`` (the message says what to do).

    Example:
        >>> render_dot('digraph { a -> b }', "svg").lstrip().startswith((b"<?xml", b"<svg"))
        True
    """
    if fmt not in FORMATS:
        raise InvalidFormat(f"unknown image format {fmt!r}; use one of: {', '.join(FORMATS)}")
    exe = shutil.which("dot")
    # Why `dot` did not draw, when pygraphviz is then asked to.
    no_dot = "no `dot` program on PATH"
    try:
        if exe is not None:
            try:
                return _run_dot(exe, dot_text, fmt, timeout)
            except _Missing as exc:
                no_dot = str(exc)
        return _draw_with_pygraphviz(dot_text, fmt, timeout)
    except _TimedOut as exc:
        raise RenderError(
            f"cannot render {fmt}: timed out: {exc} to draw this picture and was stopped; "
            "give it more time with timeout= (render_dot, to_svg and render take it), "
            f"draw the DOT text elsewhere (to_dot(), then `dot -T{fmt}`), or draw less "
            "(Style(max_steps=...) and Style(fold=...) fold large acts and long runs)"
        ) from None
    except _Missing as exc:
        raise RenderError(
            f"cannot render {fmt}: {no_dot}; {exc}; {_INSTALL_HINT} "
            "(DOT text needs neither: use to_dot())"
        ) from None
    except _Failed as exc:
        # Graphviz is installed and failed on this graph: its own message says why.
        raise RenderError(f"cannot render {fmt}: {exc}") from None


class _Failed(Exception):
    """A renderer ran and did not draw the graph; the message says why."""


class _Missing(_Failed):
    """A renderer is not installed or cannot be started: the next one may draw."""


class _TimedOut(_Failed):
    """A renderer took longer than the timeout (``<who> took longer than <n> s``)."""


def _draw_in_child(
    command: list[str], dot_text: str, timeout: float, who: str
) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` with ``dot_text`` on its stdin and return what it did;
    :class:`_TimedOut` if it takes longer than ``timeout``, :class:`_Missing`
    if it cannot start, :class:`_Failed` if it crashes."""
    try:
        done = subprocess.run(
            command,
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _TimedOut(f"{who} took longer than {timeout:g} s") from None
    except OSError as exc:
        raise _Missing(f"{who} could not be started ({exc})") from None
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        raise _Failed(f"{who} crashed ({name}) drawing this graph")
    return done


def _run_dot(exe: str, dot_text: str, fmt: str, timeout: float) -> bytes:
    done = _draw_in_child([exe, f"-T{fmt}"], dot_text, timeout, f"`{exe}`")
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip() or f"exit {done.returncode}"
        raise _Failed(f"`{exe} -T{fmt}` failed: {message}")
    return done.stdout


def _draw_with_pygraphviz(dot_text: str, fmt: str, timeout: float) -> bytes:
    """Draw with pygraphviz's Graphviz, in a child Python process.

    Not in this process: Graphviz crashes (a segfault) on some valid input, and a
    crash here would end the caller's program; a child's crash is a
    :class:`_Failed` like any other, and the child has the same ``timeout`` as
    ``dot``. Its stderr is read only when it fails (the Graphviz that the Linux
    wheels bundle prints harmless Fontconfig warnings on its first drawing).
    """
    spec = importlib.util.find_spec("pygraphviz")
    if spec is None or not spec.submodule_search_locations:
        raise _Missing("pygraphviz is not installed")
    if not sys.executable or getattr(sys, "frozen", False):  # a frozen app's executable is the app
        raise _Missing(
            "pygraphviz draws in a child Python process, and this program has no Python "
            "executable to start one with; install Graphviz's `dot` program instead"
        )
    where = str(Path(next(iter(spec.submodule_search_locations))).parent)
    done = _draw_in_child(
        [sys.executable, "-c", _CHILD, where, fmt], dot_text, timeout, "pygraphviz"
    )
    if done.returncode != 0 or not done.stdout:
        lines = [
            line
            for line in done.stderr.decode("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith("Fontconfig warning:")
        ]
        said = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
        message = "; ".join(said) or (lines[-1] if lines else f"exit {done.returncode}")
        raise _Failed(f"pygraphviz failed: {message}")
    return done.stdout


_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
import pygraphviz
graph = pygraphviz.AGraph(string=sys.stdin.buffer.read().decode("utf-8"))
sys.stdout.buffer.write(graph.draw(format=sys.argv[2], prog="dot"))
"""
"""What the child runs: DOT text on stdin, the image on stdout."""
