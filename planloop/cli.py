"""The ``planloop`` command.

Exit codes: 0 the run finished (or the command succeeded), 1 the run stopped or
failed (or a replay differs from the recording), 2 a usage error (bad option,
unknown or ambiguous run id, missing definition file, an unreadable trace or
store, an output file or folder that cannot be written, a run that cannot be
resumed or replayed, no Graphviz to draw an image), 3 the run is paused, waiting
for a decision.
Every error is printed as one ``Error: ...`` message on stderr, with no traceback.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from planloop._cli_errors import EXIT_FINISHED, EXIT_PAUSED, EXIT_STOPPED
from planloop._cli_errors import fail as _fail
from planloop._cli_errors import planloop_errors as _errors
from planloop._cli_errors import writing as _writing
from planloop._cli_output import EVERY_FORMAT, PICTURES
from planloop._cli_output import output_format as _output_format
from planloop._cli_output import text as _text
from planloop._cli_output import write as _write
from planloop._cli_progress import Progress
from planloop._cli_runs import StoreAt, lease_lines
from planloop._cli_runs import StoreType as _StoreType
from planloop._cli_runs import has_runs as _has_runs
from planloop._cli_runs import open_store as _open
from planloop._cli_runs import shown as _shown
from planloop._cli_runs import started as _started
from planloop._cli_runs import store_path as _store_path
from planloop._cli_runs import stored_run as _stored_run
from planloop._cli_runs import table as _table

if TYPE_CHECKING:
    from planloop._runnable import Runnable
    from planloop.engine.durable import Decision
    from planloop.engine.pending import Pending
    from planloop.engine.result import RunResult

__all__ = ["main"]

_EPILOG = """\b
Runs are recorded in $PLANLOOP_HOME/planloop.db, or ./.planloop/planloop.db
when PLANLOOP_HOME is not set; --store PATH reads and writes another file,
and --store postgresql://USER:PASSWORD@HOST:PORT/DB (or PLANLOOP_STORE=that URL)
a PostgreSQL database (pip install 'planloop[postgresql]').
RUN_ID may be the first characters of a run id that no other id starts with.

\b
Exit codes:
  0  the run finished (or the command succeeded)
  1  the run stopped (a limit, an error), or a replay differs from the recording
  2  usage error: bad option, unknown or ambiguous run id, missing definition
     file, an unreadable trace or store, an output that cannot be written (-o,
     --out), a run that cannot be resumed or replayed, no Graphviz to draw an image
  3  the run is paused, waiting for a decision (planloop resume)
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=_EPILOG)
@click.version_option(package_name="planloop")
@click.option(
    "--store",
    "store_path",
    type=_StoreType(),
    default=None,
    help="The run store to use instead of the default one: a SQLite file, or a postgresql:// URL.",
)
@click.pass_context
def main(ctx: click.Context, store_path: StoreAt | None) -> None:
    """Run agents and workflows as typed state machines, and draw every run."""
    ctx.obj = store_path


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
@click.option(
    "--model",
    "-m",
    "model_name",
    default=None,
    help=(
        "Plan with this chat model (e.g. gpt-4o-mini, llama3.2) on an OpenAI-compatible "
        "server. Default: $PLANLOOP_MODEL; when neither is set the demo runs offline."
    ),
)
@click.option(
    "--base-url",
    default=None,
    help=(
        "The model server's API root (e.g. http://localhost:11434/v1 for Ollama). "
        "Default: $OPENAI_BASE_URL, else OpenAI. The key comes from $OPENAI_API_KEY."
    ),
)
@click.option(
    "--offline", is_flag=True, help="Use the rule-based planner even when PLANLOOP_MODEL is set."
)
def demo(
    question: str | None,
    out_dir: Path,
    model_name: str | None,
    base_url: str | None,
    offline: bool,
) -> None:
    """Run the demo agent and write a diagram of its run.

    Offline by default: a rule-based planner drives real tools. With --model (or
    PLANLOOP_MODEL) a chat model plans instead.
    """
    from planloop.demo import DEFAULT_QUESTION, run_demo
    from planloop.errors import DefinitionError, RenderError

    model = None
    if offline and (model_name or base_url):
        _fail("--offline cannot be combined with --model or --base-url")
    if not offline:
        from planloop.models import from_env

        try:
            model = from_env(model=model_name, base_url=base_url)
        except DefinitionError as exc:
            _fail(str(exc))
        if model is None and base_url:
            _fail("--base-url needs a model: pass --model NAME or set PLANLOOP_MODEL")
    try:
        with _writing("--out"):
            out_dir.mkdir(parents=True, exist_ok=True)  # before the run: a bad --out costs none
            result, _ = run_demo(
                question or DEFAULT_QUESTION, out_dir=out_dir, echo=click.echo, model=model
            )
    except RenderError as exc:  # no Graphviz: the trace (JSON) is written, the SVG is not
        _fail(str(exc))
    sys.exit(0 if result.status == "finished" else 1)


