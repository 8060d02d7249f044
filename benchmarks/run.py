"""planloop benchmarks: loop overhead against a plain-Python floor, in one run.

    ./dev python benchmarks/run.py            # all scenarios, markdown table on stdout
    ./dev python benchmarks/run.py --quick    # fewer repeats
    ./dev python benchmarks/run.py --peers --out benchmarks/results.md
                                              # side by side with every installed peer
                                              # (benchmarks/compare.py; see README.md)

Each number is a median over repeats. For S1 the floor does the same work as
the loop (ask a scripted model, call the tool, keep the history) in plain
Python, a sync tool on a warm thread pool; for S2 and S3 it is a plain
event-driven asyncio scheduler with no trace and no checks (sync steps on a
warm pool of 64 threads). The ratio shows what planloop's machine, trace and
scheduler cost. S3 also says how much of its run the cyclic garbage collector
took. "fixed cost" is measured twice: a fresh agent's first run (its tool builds
its JSON schema then) and a run of an agent already used once.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import planloop
from planloop.models import ToolCall
from planloop.testing import ScriptedModel


def noop(x: int) -> int:
    """Return x."""
    return x


async def noop_async(x: int) -> int:
    """Return x."""
    return x


def agent_run(k: int, *, sync_tool: bool, store: Any = False) -> float:
    """Seconds for one run of K iterations (scripted model, one no-op tool call each).

    ``store``: where the run is recorded, with a checkpoint after every transition
    (``False``: not recorded, only traced in memory).
    """
    fn = noop if sync_tool else noop_async
    tool = planloop.Tool(fn, name="noop")
    model = ScriptedModel([ToolCall("noop", {"x": 1})] * k + ["done"])
    agent = planloop.Agent(model, [tool], max_iterations=None, store=store)

    async def go() -> float:
        t0 = time.perf_counter()
        result = await agent.run("go")
        dt = time.perf_counter() - t0
        assert result.iterations == k
        return dt

    return asyncio.run(go())


def warm_agent_run(*, sync_tool: bool = False) -> float:
    """Seconds for the second K=0 run of one agent: what a run costs once the
    agent's tools have been used (a tool builds its JSON schema on first use)."""
    fn = noop if sync_tool else noop_async
    tool = planloop.Tool(fn, name="noop")
    agent = planloop.Agent(ScriptedModel(["done", "done"]), [tool], store=False)

    async def go() -> float:
        await agent.run("go")
        t0 = time.perf_counter()
        await agent.run("go")
        return time.perf_counter() - t0

    return asyncio.run(go())


def floor_run(k: int, *, sync_tool: bool = False) -> float:
    """The same work in plain Python: model call, tool call, history, k times.

    With ``sync_tool`` the tool is called on a warm thread pool, as a sync tool
    must be (the loop cannot wait for it on its own thread).
    """
    model = ScriptedModel([ToolCall("noop", {"x": 1})] * k + ["done"])

    async def go() -> float:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        history: list[tuple[object, object]] = []
        while True:
            response = await model.chat([])
            calls = response.message.tool_calls
            if not calls:
                break
            for call in calls:
                if sync_tool:
                    value = await loop.run_in_executor(_FLOOR_POOL, partial(noop, **call.args))
                else:
                    value = await noop_async(**call.args)
                history.append((call, value))
        return time.perf_counter() - t0

    return asyncio.run(go())


def _sleeper(seconds: float, sync: bool) -> Any:
    """A step that sleeps ``seconds`` (none for 0, as the peers' joins), sync or async."""
    if sync:

        def work(**_: Any) -> float:
            if seconds:
                time.sleep(seconds)
            return seconds

        return work

    async def work_async(**_: Any) -> float:
        if seconds:
            await asyncio.sleep(seconds)
        return seconds

    return work_async


Graph = dict[str, tuple[list[str], float]]
"""Step id -> (dependencies, seconds it sleeps)."""


def fan_out_graph() -> tuple[Graph, float]:
    """50 independent 50 ms steps, then a join: (graph, critical path)."""
    graph: Graph = {f"s{i}": ([], 0.05) for i in range(50)}
    graph["join"] = (list(graph), 0.0)
    return graph, 0.05


def layered_graph() -> tuple[Graph, float]:
    """5 layers of 20 steps of 20 ms, random edges between layers (seed 7)."""
    rng = random.Random(7)
    graph: Graph = {}
    previous: list[str] = []
    for layer in range(5):
        current = []
        for i in range(20):
            deps = rng.sample(previous, k=min(len(previous), rng.randint(1, 3))) if previous else []
            graph[f"l{layer}_{i}"] = (deps, 0.02)
            current.append(f"l{layer}_{i}")
        previous = current
    return graph, 0.1


def _timed(wf: planloop.Workflow) -> float:
    """Seconds of ``await wf.run()`` on a running event loop, timed as the floor is:
    starting and closing the loop (``asyncio.run``) is outside the clock."""

    async def go() -> float:
        t0 = time.perf_counter()
        result = await wf.run()
        elapsed = time.perf_counter() - t0
        assert result.status == "finished"
        return elapsed

    return asyncio.run(go())


