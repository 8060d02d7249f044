"""pydantic-graph 2.68: a BaseNode loop for S1; the builder's map and join for DAGs.

S1: dataclass nodes ``Plan`` (asks the scripted model; returns ``Act(call)`` or
``End(answer)``) and ``Act`` (calls the no-op, appends to the state's history, returns
``Plan()``), added to a ``GraphBuilder`` with ``g.node(...)``; run with ``graph.run``.
``auto_instrument`` is left on (a no-op without logfire). pydantic-graph 2.68 has no
persistence API, so the checkpoint row is n/a.
S2/S3: steps are async functions; a DAG runs as its topological layers, each a step that
lists the layer's step ids, ``.map()`` to a work step, and a ``join`` (``reduce_list_extend``)
waiting for all of them (exact here: every step of a layer has the same duration). Sync
work goes through ``anyio.to_thread.run_sync`` (anyio's default limit: 40 threads), as a
sync callable in an async framework would. S3 maps the 100 chains over a sequence of
``length`` step nodes, then joins.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from ._common import Graph, NotExpressible, Script, layers, noop

NAME = "pydantic-graph"
PACKAGE = "pydantic_graph"
IMPORT = "import pydantic_graph"

_S1: Any = None


def _s1_graph() -> Any:
    from pydantic_graph import BaseNode, End, GraphBuilder, GraphRunContext

    @dataclass
    class State:
        model: Script
        history: list[Any] = field(default_factory=list)

    @dataclass
    class Plan(BaseNode[State, None, str]):
        async def run(self, ctx: GraphRunContext[State, None]) -> Act | End[str]:
            move = ctx.state.model.next()
            if isinstance(move, str):
                return End(move)
            return Act(move)

    @dataclass
    class Act(BaseNode[State, None, str]):
        call: dict[str, Any]

        async def run(self, ctx: GraphRunContext[State, None]) -> Plan:
            ctx.state.history.append(noop(**self.call["args"]))
            return Plan()

    g = GraphBuilder(name="agent", state_type=State, input_type=Plan, output_type=str)
    g.add(g.node(Plan), g.node(Act), g.edge_from(g.start_node).to(Plan))
    return g.build(), State, Plan


def s1(k: int, *, checkpoint: bool = False) -> float:
    """Seconds for one run of K iterations."""
    if checkpoint:
        raise NotExpressible("pydantic-graph 2.68 has no persistence API")
    global _S1
    if _S1 is None:
        _S1 = _s1_graph()
    graph, state_type, plan = _S1
    state = state_type(Script(k))

    async def go() -> float:
        t0 = time.perf_counter()
        out = await graph.run(state=state, inputs=plan())
        dt = time.perf_counter() - t0
        assert out == "done"
        return dt

    dt = asyncio.run(go())
    assert len(state.history) == k
    return dt


def _layered_graph(groups: list[list[str]], work: Any) -> Any:
    from pydantic_graph import GraphBuilder, StepContext, reduce_list_extend

    g = GraphBuilder(name="dag", input_type=list[str], output_type=list[str])
    previous: Any = g.start_node
    for i, group in enumerate(groups):

        async def dispatch(
            ctx: StepContext[None, None, Any], group: list[str] = group
        ) -> list[str]:
            return group

        async def run(ctx: StepContext[None, None, str]) -> list[str]:
            return [await work(ctx.inputs)]

        d = g.step(dispatch, node_id=f"dispatch{i}")
        w = g.step(run, node_id=f"work{i}")
        j = g.join(reduce_list_extend, initial_factory=list, node_id=f"join{i}")
        g.add(g.edge_from(previous).to(d), g.edge_from(d).map().to(w), g.edge_from(w).to(j))
        previous = j
    g.add(g.edge_from(previous).to(g.end_node))
    return g.build()


async def _timed(graph: Any) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    out = await graph.run(inputs=[])
    return time.perf_counter() - t0, out


def s2(graph: Graph, sync: bool) -> float:
    """Makespan in seconds of the S2 graph, run layer by layer."""
    import anyio.to_thread

    seconds = {sid: s for sid, (_, s) in graph.items()}

    async def work(sid: str) -> str:
        if seconds[sid]:
            if sync:
                await anyio.to_thread.run_sync(time.sleep, seconds[sid])
            else:
                await asyncio.sleep(seconds[sid])
        return sid

    groups = layers(graph)
    done: list[str] = []

    async def record(sid: str) -> str:
        done.append(await work(sid))
        return sid

    dt, _ = asyncio.run(_timed(_layered_graph(groups, record)))
    assert sorted(done) == sorted(graph), "every step ran once"
    return dt


def s3(chains: int = 100, length: int = 100) -> float:
    """Steps per second: ``chains`` mapped inputs through ``length`` chained steps, a join."""
    from pydantic_graph import GraphBuilder, StepContext, reduce_list_append

    g = GraphBuilder(name="chains", input_type=list[int], output_type=list[int])

    async def step(ctx: StepContext[None, None, int]) -> int:
        return ctx.inputs

    steps = [g.step(step, node_id=f"s{i}") for i in range(length)]
    join = g.join(reduce_list_append, initial_factory=list, node_id="join")
    g.add(g.edge_from(g.start_node).map().to(steps[0]))
    for a, b in itertools.pairwise(steps):
        g.add(g.edge_from(a).to(b))
    g.add(g.edge_from(steps[-1]).to(join), g.edge_from(join).to(g.end_node))
    graph = g.build()

    async def go() -> tuple[float, list[int]]:
        t0 = time.perf_counter()
        out = await graph.run(inputs=list(range(chains)))
        return time.perf_counter() - t0, out

    dt, out = asyncio.run(go())
    assert sorted(out) == list(range(chains))
    return (chains * length + 1) / dt
