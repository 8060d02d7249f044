"""planloop itself, through run.py's scenario functions.

S1: ``planloop.Agent`` with a ``ScriptedModel`` (from ``planloop.testing``) and an async
``planloop.Tool`` no-op, ``max_iterations=None``, ``store=False``: the full typed trace
is recorded in memory. The checkpoint row gives it a ``SQLiteStore`` in a temporary
directory instead: runs, events and a checkpoint after every transition.
S2: the graph as a ``planloop.Workflow``, default settings (sync steps on planloop's own
thread pool). S3: a ``Workflow`` of async no-op steps, tracing on.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ._common import Graph, chains_graph

NAME = "planloop"
PACKAGE = None
IMPORT = "import planloop"


def s1(k: int, *, checkpoint: bool = False) -> float:
    """Seconds for one run of K iterations, async no-op tool, as run.py's S1."""
    import run

    import planloop

    if not checkpoint:
        return float(run.agent_run(k, sync_tool=False))
    with tempfile.TemporaryDirectory() as home:
        store = planloop.SQLiteStore(Path(home) / "bench.db")
        try:
            return float(run.agent_run(k, sync_tool=False, store=store))
        finally:
            store.close()


def s2(graph: Graph, sync: bool) -> float:
    """Makespan in seconds: the graph as a planloop Workflow, default settings."""
    import run

    return float(run.planloop_makespan(graph, sync))


def s3(chains: int = 100, length: int = 100) -> float:
    """Steps per second, as run.py's ``throughput`` but of any size."""
    import run

    import planloop

    async def noop_step(**_: Any) -> None:
        return None

    graph = chains_graph(chains, length)
    wf = planloop.Workflow("throughput", store=False)
    handles: dict[str, Any] = {}
    for sid, (deps, _) in graph.items():
        handles[sid] = wf.step(noop_step, id=sid, depends_on=[handles[d] for d in deps])
    return len(graph) / float(run._timed(wf))