@main.command(short_help="Draw a trace saved as JSON.")
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
    type=click.Choice(PICTURES),
    default=None,
    help=(
        "'dot' and 'mermaid' are text (printed, or written to --output); svg, png "
        "and pdf need --output. Default: from the suffix of --output, else dot."
    ),
)
def render(trace_file: Path, output: Path | None, fmt: str | None) -> None:
    """Draw a trace saved as JSON (by `planloop demo`, or `planloop show RUN_ID -o run.json`)."""
    from planloop.engine.trace import Trace, TraceError

    fmt = _output_format(output, fmt, PICTURES)
    try:
        trace = Trace.from_json(trace_file.read_bytes())
    except OSError as exc:
        _fail(f"cannot read {trace_file}: {exc.strerror or exc}")
    except TraceError as exc:
        _fail(f"{trace_file}: {exc}")
    if output is None:
        click.echo(_text(trace, fmt), nl=False)
    else:
        click.echo(str(_write(trace, output, fmt)))


# ---------------------------------------------------------------------------
# Durable runs


@main.command("run", short_help="Run FILE.py:NAME, recorded in the store.")
@click.argument("target", metavar="FILE.py:NAME")
@click.option("--input", "-i", "input_text", default=None, help="The run's input (text).")
@click.pass_obj
def run_command(store_path: StoreAt | None, target: str, input_text: str | None) -> None:
    """Run the agent or workflow NAME defined in FILE.py, recorded in the store.

    NAME is an Agent, Workflow or PlanAndExecute object at the top level of the
    file. The run is recorded with where it is defined, so that `planloop resume`
    can build it again in another process.

    \b
    Example:
      planloop run agents.py:helper --input "What is 2 + 3?"
    """
    runnable = _load(target)
    _use_store(runnable, store_path)
    with _errors(), Progress() as progress:
        result = _ran(lambda: runnable.run_sync(input_text, on_event=progress))
    _report(result)


@main.command("runs")
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many of the latest runs to list.",
)
@click.pass_obj
def runs_command(store_path: StoreAt | None, limit: int) -> None:
    """List the latest runs in the store, newest first.

    STATUS is `abandoned` for a run that says running but whose process is gone (it
    stopped renewing its lease); `planloop resume` continues it.
    """
    path = _store_path(store_path)
    if not _has_runs(path):
        click.echo(f"no runs recorded yet in {path}")
        return
    with _errors():
        records = _open(path).list_runs(limit=limit)
    if not records:
        click.echo(f"no runs recorded yet in {_shown(path)}")
        return
    rows = [
        (
            r.run_id,
            r.name or "-",
            _started(r),
            r.state,  # "abandoned": running, but its process is gone (lease expired)
            r.stop_reason or "-",
            str(r.iterations),
            "-" if r.duration is None else f"{r.duration:.2f}s",
        )
        for r in records
    ]
    header = ("RUN ID", "NAME", "STARTED", "STATUS", "STOP REASON", "ITERATIONS", "DURATION")
    for line in _table([header, *rows]):
        click.echo(line)


