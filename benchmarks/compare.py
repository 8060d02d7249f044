"""planloop side by side with a plain-Python floor and its installed peers, as one table.

    ./dev python benchmarks/compare.py                 # planloop and the floor
    ./dev python benchmarks/compare.py --peers         # and every installed peer
    ./dev python benchmarks/compare.py --peers --out benchmarks/results.md
    ./dev python benchmarks/compare.py --quick         # fewer repeats

Every implementation lives in ``benchmarks/peers/`` behind one interface (see its
``__init__``). Each row of each implementation is measured in a fresh process (after an
untimed warm-up at a tiny size), row by row across all implementations so that load on a
shared machine falls on them alike. Times are medians over repeats. A peer cell reads
"value (×r)", r being the peer's cost over planloop's (for throughput: planloop's rate
over the peer's), so r > 1 means planloop is ahead.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import peers  # noqa: E402
import run  # noqa: E402

Cell = float | str
"""A measured value, or the reason there is none."""


@dataclass(frozen=True)
class Row:
    """One scenario of the table."""

    key: str
    label: str
    target: str
    unit: str  # how a value is printed: "us", "ratio", "rate", "s", "MB"
    higher_is_better: bool = False
    limit: float | None = None  # planloop meets the target when within it


ROWS = [
    Row("s1_1000", "S1 loop overhead, K = 1,000, tracing on", "≤ 40 µs/iter", "us", limit=40e-6),
    Row("s1_10", "S1 loop overhead, K = 10", "", "us"),
    Row("s1_flat", "S1 per-iteration cost, K = 10 ÷ K = 1,000", "0.80–1.20", "ratio"),
    Row(
        "s1_ckpt",
        "S1 with a checkpoint after every transition, K = 1,000",
        "≤ 150 µs/iter",
        "us",
        limit=150e-6,
    ),
    Row("fixed", "fixed cost of one run (K = 0)", "≤ 200 µs", "us", limit=200e-6),
    *(
        Row(
            f"s2_{case}_{mode}",
            f"S2 makespan ÷ critical path, {label}, {mode} steps",
            "≤ 1.06",
            "ratio",
            limit=1.06,
        )
        for case, label in (
            ("fan", "50 × 50 ms fan-out + join"),
            ("layered", "5 × 20 layered × 20 ms"),
        )
        for mode in ("sync", "async")
    ),
    Row(
        "s3",
        "S3 throughput, 10,001 no-op steps (100 chains of 100 + join)",
        "≥ 100,000 steps/s",
        "rate",
        higher_is_better=True,
        limit=100_000,
    ),
    Row("import", "S4 import time (fresh process, median of 5)", "≤ 0.3 s", "s", limit=0.3),
    Row("rss", "S4 peak RSS of S1, K = 1,000 (fresh process)", "≤ 60 MB", "MB", limit=60.0),
    Row("render", "render a 1,000-iteration trace to SVG", "≤ 2 s", "s", limit=2.0),
]

GRAPHS = {"fan": run.fan_out_graph, "layered": run.layered_graph}


def warm_up(fn: Callable[[], object], budget: float = 0.5, most: int = 20) -> None:
    """Call ``fn`` untimed until ``budget`` seconds are spent (at least once, at most
    ``most`` times). The first runs in a process are slower (the heap grows, caches
    fill): for a run of tens of microseconds, the first ten or so cost 1.5-3x the
    rest, which would move the median of a short series."""
    start = time.perf_counter()
    for _ in range(most):
        fn()
        if time.perf_counter() - start >= budget:
            return


def measure(fn: Callable[[], float], repeats: int, budget: float = 15.0) -> float:
    """Median of ``repeats`` calls, fewer (at least 3) once ``budget`` seconds are spent."""
    values: list[float] = []
    start = time.perf_counter()
    while len(values) < repeats and (len(values) < 3 or time.perf_counter() - start < budget):
        values.append(fn())
    return statistics.median(values)


def flatness(
    s1: Callable[[int], float], rounds: int, budget: float = 30.0, shorts: int = 10
) -> float:
    """Median per-iteration time of a K = 10 run over that of a K = 1,000 run, both
    measured in one process, in alternating rounds (one K = 1,000 run, then ``shorts``
    K = 10 runs), so a change in the machine's speed falls on both alike; fewer rounds
    (at least 3) once ``budget`` seconds are spent. Each time is one whole run over K,
    so the K = 10 side carries a tenth of the run's fixed cost.

    Ten short runs to a round, not fewer: the first one or two after a K = 1,000 run
    start on CPU caches that run's teardown (freeing its whole trace) left cold, and
    cost 1.3-1.5x the later ones (as after writing 16 MB of memory; no page faults or
    collections happen in them). With ten, the median is a K = 10 run's steady
    state, as the K = 1,000 side's is its own iterations'."""
    short: list[float] = []
    long: list[float] = []
    start = time.perf_counter()
    while len(long) < rounds and (len(long) < 3 or time.perf_counter() - start < budget):
        long.append(s1(1000) / 1000)
        short.extend(s1(10) / 10 for _ in range(shorts))
    return statistics.median(short) / statistics.median(long)


def guarded(fn: Callable[[], Cell]) -> Cell:
    """The value, or "n/a: why" when the implementation cannot express the scenario."""
    try:
        return fn()
    except peers.NotExpressible as e:
        return f"n/a: {e}"


def _subprocess_float(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=BENCHMARKS
    )
    return float(out.stdout.strip().splitlines()[-1])


def peak_rss(module: str, k: int = 1000) -> float:
    """MB: peak resident set of a fresh process that runs only this implementation's S1.

    Read as VmHWM from /proc where there is one: ``ru_maxrss`` of a child started from a
    large parent reports the parent's peak, which Linux carries across exec.
    """
    code = (
        f"import resource, sys; sys.path.insert(0, {str(BENCHMARKS)!r}); import peers; "
        f"peers.load({module!r}).s1({k}); "
        "from pathlib import Path; p = Path('/proc/self/status'); "
        "hwm = [l for l in p.read_text().splitlines() if l.startswith('VmHWM')] "
        "if p.exists() else []; "
        "print(int(hwm[0].split()[1]) / 1024 if hwm "
        "else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    return _subprocess_float(code)


def import_time(statement: str, repeats: int = 5) -> float:
    """Seconds: median over fresh processes of running ``statement`` (bytecode compiled
    and cached by one untimed run first, see ``run.bytecode_env``)."""
    return float(run.import_time(statement, repeats, cwd=str(BENCHMARKS)))


def cell(module: str, key: str, repeats: int) -> Cell:
    """One row for one implementation, measured here (after an untimed warm-up)."""
    impl = peers.load(module)
    if key.startswith("s2_"):
        _, case, mode = key.split("_")
        graph, critical = GRAPHS[case]()
        impl.s2(graph, mode == "sync")
        return measure(lambda: impl.s2(graph, mode == "sync"), repeats) / critical
    if key == "s3":
        impl.s3(2, 3)
        return measure(impl.s3, repeats)
    if key == "render":
        return measure(run.render_long_run, repeats) if module == "planloop_impl" else "—"
    if key == "s1_flat":
        warm_up(lambda: impl.s1(10))
        # Rounds are cheap where runs are fast: five per repeat, the budget caps slow ones.
        return flatness(impl.s1, repeats * 5)
    k, checkpoint, times = {
        "s1_1000": (1000, False, repeats),
        "s1_10": (10, False, repeats * 3),
        "s1_ckpt": (1000, True, repeats),
        "fixed": (0, False, repeats * 5),
    }[key]
    if checkpoint and module == "floor":
        return "—"
    impl.s1(2, checkpoint=checkpoint)
    if k <= 10:  # short runs, where the first ones of a process would move the median
        warm_up(lambda: impl.s1(k, checkpoint=checkpoint))
    return measure(lambda: impl.s1(k, checkpoint=checkpoint), times) / max(k, 1)


def fresh_cell(module: str, key: str, repeats: int, checkout: Path | None = None) -> Cell:
    """:func:`cell` in a fresh process, so no implementation's imports, heap or threads
    weigh on another's numbers; a failure becomes the cell's text. With ``checkout``
    (a planloop checkout), that checkout's ``compare.py`` measures it with that
    checkout's planloop (``ab.py`` compares two this way)."""
    if key == "import":
        statement = peers.load(module).IMPORT
        return import_time(statement) if statement else "—"
    if key == "rss":
        return "—" if module == "floor" else peak_rss(module)
    where = BENCHMARKS if checkout is None else checkout / "benchmarks"
    env = None if checkout is None else dict(os.environ, PYTHONPATH=str(checkout))
    out = subprocess.run(
        [sys.executable, "compare.py", "--cell", module, key, "--repeats", str(repeats)],
        capture_output=True,
        text=True,
        cwd=where,
        env=env,
    )
    if out.returncode:
        lines = out.stderr.strip().splitlines() or ["no output"]
        return f"error: {lines[-1]}"
    value = json.loads(out.stdout.strip().splitlines()[-1])
    return float(value) if isinstance(value, int | float) else str(value)


