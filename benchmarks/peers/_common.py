"""What every implementation shares: the scripted model, the S2 graphs, the S3 chains."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent.parent
if str(BENCHMARKS) not in sys.path:  # run.py holds the scenario definitions
    sys.path.insert(0, str(BENCHMARKS))

Graph = dict[str, tuple[list[str], float]]
"""Step id -> (dependencies, seconds it sleeps), as in run.py."""


class NotExpressible(Exception):
    """The peer has no idiomatic way to express the scenario; the message says why."""


def noop(x: int) -> int:
    """Return x."""
    return x


@dataclass
class Script:
    """The fake model every peer gets: K tool calls ``noop(x=1)``, then the answer "done".

    It is plain Python and costs the peers nothing, so peers pay only for their own
    machinery (planloop's ScriptedModel, by contrast, goes through its ChatModel protocol).
    """

    k: int
    calls: int = 0
    results: list[Any] = field(default_factory=list)

    def next(self) -> dict[str, Any] | str:
        """The next move: a tool call ``{"name", "args", "id"}`` or the final answer."""
        if self.calls < self.k:
            self.calls += 1
            return {"name": "noop", "args": {"x": 1}, "id": f"call_{self.calls}"}
        return "done"


def layers(graph: Graph) -> list[list[str]]:
    """The graph's topological generations: for peers that run a DAG layer by layer."""
    done: set[str] = set()
    out: list[list[str]] = []
    while len(done) < len(graph):
        layer = [s for s, (deps, _) in graph.items() if s not in done and set(deps) <= done]
        out.append(layer)
        done.update(layer)
    return out


def chains_graph(chains: int = 100, length: int = 100) -> Graph:
    """S3: ``chains`` chains of ``length`` no-op steps, then a join."""
    graph: Graph = {}
    ends = []
    for c in range(chains):
        for i in range(length):
            graph[f"c{c}_{i}"] = ([f"c{c}_{i - 1}"] if i else [], 0.0)
        ends.append(f"c{c}_{length - 1}")
    graph["join"] = (ends, 0.0)
    return graph