@main.command("show", short_help="Summarize a stored run; write its trace or picture.")
@click.argument("run_id")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=(
        "Also write the run here: its trace as JSON (.json, what `planloop render` "
        "reads), or its picture (.svg, .png, .pdf, .dot, .mmd)."
    ),
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(EVERY_FORMAT),
    default=None,
    help=(
        "What to write when the suffix of --output does not say. Without --output, "
        "json, dot and mermaid are printed instead of the summary."
    ),
)
@click.pass_obj
def show_command(
    store_path: StoreAt | None, run_id: str, output: Path | None, fmt: str | None
) -> None:
    """Summarize the stored run RUN_ID (or the first characters of its id), and
    optionally write its trace or picture."""
    if output is not None or fmt is not None:
        fmt = _output_format(output, fmt, EVERY_FORMAT)  # before anything is read
    store, record = _stored_run(store_path, run_id)
    with _errors():
        trace = store.load_trace(record.run_id)
    if fmt is not None and output is None:
        click.echo(_text(trace, fmt), nl=False)
        return
    duration = "-" if record.duration is None else f"{record.duration:.2f}s"
    statuses: dict[str, int] = {}
    for step in trace.step_results:
        statuses[step.status.value] = statuses.get(step.status.value, 0) + 1
    counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    lines = [
        ("run", record.run_id),
        ("name", record.name or "-"),
        ("definition", record.definition or "-"),
        ("status", _status_text(record.state, record.stop_reason)),
        *lease_lines(record),
        ("started", _started(record)),
        ("duration", duration),
        ("iterations", str(record.iterations)),
        ("states", " -> ".join(str(s) for s in trace.states)),
        ("steps", f"{len(trace.step_results)} ({counts})" if counts else "0"),
        ("input", _short(trace.input)),
    ]
    if trace.ended is not None:
        lines.append(("output", _short(trace.output)))
        if trace.ended.error:
            lines.append(("error", trace.ended.error))
    for label, value in lines:
        click.echo(f"{label + ':':<12}{value}")
    if record.status == "paused":
        from planloop.engine.pending import Pending

        _pending(Pending.of(trace), record.run_id)
    if fmt is not None and output is not None:
        written = _write(trace, output, fmt)
        click.echo(f"{'trace' if fmt == 'json' else 'picture'}: {written}")


@main.command("resume", short_help="Continue a paused or interrupted run.")
@click.argument("run_id")
@click.option("--approve", is_flag=True, help="Go on as planned.")
@click.option(
    "--reject",
    metavar="MESSAGE",
    default=None,
    help="Do not do it; MESSAGE becomes the observation.",
)
@click.option(
    "--edit",
    metavar="PLAN.json",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Execute this plan (JSON) instead; for plan-and-execute, a JSON list of step texts.",
)
@click.pass_obj
def resume_command(
    store_path: StoreAt | None, run_id: str, approve: bool, reject: str | None, edit: Path | None
) -> None:
    """Continue the stored run RUN_ID: a paused one with a decision, or one whose
    process died (without one).

    The agent or workflow is built again from the file recorded when the run was
    started with `planloop run`.
    """
    chosen = [
        name
        for name, given in (
            ("--approve", approve),
            ("--reject", reject is not None),
            ("--edit", edit),
        )
        if given
    ]
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} exclude each other; give one decision")
    path = _store_path(store_path)
    _, record = _stored_run(store_path, run_id)
    run_id = record.run_id
    if record.definition is None:
        _fail(
            f"run {run_id!r} has no recorded definition (it was not started with "
            "`planloop run`); resume it from Python with the object that started it"
        )
    decision = _decision(approve, reject, edit)
    runnable = _load(record.definition, recorded_for=run_id)
    runnable.store = path
    with _errors(), Progress() as progress:
        result = _ran(lambda: runnable.resume_sync(run_id, decision, on_event=progress))
    _report(result)


@main.command("replay", short_help="Replay a stored run without models or tools.")
@click.argument("run_id")
@click.pass_obj
def replay_command(store_path: StoreAt | None, run_id: str) -> None:
    """Replay the stored run RUN_ID from its trace, calling no model and no tool.

    Exits 0 when the replay reproduces the recorded state path, step results and
    output, 1 when it differs (the differences are listed).
    """
    from planloop.engine.replay import ReplayError

    store, record = _stored_run(store_path, run_id)
    run_id = record.run_id
    with _errors():
        trace = store.load_trace(run_id)
    try:
        replayed = trace.replay()
    except ReplayError as exc:
        _fail(str(exc))
    result = replayed.result
    click.echo(f"replayed run {run_id}")
    click.echo(f"states: {' -> '.join(str(s) for s in replayed.trace.states)}")
    click.echo(f"status: {_status_text(result.status, result.stop_reason)}")
    click.echo(f"output: {_short(result.output)}")
    if replayed.matches:
        click.echo("the replay matches the recorded run")
        return
    click.echo("the replay differs from the recorded run:")
    for line in replayed.differences:
        click.echo(f"  - {line}")
    sys.exit(EXIT_STOPPED)


@main.command("prune", short_help="Delete the runs that ended long ago.")
@click.option(
    "--older-than",
    required=True,
    metavar="AGE",
    help="Delete the runs that ended more than AGE ago: 45s, 90m, 12h, 30d or 2w.",
)
@click.option(
    "--status",
    default="finished,stopped",
    show_default=True,
    help="Only runs that ended with these statuses (comma-separated).",
)
@click.option("--dry-run", is_flag=True, help="List the runs it would delete, and delete none.")
@click.pass_obj
def prune_command(store_path: StoreAt | None, older_than: str, status: str, dry_run: bool) -> None:
    """Delete the runs that ended more than AGE ago, each with its events, checkpoints
    and sub-run traces, all in one transaction; say how many went.

    Running and paused runs are never deleted. The file keeps the space for new runs;
    `sqlite3 FILE VACUUM` gives it back to the disk.
    """
    from planloop._cli_prune import prune

    prune(_store_path(store_path), older_than, status, dry_run=dry_run)