def planloop_makespan(graph: Graph, sync: bool) -> float:
    """The graph as a planloop workflow, default settings."""
    wf = planloop.Workflow("makespan", store=False)
    for sid, (deps, seconds) in graph.items():
        fn = _sleeper(seconds, sync)  # the join too: async steps are all async
        wf.step(fn, id=sid, depends_on=deps)
    return _timed(wf)


async def plain_schedule(graph: Graph, work: Callable[[str], Awaitable[None]]) -> float:
    """The floor: a plain event-driven asyncio scheduler, no trace, no checks (seconds)."""
    dependents: dict[str, list[str]] = {sid: [] for sid in graph}
    for sid, (deps, _) in graph.items():
        for d in deps:
            dependents[d].append(sid)
    loop = asyncio.get_running_loop()
    waiting = {sid: len(deps) for sid, (deps, _) in graph.items()}
    done: asyncio.Future[None] = loop.create_future()
    left = [len(graph)]
    tasks: set[asyncio.Task[None]] = set()

    async def run(sid: str) -> None:
        await work(sid)
        left[0] -= 1
        if not left[0]:
            done.set_result(None)
        for nxt in dependents[sid]:
            waiting[nxt] -= 1
            if not waiting[nxt]:
                tasks.add(loop.create_task(run(nxt)))

    t0 = time.perf_counter()
    for sid, count in waiting.items():
        if not count:
            tasks.add(loop.create_task(run(sid)))
    await done
    return time.perf_counter() - t0


_FLOOR_POOL = ThreadPoolExecutor(max_workers=64)  # warm across repeats, like planloop's


def plain_makespan(graph: Graph, sync: bool) -> float:
    """The floor for S2; sync steps run on a warm ThreadPoolExecutor of 64 threads."""

    async def go() -> float:
        loop = asyncio.get_running_loop()

        async def work(sid: str) -> None:
            seconds = graph[sid][1]
            if sync:
                await loop.run_in_executor(_FLOOR_POOL, time.sleep, seconds)
            else:
                await asyncio.sleep(seconds)

        return await plain_schedule(graph, work)

    return asyncio.run(go())


def plain_throughput() -> float:
    """The floor for S3: the same 10,001 no-op steps, no trace."""
    graph: Graph = {}
    ends = []
    for c in range(100):
        for i in range(100):
            graph[f"c{c}_{i}"] = ([f"c{c}_{i - 1}"] if i else [], 0.0)
        ends.append(f"c{c}_99")
    graph["join"] = (ends, 0.0)

    async def work(sid: str) -> None:
        return None

    return len(graph) / asyncio.run(plain_schedule(graph, work))


_GC_SECONDS = [0.0, 0.0]  # time in the cyclic garbage collector; when a collection began


