"""The benchmark scenarios, one module per implementation, all with the same interface.

Every module has ``NAME`` (the table's column), ``PACKAGE`` (what must be importable
for it to run; ``None`` for planloop and the floor), ``IMPORT`` (the statement whose
cost the import row measures) and:

* ``s1(k, *, checkpoint=False) -> float``: seconds for one run of K loop iterations
  (scripted model, one no-op tool call each; ``checkpoint``: a checkpoint after every
  transition). ``s1(0)`` is the fixed cost of one run.
* ``s2(graph, sync) -> float``: makespan in seconds of a DAG of sleeping steps
  (``run.fan_out_graph()`` / ``run.layered_graph()``), sync or async steps.
* ``s3(chains=100, length=100) -> float``: steps per second over ``chains`` chains of
  ``length`` no-op steps and a join.

A scenario the implementation cannot express raises :class:`NotExpressible`, whose
message the table shows as "n/a: ...". Each peer imports its library lazily, inside the
functions, so this package imports with none of them installed.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ._common import Graph, NotExpressible, Script, chains_graph, layers

__all__ = [
    "IMPLEMENTATIONS",
    "PEERS",
    "Graph",
    "NotExpressible",
    "Script",
    "chains_graph",
    "installed",
    "layers",
    "load",
]

PEERS = ("langgraph_peer", "burr_peer", "pydantic_graph_peer", "agent_executor_peer")
"""The peer modules, in the table's column order."""

IMPLEMENTATIONS = ("floor", "planloop_impl", *PEERS)


def load(module: str) -> ModuleType:
    """The implementation module ``module`` (one of :data:`IMPLEMENTATIONS`)."""
    return importlib.import_module(f"{__name__}.{module}")


def installed(module: str) -> bool:
    """Whether the library that ``module`` measures can be imported here."""
    package = load(module).PACKAGE
    return package is None or importlib.util.find_spec(package) is not None
