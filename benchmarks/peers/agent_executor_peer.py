"""LangChain's AgentExecutor (langchain-classic 1.0): a scripted agent and a no-op tool.

S1: a ``BaseSingleActionAgent`` whose ``plan`` returns ``AgentAction(noop, {"x": 1})``
K times and then ``AgentFinish`` (LangChain's documented way to write a custom agent;
no LLM, so no prompt formatting or output parsing is paid), a ``@tool`` no-op,
``AgentExecutor(max_iterations=K + 1)`` (its count includes the step that answers),
``invoke``. The executor keeps the intermediate steps (``return_intermediate_steps=True``)
to check that K iterations ran.
AgentExecutor has no checkpointing and runs one agent step's tool calls one after
another, so the checkpoint, S2 and S3 rows are n/a.
"""

from __future__ import annotations

import time
from typing import Any

from ._common import Graph, NotExpressible, Script

NAME = "AgentExecutor"
PACKAGE = "langchain_classic"
IMPORT = "import langchain_classic.agents"


def s1(k: int, *, checkpoint: bool = False) -> float:
    """Seconds for one run of K iterations."""
    if checkpoint:
        raise NotExpressible("AgentExecutor has no checkpointing")
    from langchain_classic.agents import AgentExecutor, BaseSingleActionAgent
    from langchain_core.agents import AgentAction, AgentFinish
    from langchain_core.tools import tool

    @tool
    def noop(x: int) -> int:
        """Return x."""
        return x

    class Scripted(BaseSingleActionAgent):
        script: Any

        @property
        def input_keys(self) -> list[str]:
            return ["input"]

        def plan(self, intermediate_steps: Any, callbacks: Any = None, **kwargs: Any) -> Any:
            move = self.script.next()
            if isinstance(move, str):
                return AgentFinish({"output": move}, move)
            return AgentAction(move["name"], move["args"], "")

        async def aplan(self, intermediate_steps: Any, callbacks: Any = None, **kw: Any) -> Any:
            return self.plan(intermediate_steps, callbacks, **kw)

    executor = AgentExecutor(
        agent=Scripted(script=Script(k)),
        tools=[noop],
        max_iterations=k + 1,  # its count includes the step that answers
        return_intermediate_steps=True,
    )
    t0 = time.perf_counter()
    out = executor.invoke({"input": "go"})
    dt = time.perf_counter() - t0
    assert len(out["intermediate_steps"]) == k
    assert out["output"] == "done"
    return dt


def s2(graph: Graph, sync: bool) -> float:
    raise NotExpressible("no DAG: an agent step's tool calls run one after another")


def s3(chains: int = 100, length: int = 100) -> float:
    raise NotExpressible("no DAG of steps")