# ---------------------------------------------------------------------------
# Helpers


def _use_store(runnable: Runnable, option: StoreAt | None) -> None:
    if option is not None:
        runnable.store = option


def _ran(call: Callable[[], RunResult]) -> RunResult:
    from planloop.errors import RunError

    try:
        return call()
    except RunError as exc:
        if exc.result is None:
            raise
        return exc.result


def _load(target: str, *, recorded_for: str | None = None) -> Runnable:
    """The object ``FILE.py:NAME`` names, with its ``definition`` set to where it is."""
    from planloop._runnable import Runnable

    file, sep, name = target.rpartition(":")
    if not sep or not file or not name:
        raise click.UsageError(f"{target!r} is not FILE.py:NAME (for example agents.py:helper)")
    path = Path(file).expanduser().absolute()
    whose = f" (the definition of run {recorded_for!r})" if recorded_for else ""
    if not path.is_file():
        _fail(f"{path}: no such file{whose}")
    module_name = f"_planloop_definition_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        _fail(f"{path}: not a Python file{whose}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:  # not this command's exit code: the file is not a definition
        _fail(f"{path}: importing it called sys.exit({exc.code!r}){whose}")
    except Exception as exc:  # noqa: BLE001 - the user's file failed to import: say so in one line
        _fail(f"{path}: importing it raised {type(exc).__name__}: {exc}{whose}")
    finally:
        sys.path.remove(str(path.parent))
    obj = getattr(module, name, None)
    if not isinstance(obj, Runnable):
        names = [n for n, value in vars(module).items() if isinstance(value, Runnable)]
        defined = (
            f"it defines: {', '.join(names)}"
            if names
            else "it defines no Agent, Workflow or PlanAndExecute at its top level"
        )
        if obj is None:
            _fail(f"{path} has no {name!r}; {defined}{whose}")
        _fail(
            f"{path}:{name} is not an Agent, Workflow or PlanAndExecute "
            f"(its type is {type(obj).__name__}); {defined}{whose}"
        )
    obj.definition = f"{path}:{name}"
    return obj


def _decision(approve: bool, reject: str | None, edit: Path | None) -> Decision | None:
    from planloop.engine.durable import Approve, Edit, Reject
    from planloop.engine.plan import Plan

    if approve:
        return Approve()
    if reject is not None:
        return Reject(message=reject)
    if edit is None:
        return None
    try:
        text = edit.read_text(encoding="utf-8")
    except OSError as exc:
        _fail(f"{edit}: cannot read the plan: {exc.strerror}")
    from pydantic import ValidationError

    try:
        steps = json.loads(text)
    except ValueError:
        steps = None
    if isinstance(steps, list) and all(isinstance(s, str) for s in steps):
        return Edit(steps=steps)  # a plan-and-execute plan: its steps' texts
    try:
        return Edit(plan=Plan.model_validate_json(text))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        _fail(f"{edit}: not a valid plan: at {where}: {err['msg']}")


def _report(result: RunResult) -> None:
    click.echo(f"run: {result.run_id}")
    click.echo(f"status: {_status_text(result.status, result.stop_reason)}")
    if result.status == "paused":
        _pending(result.pending, result.run_id)
        sys.exit(EXIT_PAUSED)
    click.echo(f"output: {_short(result.output)}")
    ended = result.trace.ended
    if ended is not None and ended.error:
        click.echo(f"error: {ended.error}")
    sys.exit(EXIT_FINISHED if result.status == "finished" else EXIT_STOPPED)


def _status_text(status: str, stop_reason: str | None) -> str:
    return f"{status} ({stop_reason})" if stop_reason else str(status)


def _pending(pending: Pending | None, run_id: str) -> None:
    """What a paused run waits for (secrets redacted), and how to decide it."""
    for line in pending.describe() if pending is not None else ():
        click.echo(line)
    click.echo(
        f"waiting for a decision: planloop resume {run_id} "
        "--approve | --reject MESSAGE | --edit PLAN.json"
    )


def _short(value: Any, width: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split("\n")) if "\n" in text else text
    return text if len(text) <= width else text[: width - 3] + "..."


if __name__ == "__main__":  # pragma: no cover
    main()
