"""What the ``planloop`` command writes of a trace, and in which format: the trace itself
as JSON (what ``planloop render`` reads), or its picture as DOT or Mermaid text or as an
image that Graphviz draws."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from planloop._cli_errors import fail, writing

if TYPE_CHECKING:
    from planloop.engine.trace import Trace

__all__ = ["EVERY_FORMAT", "PICTURES", "output_format", "text", "write"]

SUFFIXES = {
    ".json": "json",
    ".dot": "dot",
    ".gv": "dot",
    ".mmd": "mermaid",
    ".svg": "svg",
    ".png": "png",
    ".pdf": "pdf",
}
"""The format each suffix of an output file names."""
TEXTS = ("json", "dot", "mermaid")
"""The formats that are text: written by planloop, printed when there is no output file."""
PICTURES = ("dot", "mermaid", "svg", "png", "pdf")
EVERY_FORMAT = ("json", *PICTURES)


def output_format(output: Path | None, fmt: str | None, accepted: tuple[str, ...]) -> str:
    """What to write: ``fmt`` if given, else what the suffix of ``output`` says; with
    no ``output`` (the text is printed), a text format: ``dot`` unless ``fmt`` says.

    Raises:
        click.UsageError: an image format with no output file.
        click.ClickException: the suffix names none of the ``accepted`` formats (the
            message lists the suffixes that do).
    """
    if output is None:
        if fmt is not None and fmt not in TEXTS:
            raise click.UsageError(f"--format {fmt} needs --output FILE")
        return fmt or "dot"
    if fmt is not None:
        return fmt
    found = SUFFIXES.get(output.suffix.lower())
    if found in accepted:
        return found
    shown = repr(output.suffix) if output.suffix else "no suffix"
    known = ", ".join(suffix for suffix, name in SUFFIXES.items() if name in accepted)
    fail(
        f"cannot tell the image format of {str(output)!r} from {shown}; use one of: "
        f"{known} (or pass --format {'|'.join(accepted)})"
    )


def text(trace: Trace, fmt: str) -> str:
    """The trace as JSON (as ``Trace.to_json`` writes it), or its picture as DOT or Mermaid."""
    from planloop.visualize import to_dot, to_mermaid

    if fmt == "json":
        return trace.to_json(indent=2) + "\n"
    return to_mermaid(trace) if fmt == "mermaid" else to_dot(trace)


def write(trace: Trace, output: Path, fmt: str) -> Path:
    """Write ``trace`` to ``output`` as ``fmt``; a failure is one line and exit code 2."""
    from planloop.visualize import InvalidFormat, RenderError
    from planloop.visualize import render as render_to

    try:
        with writing("-o"):
            if fmt in TEXTS:
                output.write_text(text(trace, fmt), encoding="utf-8")
                return output
            return render_to(trace, output, format=fmt)
    except (InvalidFormat, RenderError) as exc:
        fail(str(exc))