def measure_all(modules: list[str], repeats: int) -> dict[str, dict[str, Cell]]:
    """Every row for every implementation: {module: {row key: cell}}.

    Row by row, each implementation in turn, so that load on a shared machine
    falls on all of them alike.
    """
    cells: dict[str, dict[str, Cell]] = {m: {} for m in modules}
    for row in ROWS:
        for m in modules:
            print(f"  {row.key:<16} {peers.load(m).NAME}", file=sys.stderr, flush=True)
            cells[m][row.key] = fresh_cell(m, row.key, repeats)
    return cells


def fmt(row: Row, value: Cell) -> str:
    if isinstance(value, str):
        return value
    return {
        "us": f"{value * 1e6:,.1f} µs",
        "ratio": f"{value:.3f}",
        "rate": f"{value:,.0f} steps/s",
        "s": f"{value:.3f} s",
        "MB": f"{value:.1f} MB",
    }[row.unit]


def meets(row: Row, value: Cell) -> str:
    if not isinstance(value, float):
        return ""
    if row.key == "s1_flat":
        ok = 0.8 <= value <= 1.2
    elif row.limit is None:
        return ""
    else:
        ok = value >= row.limit if row.higher_is_better else value <= row.limit
    return " ✓" if ok else " ✗"


def versus(row: Row, peer: Cell, ours: Cell) -> str:
    """The peer's cell with its cost relative to planloop's."""
    text = fmt(row, peer)
    if not (isinstance(peer, float) and isinstance(ours, float)) or row.key == "s1_flat":
        return text
    if row.unit == "ratio":  # makespan ratios: compare the overhead above the critical path
        return text
    r = ours / peer if row.higher_is_better else peer / ours
    return f"{text} (×{r:.1f})"


