"""Errors and the warning of drawing: Graphviz failed, a format is unknown, a picture unwritten."""

from __future__ import annotations

from planloop.errors._root import PlanloopError

__all__ = ["DiagramWarning", "InvalidFormat", "RenderError"]


class RenderError(PlanloopError, RuntimeError):
    """Graphviz is missing, failed on the diagram, or took too long (the message says what to do).

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


class DiagramWarning(UserWarning):
    """The picture of a run (``diagram_dir=`` or ``PLANLOOP_DIAGRAM_DIR``) was not written.

    A warning, not an error: the run's result, or its :class:`RunError`, is
    unaffected. The message says what failed and how to fix it. Silence it
    with ``warnings.simplefilter("ignore", planloop.DiagramWarning)``.

    Example:
        >>> import pathlib, tempfile, warnings
        >>> from planloop import Workflow
        >>> pictures = pathlib.Path(tempfile.mkdtemp()) / "runs"
        >>> wf = Workflow("nightly", diagram_dir=pictures, store=False)
        >>> _ = wf.step(lambda: 1, id="load")
        >>> _ = pictures.write_text("a file where the directory should be")
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     output = wf.run_sync().output
        >>> print(caught[0].message)  # doctest: +ELLIPSIS
        planloop wrote no run diagram: diagram_dir='...runs': it is a file, not a directory; ...
    """
