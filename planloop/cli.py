"""The ``planloop`` command."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="planloop")
def main() -> None:
    """Run agents and workflows as typed state machines, and draw every run."""


@main.command()
@click.option("--question", "-q", default=None, help="What to ask the demo agent.")
@click.option(
    "--out",
    "-o",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("planloop-demo"),
    show_default=True,
    help="Directory for the run's trace (JSON) and diagram (SVG).",
)
def demo(question: str | None, out_dir: Path) -> None:
    """Run the offline demo agent and write a diagram of its run."""
    from planloop.demo import DEFAULT_QUESTION, run_demo

    result, _ = run_demo(question or DEFAULT_QUESTION, out_dir=out_dir, echo=click.echo)
    sys.exit(0 if result.status == "finished" else 1)


@main.command()
@click.argument("trace_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=(
        "Where to write the picture; the format comes from the suffix "
        "(.svg, .png, .pdf, .dot, .mmd). Without it, text is printed."
    ),
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dot", "mermaid", "svg", "png", "pdf"]),
    default=None,
    help=(
        "'dot' and 'mermaid' are text (printed, or written to --output); svg, png "
        "and pdf need --output. Default: from the suffix of --output, else dot."
    ),
)
def render(trace_file: Path, output: Path | None, fmt: str | None) -> None:
    """Draw a trace saved as JSON."""
    from planloop.engine.trace import Trace, TraceError
    from planloop.visualize import InvalidFormat, RenderError, to_dot, to_mermaid
    from planloop.visualize import render as render_to

    try:
        trace = Trace.from_json(trace_file.read_bytes())
    except TraceError as exc:
        raise click.ClickException(f"{trace_file}: {exc}") from None
    if fmt is None and output is not None and output.suffix.lower() == ".mmd":
        fmt = "mermaid"
    if fmt in ("dot", "mermaid") or (output is None and fmt is None):
        text = to_mermaid(trace) if fmt == "mermaid" else to_dot(trace)
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            click.echo(str(output))
        return
    if output is None:
        raise click.UsageError(f"--format {fmt} needs --output FILE")
    try:
        click.echo(str(render_to(trace, output, format=fmt)))
    except (InvalidFormat, RenderError) as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":  # pragma: no cover
    main()