def over_floor(row: Row, ours: Cell, floor: Cell) -> str:
    """planloop's cost over the floor's (makespan ratios: planloop's makespan over the floor's)."""
    if not (isinstance(ours, float) and isinstance(floor, float)) or row.key == "s1_flat":
        return ""
    if row.unit == "ratio":
        return f"{ours / floor:.3f}"
    return f"{(floor / ours if row.higher_is_better else ours / floor):.1f}×"


def table(cells: dict[str, dict[str, Cell]]) -> str:
    others = [m for m in cells if m not in ("floor", "planloop_impl")]
    names = [peers.load(m).NAME for m in others]
    head = ["scenario", "target", "plain-Python floor", "planloop", "planloop ÷ floor", *names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in ROWS:
        floor, ours = cells["floor"].get(row.key, "—"), cells["planloop_impl"].get(row.key, "—")
        line = [row.label, row.target, fmt(row, floor), fmt(row, ours) + meets(row, ours)]
        line.append(over_floor(row, ours, floor))
        line += [versus(row, cells[m].get(row.key, "—"), ours) for m in others]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in line) + " |")
    return "\n".join(lines)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def report(
    cells: dict[str, dict[str, Cell]], skipped: list[str], load: tuple[str, str], command: str
) -> str:
    dists = ["planloop", "langgraph", "apache-burr", "pydantic-graph", "langchain-classic"]
    versions = ", ".join(f"{d} {_version(d)}" for d in dists)
    parts = [
        "# planloop benchmarks: side by side",
        "",
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC with `{command}` "
        f"on Python {platform.python_version()}, {platform.system()}, {os.cpu_count()} CPUs. "
        f"{versions}.",
        "",
        f"Load average {load[0]} at the start, {load[1]} at the end (the benchmark itself "
        "keeps about one core busy; more means other work shared the machine). Sleep-based "
        "rows (S2) move by a few percent between runs on this VM, floors included; the ratios "
        "between columns, measured interleaved, are steadier.",
        "",
        "A peer cell reads `value (×r)`: r is the peer's cost over planloop's (for throughput, "
        "planloop's rate over the peer's), so r > 1 means planloop is ahead. ✓ / ✗: planloop "
        "against the target. S1 and the fixed cost use planloop's async no-op tool; "
        "`benchmarks/run.py` also shows the sync tool.",
        "",
        table(cells),
        "",
    ]
    if skipped:
        parts += [f"Not installed, so not measured: {', '.join(skipped)}.", ""]
    parts += ["## How each implementation works", ""]
    for m in cells:
        doc = inspect.getdoc(peers.load(m)) or ""
        parts += [f"### {peers.load(m).NAME}", "", doc, ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", action="store_true", help="also every installed peer")
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--out", type=Path, help="write the report (markdown) here")
    parser.add_argument("--cell", nargs=2, metavar=("MODULE", "ROW"), help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    if args.cell:  # the child of fresh_cell
        print(json.dumps(guarded(lambda: cell(*args.cell, repeats))))
        return
    modules = ["floor", "planloop_impl"]
    skipped: list[str] = []
    if args.peers:
        for m in peers.PEERS:
            if peers.installed(m):
                modules.append(m)
            else:
                skipped.append(f"{peers.load(m).NAME} (`{peers.load(m).PACKAGE}`)")
                print(f"skipping {peers.load(m).NAME}: not installed", file=sys.stderr)
    start_load = "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())
    cells = measure_all(modules, repeats)
    end_load = "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())
    command = " ".join(["./dev python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    text = report(cells, skipped, (start_load, end_load), command)
    print(table(cells))
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
