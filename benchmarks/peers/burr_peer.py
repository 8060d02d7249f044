"""Burr 0.43 (apache-burr): ApplicationBuilder with actions and transitions; MapStates for DAGs.

S1: actions ``plan`` (the scripted model, bound with ``.bind``), ``act`` (calls the
no-op, appends to ``history``) and ``finish``; transitions ``plan -> finish`` when
``done``, ``plan -> act`` otherwise, ``act -> plan``; ``app.run(halt_after=["finish"])``.
No tracker (Burr's tracking writes files for its UI; planloop's trace stays in memory).
The checkpoint row adds Burr's own ``SQLitePersister``: the whole state, the growing
history included, is saved after every step, so its cost per iteration grows with K.
S2/S3: Burr has no DAG scheduler; its parallelism API maps one action or sub-graph over
many states (``MapStates``), each run as a sub-application. A DAG therefore runs as its
topological layers, one ``MapStates`` action per layer (exact for these graphs: every
step of a layer has the same duration). Sync steps use Burr's default executor
(a ``ThreadPoolExecutor()``, min(32, cpus + 4) threads: 6 on two cores, so 50 sleeping
steps take 9 waves; with a 64-thread executor the sync ratios were about 1.4 (fan-out)
and 2.2 (layered) here); async ones ``asyncio.gather``.
S3 maps a sub-graph of ``length`` chained actions over ``chains`` states, then a join.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

from ._common import Graph, Script, layers, noop

NAME = "Burr"
PACKAGE = "burr"
IMPORT = "import burr.core"


def s1(k: int, *, checkpoint: bool = False) -> float:
    """Seconds for one run of K iterations."""
    from burr.core import ApplicationBuilder, State, action, default, when
    from burr.core.persistence import SQLitePersister

    @action(reads=[], writes=["call", "answer", "done"])
    def plan(state: State, model: Script) -> State:
        move = model.next()
        if isinstance(move, str):
            return state.update(call=None, answer=move, done=True)
        return state.update(call=move, answer=None, done=False)

    @action(reads=["call"], writes=["history"])
    def act(state: State) -> State:
        return state.append(history=noop(**state["call"]["args"]))

    @action(reads=["answer"], writes=[])
    def finish(state: State) -> State:
        return state

    builder = (
        ApplicationBuilder()
        .with_actions(plan=plan.bind(model=Script(k)), act=act, finish=finish)
        .with_transitions(
            ("plan", "finish", when(done=True)),
            ("plan", "act", default),
            ("act", "plan"),
        )
        .with_state(history=[], done=False)
        .with_entrypoint("plan")
    )
    with tempfile.TemporaryDirectory() as home:
        if checkpoint:
            persister = SQLitePersister.from_values(str(Path(home) / "burr.db"))
            persister.initialize()
            builder = builder.with_identifiers(app_id="bench").with_state_persister(persister)
        app = builder.build()
        t0 = time.perf_counter()
        _, _, state = app.run(halt_after=["finish"])
        dt = time.perf_counter() - t0
        if checkpoint:
            persister.cleanup()
    assert len(state["history"]) == k
    assert state["answer"] == "done"
    return dt


def _layered_app(
    groups: list[list[str]], work: Any, sync: bool, *, join: Any = None, reduce_key: str = "done"
) -> Any:
    """An application running each group of steps as one parallel MapStates action.

    ``join``: an ordinary action run after the last group.
    """
    from burr.core import ApplicationBuilder, State
    from burr.core.parallelism import MapStates

    class Layer(MapStates):  # type: ignore[misc]
        def __init__(self, steps: list[str]) -> None:
            super().__init__()
            self.steps = steps

        def action(self, state: State, inputs: dict[str, Any]) -> Any:
            return work

        def states(self, state: State, context: Any, inputs: dict[str, Any]) -> Any:
            for sid in self.steps:
                yield state.update(step=sid)

        def reduce(self, state: State, states: Any) -> Any:
            if sync:
                return state.extend(**{reduce_key: [s["step"] for s in states]})

            async def areduce() -> State:
                return state.extend(**{reduce_key: [s["step"] async for s in states]})

            return areduce()

        def is_async(self) -> bool:
            return not sync

        @property
        def reads(self) -> list[str]:
            return []

        @property
        def writes(self) -> list[str]:
            return [reduce_key]

    names = [f"layer{i}" for i in range(len(groups))]
    actions = {n: Layer(g) for n, g in zip(names, groups, strict=True)}
    if join is not None:
        names.append("join")
        actions["join"] = join
    return (
        ApplicationBuilder()
        .with_actions(**actions)
        .with_transitions(*itertools.pairwise(names))
        .with_state(**{reduce_key: []})
        .with_entrypoint(names[0])
        .build()
    ), names[-1]


def s2(graph: Graph, sync: bool) -> float:
    """Makespan in seconds of the S2 graph, run layer by layer."""
    from burr.core import State, action

    seconds = {sid: s for sid, (_, s) in graph.items()}
    if sync:

        @action(reads=["step"], writes=["step"])
        def work(state: State) -> State:
            if seconds[state["step"]]:
                time.sleep(seconds[state["step"]])
            return state

    else:

        @action(reads=["step"], writes=["step"])
        async def work(state: State) -> State:  # type: ignore[misc]
            if seconds[state["step"]]:
                await asyncio.sleep(seconds[state["step"]])
            return state

    app, last = _layered_app(layers(graph), work, sync)
    if sync:
        t0 = time.perf_counter()
        _, _, state = app.run(halt_after=[last])
        dt = time.perf_counter() - t0
    else:  # timed on the running loop, as every implementation's async run is

        async def go() -> tuple[float, Any]:
            t0 = time.perf_counter()
            out = await app.arun(halt_after=[last])
            return time.perf_counter() - t0, out

        dt, (_, _, state) = asyncio.run(go())
    assert sorted(state["done"]) == sorted(graph), "every step ran once"
    return dt


def s3(chains: int = 100, length: int = 100) -> float:
    """Steps per second: ``chains`` sub-graphs of ``length`` chained no-op actions, a join."""
    from burr.core import State, action
    from burr.core.graph import GraphBuilder
    from burr.core.parallelism import RunnableGraph

    @action(reads=[], writes=[])
    def step(state: State) -> State:
        return state

    @action(reads=["done"], writes=["done"])
    def join(state: State) -> State:
        return state.append(done="join")

    names = [f"s{i}" for i in range(length)]
    chain = (
        GraphBuilder()
        .with_actions(**dict.fromkeys(names, step))
        .with_transitions(*itertools.pairwise(names))
        .build()
    )
    work = RunnableGraph(graph=chain, entrypoint=names[0], halt_after=[names[-1]])
    app, last = _layered_app([[f"c{c}" for c in range(chains)]], work, sync=True, join=join)
    t0 = time.perf_counter()
    _, _, state = app.run(halt_after=[last], inputs={})
    dt = time.perf_counter() - t0
    assert len(state["done"]) == chains + 1
    return (chains * length + 1) / dt
