"""Diagrams of machines, plans and runs: DOT and Mermaid text always, SVG/PNG/PDF through Graphviz.

``to_dot`` and ``to_mermaid`` need nothing but planloop; ``render`` and
``to_svg`` use the system ``dot`` program or pygraphviz, loaded only when
first needed. Pictures of runs stay readable at any size: long runs and large
acts are folded (``Style.fold``, ``Style.max_steps``), and a note counts what
is not drawn.
Importing this package makes traces, plans, specs and run results show
themselves inline in Jupyter.

Example:
    >>> import planloop
    >>> from planloop.visualize import to_dot
    >>> to_dot(planloop.MachineSpec.default()).splitlines()[0]
    'digraph planloop {'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from planloop.engine import _display
from planloop.engine.plan import Plan
from planloop.engine.result import RunResult
from planloop.engine.spec import MachineSpec, SpecSummary
from planloop.engine.trace import Trace
from planloop.visualize.dot import escape_label, ir_to_dot
from planloop.visualize.extract import plan_to_ir, spec_to_ir
from planloop.visualize.ir import Cluster, Diagram, Edge, Node, Style
from planloop.visualize.mermaid import ir_to_mermaid
from planloop.visualize.render import FORMATS, InvalidFormat, RenderError, render_dot
from planloop.visualize.trace_ir import trace_to_ir

__all__ = [
    "Cluster",
    "Diagram",
    "Edge",
    "InvalidFormat",
    "Node",
    "RenderError",
    "Style",
    "escape_label",
    "ir_to_dot",
    "ir_to_mermaid",
    "plan_to_ir",
    "render",
    "render_dot",
    "spec_to_ir",
    "to_diagram",
    "to_dot",
    "to_mermaid",
    "to_svg",
    "trace_to_ir",
]

_ACCEPTED = "a Trace, RunResult, Plan, MachineSpec, SpecSummary or Diagram"
_SUFFIXES = {".dot": "dot", ".gv": "dot", **{f".{fmt}": fmt for fmt in FORMATS}}


def to_diagram(obj: Any, *, timings: bool = True, style: Style | None = None) -> Diagram:
    """The diagram IR of ``obj`` (a trace, run result, plan or machine spec).

    Raises:
        TypeError: ``obj`` is none of the accepted types.

    Example:
        >>> from planloop import Plan, Step
        >>> plan = Plan([Step(id="a", tool="t"), Step(id="b", tool="u", depends_on=("a",))])
        >>> diagram = to_diagram(plan)
        >>> diagram.title, [node.label for node in diagram.nodes], len(diagram.edges)
        ('plan · 2 steps', ['a · t', 'b · u'], 1)
    """
    if isinstance(obj, Diagram):
        return obj
    if isinstance(obj, Trace | RunResult):
        return trace_to_ir(obj, timings=timings, style=style)
    if isinstance(obj, Plan):
        return plan_to_ir(obj, style=style)
    if isinstance(obj, MachineSpec | SpecSummary):
        return spec_to_ir(obj, style=style)
    raise TypeError(f"cannot draw {type(obj).__name__}; pass {_ACCEPTED}")


def to_dot(obj: Any, *, timings: bool = True, style: Style | None = None) -> str:
    """Graphviz DOT text for ``obj``; needs no Graphviz installed.

    Args:
        obj: a :class:`~planloop.Trace`, :class:`~planloop.RunResult`,
            :class:`~planloop.Plan` or :class:`~planloop.MachineSpec`.
        timings: show durations (turn off for text that must not change between runs).
        style: fonts and colours.

    Raises:
        TypeError: ``obj`` is none of the accepted types.

    Example:
        >>> from planloop import Plan, Step
        >>> dot = to_dot(Plan([Step(id="a", tool="t")]), style=Style(font="DejaVu Sans"))
        >>> 'label="a · t"' in dot, 'fontname="DejaVu Sans"' in dot
        (True, True)
    """
    st = style or Style()
    return ir_to_dot(to_diagram(obj, timings=timings, style=st), style=st)


def to_mermaid(obj: Any, *, timings: bool = True, style: Style | None = None) -> str:
    """Mermaid flowchart text for ``obj`` (see :func:`to_dot` for what ``obj`` may be).

    It needs no Graphviz: GitHub, GitLab and many documentation sites draw it
    inside a fenced ```` ```mermaid ```` block. The picture is the one
    :func:`to_dot` draws; see :func:`~planloop.visualize.mermaid.ir_to_mermaid`
    for what Mermaid cannot show.

    Args:
        obj: a :class:`~planloop.Trace`, :class:`~planloop.RunResult`,
            :class:`~planloop.Plan` or :class:`~planloop.MachineSpec`.
        timings: show durations (turn off for text that must not change between runs).
        style: colours and label lengths.

    Raises:
        TypeError: ``obj`` is none of the accepted types.

    Example:
        >>> from planloop import Plan, Step
        >>> plan = Plan([Step(id="a", tool="t"), Step(id="b", tool="u", depends_on=("a",))])
        >>> print(to_mermaid(plan), end="")
        ---
        title: "plan · 2 steps"
        ---
        flowchart TB
          n_p_0("a · t")
          n_p_1("b · u")
          n_p_0 --> n_p_1
          classDef s0 fill:#ffffff,stroke:#1565c0,color:#37474f
          class n_p_0,n_p_1 s0
          linkStyle 0 stroke:#37474f
    """
    st = style or Style()
    return ir_to_mermaid(to_diagram(obj, timings=timings, style=st), style=st)


def to_svg(
    obj: Any, *, timings: bool = True, style: Style | None = None, timeout: float = 60.0
) -> str:
    """SVG text for ``obj`` (see :func:`to_dot` for what ``obj`` may be).

    ``timeout`` is the seconds Graphviz may take to draw it (see :func:`render_dot`).

    Raises:
        RenderError: no Graphviz is installed (the message names the install
            commands), or drawing failed or took longer than ``timeout``.

    Example:
        >>> import planloop
        >>> svg = to_svg(planloop.MachineSpec.default())
        >>> svg.lstrip().startswith("<?xml"), "<svg" in svg, ">observe</text>" in svg
        (True, True, True)
    """
    dot = to_dot(obj, timings=timings, style=style)
    return render_dot(dot, "svg", timeout=timeout).decode("utf-8")


def render(
    obj: Any,
    path: str | Path,
    *,
    format: str | None = None,
    timings: bool = True,
    style: Style | None = None,
    timeout: float = 60.0,
) -> Path:
    """Write a picture of ``obj`` to ``path`` and return the path.

    The format comes from the suffix (``.svg``, ``.png``, ``.pdf``, or ``.dot``
    for DOT text) unless ``format`` is given. ``timeout`` is the seconds
    Graphviz may take to draw an image (see :func:`render_dot`).

    Raises:
        InvalidFormat: the suffix or ``format`` is not one of the above.
        RenderError: an image was asked for and no Graphviz is installed, or
            drawing it failed or took longer than ``timeout``.
        TypeError: ``obj`` is none of the accepted types.

    Example:
        >>> import tempfile, planloop
        >>> out = render(planloop.MachineSpec.default(), tempfile.mkdtemp() + "/spec.dot")
        >>> out.read_text().startswith("digraph")
        True
    """
    target = Path(path)
    fmt = format if format is not None else _format_of(target)
    if fmt not in ("dot", *FORMATS):
        valid = ", ".join(("dot", *FORMATS))
        raise InvalidFormat(f"unknown format {fmt!r}; use one of: {valid}")
    text = to_dot(obj, timings=timings, style=style)
    data = text.encode("utf-8") if fmt == "dot" else render_dot(text, fmt, timeout=timeout)
    target.write_bytes(data)
    return target


def _format_of(path: Path) -> str:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        valid = ", ".join(sorted(_SUFFIXES))
        shown = repr(path.suffix) if path.suffix else "no suffix"
        raise InvalidFormat(
            f"cannot tell the image format of {str(path)!r} from {shown}; "
            f"use one of: {valid} (or pass format=)"
        )
    return fmt


def _inline_svg(obj: Any) -> str | None:
    # Jupyter shows the text repr when this returns None; a missing Graphviz
    # must not turn every displayed trace into a traceback.
    try:
        return to_svg(obj)
    except RenderError:
        return None


# The engine annotates the renderer as returning str, but svg_of() is documented
# (and typed) to pass None on, which is what Jupyter needs to fall back to the repr.
_display.register_svg_renderer(_inline_svg)
