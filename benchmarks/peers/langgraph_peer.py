"""LangGraph 1.x: the StateGraph agent loop of its docs, and parallel edges for DAGs.

S1: the agent of LangGraph's quickstart: ``MessagesState``; an ``agent`` node asks the
scripted model for an ``AIMessage`` (with a tool call or the answer); a conditional edge
routes to a ``tools`` node that invokes the ``@tool`` no-op and returns a ``ToolMessage``,
which routes back to ``agent``. ``recursion_limit`` is raised to fit K iterations. (The
prebuilt ``ToolNode`` + ``tools_condition`` is slower: it starts a thread per call, about
1.9 ms per iteration here; ``s1(k, prebuilt=True)`` measures it. A plain function called
directly instead of a ``@tool`` is faster: about 650 µs per iteration at K = 10 and
1,100 µs at K = 1,000 here; planloop's S1 calls a ``planloop.Tool``, which validates
its arguments as a ``@tool`` does.) The per-iteration cost grows with K: the message
list grows, and ``add_messages`` walks all of it at every step.
The checkpoint row compiles with ``MemorySaver`` (in memory: the SQLite saver is a
separate package, ``langgraph-checkpoint-sqlite``, not in the venv); it stores the whole,
growing message list at every step, so its cost per iteration grows with K too.
S2/S3: one node per step, an edge from each dependency (``add_edge([deps], node)`` waits
for all of them), sync nodes through ``invoke`` and async ones through ``ainvoke``.
LangGraph runs a superstep's sync nodes on a thread pool of min(32, cpus + 4) threads by
default (6 on two cores), so 50 sleeping steps take 9 waves; with ``max_concurrency: 64``
in the config the sync ratios were about 1.8 (fan-out) and 1.4 (layered) here.
"""

# no `from __future__ import annotations`: LangGraph reads the nodes' type hints, and the
# state classes are imported inside the functions (LangGraph is optional)
import asyncio
import operator
import time
from typing import Annotated, Any, TypedDict

from ._common import Graph, Script, chains_graph

NAME = "LangGraph"
PACKAGE = "langgraph"
IMPORT = "import langgraph.graph"


def _agent(script: Script, checkpoint: bool, *, prebuilt: bool = False) -> Any:
    from langchain_core.messages import AIMessage, ToolMessage
    from langchain_core.tools import tool
    from langgraph.checkpoint.memory import MemorySaver
    from langgraph.graph import END, START, MessagesState, StateGraph

    @tool
    def noop(x: int) -> int:
        """Return x."""
        return x

    def agent(state: MessagesState) -> dict[str, Any]:
        move = script.next()
        if isinstance(move, str):
            return {"messages": [AIMessage(move)]}
        return {"messages": [AIMessage("", tool_calls=[move])]}

    tools_by_name = {"noop": noop}

    def tools(state: MessagesState) -> dict[str, Any]:
        result = []
        for call in state["messages"][-1].tool_calls:  # type: ignore[attr-defined]
            observation = tools_by_name[call["name"]].invoke(call["args"])
            result.append(ToolMessage(content=observation, tool_call_id=call["id"]))
        return {"messages": result}

    def should_continue(state: MessagesState) -> str:
        return "tools" if state["messages"][-1].tool_calls else END  # type: ignore[attr-defined]

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    if prebuilt:
        from langgraph.prebuilt import ToolNode, tools_condition

        builder.add_node("tools", ToolNode([noop]))
        builder.add_conditional_edges("agent", tools_condition)
    else:
        builder.add_node("tools", tools)
        builder.add_conditional_edges("agent", should_continue)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=MemorySaver() if checkpoint else None)


def s1(k: int, *, checkpoint: bool = False, prebuilt: bool = False) -> float:
    """Seconds for one run of K iterations (``prebuilt``: the prebuilt ToolNode)."""
    script = Script(k)
    app = _agent(script, checkpoint, prebuilt=prebuilt)
    config = {"recursion_limit": 2 * k + 5, "configurable": {"thread_id": "bench"}}
    t0 = time.perf_counter()
    out = app.invoke({"messages": [("user", "go")]}, config)
    dt = time.perf_counter() - t0
    tool_messages = [m for m in out["messages"] if m.type == "tool"]
    assert len(tool_messages) == k, len(tool_messages)
    assert out["messages"][-1].content == "done"
    return dt


class _Done(TypedDict):
    done: Annotated[list[str], operator.add]


def _dag(graph: Graph, sync: bool) -> Any:
    from langgraph.graph import START, StateGraph

    builder = StateGraph(_Done)
    for sid, (deps, seconds) in graph.items():
        if sync:

            def node(state: _Done, sid: str = sid, seconds: float = seconds) -> dict[str, Any]:
                if seconds:
                    time.sleep(seconds)
                return {"done": [sid]}

        else:

            async def node(  # type: ignore[misc]
                state: _Done, sid: str = sid, seconds: float = seconds
            ) -> dict[str, Any]:
                if seconds:
                    await asyncio.sleep(seconds)
                return {"done": [sid]}

        builder.add_node(sid, node)
        builder.add_edge(deps if len(deps) > 1 else (deps[0] if deps else START), sid)
    return builder.compile()


def _run_dag(graph: Graph, sync: bool) -> float:
    app = _dag(graph, sync)
    config = {"recursion_limit": len(graph) + 10}
    if sync:
        t0 = time.perf_counter()
        out = app.invoke({"done": []}, config)
        dt = time.perf_counter() - t0
    else:  # timed on the running loop, as every implementation's async run is

        async def go() -> tuple[float, Any]:
            t0 = time.perf_counter()
            out = await app.ainvoke({"done": []}, config)
            return time.perf_counter() - t0, out

        dt, out = asyncio.run(go())
    assert sorted(out["done"]) == sorted(graph), "every step ran once"
    return dt


def s2(graph: Graph, sync: bool) -> float:
    """Makespan in seconds of the S2 graph."""
    return _run_dag(graph, sync)


def s3(chains: int = 100, length: int = 100) -> float:
    """Steps per second over ``chains`` chains of ``length`` async no-op steps and a join."""
    graph = chains_graph(chains, length)
    return len(graph) / _run_dag(graph, sync=False)