def _gc_clock(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _GC_SECONDS[1] = time.perf_counter()
    else:
        _GC_SECONDS[0] += time.perf_counter() - _GC_SECONDS[1]


def throughput_and_gc() -> tuple[float, float]:
    """:func:`throughput` and the share of its run spent in the cyclic garbage collector."""
    _GC_SECONDS[0] = 0.0
    gc.callbacks.append(_gc_clock)
    try:
        t0 = time.perf_counter()
        rate = throughput()
        total = time.perf_counter() - t0
    finally:
        gc.callbacks.remove(_gc_clock)
    # ``total`` includes building the workflow; the share is of the timed run only.
    run = 10_001 / rate
    return rate, min(_GC_SECONDS[0], total) / run


def throughput() -> float:
    """Steps per second: 100 chains of 100 async no-op steps, then a join (10,001 steps)."""

    async def noop_step(**_: Any) -> None:
        return None

    wf = planloop.Workflow("throughput", store=False)
    ends = []
    for c in range(100):
        prev: planloop.StepHandle | None = None
        for i in range(100):
            prev = wf.step(noop_step, id=f"c{c}_{i}", depends_on=[prev] if prev else [])
        ends.append(prev)
    wf.step(noop_step, id="join", depends_on=ends)
    return 10_001 / _timed(wf)


def render_long_run() -> float:
    """Seconds to draw a 1,000-iteration run as SVG (trace to IR to DOT to Graphviz)."""
    from planloop.visualize import to_svg

    tool = planloop.Tool(noop, name="noop")
    model = ScriptedModel([ToolCall("noop", {"x": 1})] * 1000 + ["done"])
    result = planloop.Agent(model, [tool], max_iterations=None, store=False).run_sync("go")
    assert result.iterations == 1000
    t0 = time.perf_counter()
    svg = to_svg(result)
    elapsed = time.perf_counter() - t0
    assert "acts 4–997 not drawn" in svg
    return elapsed


def draw_large_workflow() -> float:
    """Seconds for ``to_dot`` of a workflow of 10,000 independent steps (one act, folded)."""
    from planloop.visualize import to_dot

    wf = planloop.Workflow("large", store=False)
    for i in range(10_000):
        wf.step(noop, id=f"s{i}", x=i)
    result = wf.run_sync()
    _ = result.trace  # made on first read; the run's cost, not the picture's
    t0 = time.perf_counter()
    dot = to_dot(result)
    elapsed = time.perf_counter() - t0
    assert "9,994 more steps not drawn" in dot
    return elapsed


def median(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def bytecode_env(cache: str) -> dict[str, str]:
    """The environment for a timed import: bytecode cached under ``cache``.

    An installed package imports from its compiled bytecode; with
    ``PYTHONDONTWRITEBYTECODE`` set (as some shells and CI images do) every import
    would compile every module again and the time would be the compiler's. The
    cache goes to a temporary directory, so nothing is written into the tree.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def import_time(
    statement: str = "import planloop", repeats: int = 5, cwd: str | None = None
) -> float:
    """Seconds: median over fresh processes of running ``statement``, after one
    untimed run that compiles the bytecode."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    with tempfile.TemporaryDirectory() as cache:
        env = bytecode_env(cache)

        def once() -> float:
            out = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                cwd=cwd,
                env=env,
            )
            return float(out.stdout.strip().splitlines()[-1])

        once()  # compiles and caches the bytecode
        return statistics.median(once() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--peers", action="store_true", help="also every installed peer")
    parser.add_argument("--out", help="write the side-by-side report (markdown) here")
    args = parser.parse_args()
    if args.peers or args.out:
        import compare  # imported here: it imports this module

        compare.main(sys.argv[1:])
        return
    repeats = 3 if args.quick else 7
    rows = []
    for k in (10, 1000):
        for sync_tool in (False, True):
            per = median(lambda k=k, s=sync_tool: agent_run(k, sync_tool=s), repeats) / k
            floor = median(lambda k=k, s=sync_tool: floor_run(k, sync_tool=s), repeats) / k
            label = f"S1 loop, K={k}, {'sync' if sync_tool else 'async'} tool"
            rows.append(
                (
                    label,
                    f"{per * 1e6:.1f} µs/iter",
                    f"{floor * 1e6:.1f} µs/iter",
                    f"{per / floor:.1f}×",
                )
            )
    with tempfile.TemporaryDirectory() as home:
        store = planloop.SQLiteStore(Path(home) / "bench.db")
        for k in (10, 1000):
            per = median(lambda k=k: agent_run(k, sync_tool=False, store=store), repeats) / k
            floor = median(lambda k=k: floor_run(k), repeats) / k
            rows.append(
                (
                    f"S1 loop with a SQLite checkpoint per transition, K={k}, async tool",
                    f"{per * 1e6:.1f} µs/iter",
                    f"{floor * 1e6:.1f} µs/iter",
                    f"{per / floor:.1f}×",
                )
            )
        store.close()
    fixed = median(lambda: agent_run(0, sync_tool=False), repeats * 5)
    fixed_floor = median(lambda: floor_run(0), repeats * 5)
    rows.append(
        (
            "fixed cost of one run (K=0)",
            f"{fixed * 1e6:.0f} µs",
            f"{fixed_floor * 1e6:.0f} µs",
            f"{fixed / fixed_floor:.1f}×",
        )
    )
    warm = median(warm_agent_run, repeats * 5)
    rows.append(
        (
            "fixed cost of one run (K=0), agent already used once",
            f"{warm * 1e6:.0f} µs",
            f"{fixed_floor * 1e6:.0f} µs",
            f"{warm / fixed_floor:.1f}×",
        )
    )
    rows.append(("import planloop", f"{import_time():.3f} s", "", ""))
    for name, make in (
        ("50 × 50 ms fan-out + join", fan_out_graph),
        ("5 × 20 layered × 20 ms", layered_graph),
    ):
        graph, critical = make()
        for sync in (True, False):
            ours = statistics.median(planloop_makespan(graph, sync) for _ in range(repeats))
            floor = statistics.median(plain_makespan(graph, sync) for _ in range(repeats))
            rows.append(
                (
                    f"S2 makespan ÷ critical path, {name}, {'sync' if sync else 'async'}",
                    f"{ours / critical:.3f} ({ours * 1000:.1f} ms)",
                    f"{floor / critical:.3f} ({floor * 1000:.1f} ms)",
                    f"{ours / floor:.3f}×",
                )
            )
    measured = [throughput_and_gc() for _ in range(repeats)]
    rate = statistics.median(r for r, _ in measured)
    gc_share = statistics.median(g for _, g in measured)
    floor_rate = statistics.median(plain_throughput() for _ in range(repeats))
    rows.append(
        (
            "S3 throughput, 10,001 async no-op steps, tracing on",
            f"{rate:,.0f} steps/s ({gc_share:.0%} of it in the cyclic GC)",
            f"{floor_rate:,.0f} steps/s",
            f"{floor_rate / rate:.1f}× slower",
        )
    )
    rows.append(
        (
            "render a 1,000-iteration run to SVG (target ≤ 2 s)",
            f"{median(render_long_run, repeats):.3f} s",
            "",
            "",
        )
    )
    rows.append(
        (
            "to_dot of a 10,000-step workflow (target < 1 s)",
            f"{median(draw_large_workflow, repeats):.3f} s",
            "",
            "",
        )
    )
    print("| scenario | planloop | plain-Python floor | ratio |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
