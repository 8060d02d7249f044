"""The plain-Python floor, through run.py: the same work with no machine, trace or checks.

S1: a loop that asks planloop's ``ScriptedModel`` for the next move, calls the async
no-op and keeps the history. S2/S3: a plain event-driven asyncio scheduler (a step
starts when its last dependency ends), sync steps on a warm pool of 64 threads.
"""

from __future__ import annotations

import asyncio

from ._common import Graph, chains_graph

NAME = "plain-Python floor"
PACKAGE = None
IMPORT = None


def s1(k: int, *, checkpoint: bool = False) -> float:
    """Seconds for K iterations of model call, tool call and history (never a checkpoint)."""
    import run

    return float(run.floor_run(k))


def s2(graph: Graph, sync: bool) -> float:
    """Makespan in seconds under a plain event-driven asyncio scheduler."""
    import run

    return float(run.plain_makespan(graph, sync))


def s3(chains: int = 100, length: int = 100) -> float:
    """Steps per second of the plain scheduler over the same chains."""
    import run

    graph = chains_graph(chains, length)

    async def work(sid: str) -> None:
        return None

    return len(graph) / float(asyncio.run(run.plain_schedule(graph, work)))
