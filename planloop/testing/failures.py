"""What a failing test leaves behind: the failing run's trace (JSON) and its diagram (SVG).

Files go to ``$PLANLOOP_FAILURES`` or, when it is not set, ``.planloop/failures``
under the working directory. Inside a hypothesis test only the final, shrunk
example is kept (hypothesis replays it once more at the end), so a property
test that tried hundreds of examples leaves one run to look at, not hundreds.
The paths are added to the exception as a note, which pytest and hypothesis
print with the failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from planloop.engine.result import RunResult
from planloop.engine.trace import Trace

__all__ = [
    "ENV_VAR",
    "failures_dir",
    "in_final_example",
    "keep_failures",
    "note_failure",
    "save_failure",
]

ENV_VAR = "PLANLOOP_FAILURES"
"""The directory failing runs are kept in (default ``.planloop/failures``)."""

_NOTE = "planloop kept the failing"


def failures_dir() -> Path:
    """Where failing runs are kept: ``$PLANLOOP_FAILURES`` or ``.planloop/failures``.

    Example:
        >>> import os
        >>> os.environ["PLANLOOP_FAILURES"] = "/tmp/failures"
        >>> str(failures_dir())
        '/tmp/failures'
        >>> del os.environ["PLANLOOP_FAILURES"]
        >>> failures_dir().as_posix()
        '.planloop/failures'
    """
    return Path(os.environ.get(ENV_VAR) or Path(".planloop") / "failures")


def save_failure(
    run: Trace | RunResult, *, name: str | None = None, directory: Path | None = None
) -> list[Path]:
    """Write ``run``'s trace as JSON and its diagram as SVG; return the paths written.

    The diagram needs Graphviz; without it only the JSON is written (the
    ``planloop show`` command can draw it later, where Graphviz is installed).

    Args:
        run: a run result or its trace.
        name: the files' name without suffix (default: the run id), named as
            ``diagram_dir=`` names a run's picture: characters unsafe in a file name
            are written ``%XX``, so different names never share a file.
        directory: where to write (default: :func:`failures_dir`).

    Example:
        >>> import tempfile
        >>> from planloop import Agent, FunctionPlanner
        >>> agent = Agent(None, [], planner=FunctionPlanner(lambda ctx: "done"), store=False)
        >>> where = Path(tempfile.mkdtemp())
        >>> paths = save_failure(agent.run_sync("x"), name="run", directory=where)
        >>> [p.name for p in paths]
        ['run.json', 'run.svg']
        >>> paths[1].read_text().lstrip().startswith(("<?xml", "<svg"))
        True
    """
    from planloop._diagrams import file_stem
    from planloop.visualize import RenderError, to_svg

    trace = run.trace if isinstance(run, RunResult) else run
    where = (directory if directory is not None else failures_dir()).absolute()
    where.mkdir(parents=True, exist_ok=True)
    stem = file_stem(name if name is not None else trace.run_id)  # as diagram_dir= names it
    written = [where / f"{stem}.json"]
    written[0].write_text(trace.to_json(indent=2), encoding="utf-8")
    try:
        svg = to_svg(trace)
    except RenderError:
        return written
    written.append(where / f"{stem}.svg")
    written[1].write_text(svg, encoding="utf-8")
    return written


def note_failure(exc: BaseException, *runs: Trace | RunResult, always: bool = False) -> None:
    """Keep ``runs`` (see :func:`save_failure`) and add their paths to ``exc`` as a note.

    Inside a hypothesis test this does nothing except in the final (shrunk)
    example, unless ``always``. Outside hypothesis it always keeps the runs.

    Example:
        >>> import tempfile
        >>> from planloop import Agent, FunctionPlanner
        >>> os.environ["PLANLOOP_FAILURES"] = tempfile.mkdtemp()
        >>> result = Agent(None, [], planner=FunctionPlanner(lambda ctx: "done")).run_sync("x")
        >>> err = AssertionError("wrong answer")
        >>> note_failure(err, result)
        >>> note = err.__notes__[0].splitlines()
        >>> note[0], [Path(line.strip()).suffix for line in note[1:]]
        ('planloop kept the failing run (trace and diagram):', ['.json', '.svg'])
        >>> del os.environ["PLANLOOP_FAILURES"]
    """
    if not runs or not (always or _keep_here()):
        return
    if any(str(n).startswith(_NOTE) for n in getattr(exc, "__notes__", ())):
        return  # already kept (check_trace inside a machine's rule, say)
    paths: list[Path] = []
    for run in runs:
        paths.extend(save_failure(run))
    what = "trace and diagram" if any(p.suffix == ".svg" for p in paths) else "trace"
    noun = "run" if len(runs) == 1 else f"{len(runs)} runs"
    listing = "\n".join(f"  {p}" for p in paths)
    exc.add_note(f"{_NOTE} {noun} ({what}):\n{listing}")


@contextmanager
def keep_failures(*runs: Trace | RunResult) -> Iterator[None]:
    """If the block raises, keep ``runs`` (JSON and SVG) and name the files in the error.

    Use it around the assertions of a test, property tests included: hypothesis
    keeps only the final, shrunk example.

    Example:
        >>> import tempfile
        >>> from planloop import Agent, FunctionPlanner
        >>> os.environ["PLANLOOP_FAILURES"] = tempfile.mkdtemp()
        >>> result = Agent(None, [], planner=FunctionPlanner(lambda ctx: "done")).run_sync("x")
        >>> try:
        ...     with keep_failures(result):
        ...         assert result.output == "something else"
        ... except AssertionError as err:
        ...     print(sorted(p.suffix for p in Path(os.environ["PLANLOOP_FAILURES"]).iterdir()))
        ['.json', '.svg']
        >>> del os.environ["PLANLOOP_FAILURES"]
    """
    try:
        yield
    except Exception as exc:
        note_failure(exc, *runs)
        raise


def _keep_here() -> bool:
    """False inside a hypothesis example that is not the final one."""
    final = in_final_example()
    return final is None or final


def in_final_example() -> bool | None:
    """Whether hypothesis is replaying the final (shrunk) failing example;
    ``None`` outside a hypothesis test."""
    try:
        from hypothesis.control import current_build_context, currently_in_test_context
    except ImportError:  # pragma: no cover - hypothesis is an optional dependency
        return None
    if not currently_in_test_context():
        return None
    return bool(current_build_context().is_final)
