"""The actions of an async multi-action step start in the agent's order, as in LangChain.

LangChain's ``ainvoke`` gathers the actions of a step (``asyncio.gather``), so
action 1's callbacks and tool start first, then action 2's, then action 3's.
The same three-action step runs through LangChain's ``AgentExecutor`` and
ours; the order of ``on_agent_action``, ``on_tool_start``, the tools' own
starts and ``astream_events``' tool starts must be the same.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)

from langchain_classic.agents import AgentExecutor as LCExecutor  # noqa: E402
from langchain_core.agents import AgentAction, AgentFinish  # noqa: E402
from langchain_core.callbacks import AsyncCallbackHandler  # noqa: E402
from langchain_core.tools import BaseTool, StructuredTool  # noqa: E402

from planloop.compat.langchain import AgentExecutor  # noqa: E402
from tests.compat._lc_helpers import ScriptedMultiAgent  # noqa: E402

ACTIONS = ["1", "2", "3"]


class _Starts(AsyncCallbackHandler):
    """``on_agent_action`` and ``on_tool_start``, in the order they arrive."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def on_agent_action(self, action: AgentAction, **kw: Any) -> None:
        self.events.append(f"action {action.tool_input['text']}")

    async def on_tool_start(self, serialized: Any, input_str: str, **kw: Any) -> None:
        self.events.append(f"tool_start {input_str}")


def _executor(cls: type[Any], started: list[str]) -> Any:
    async def anap(text: str) -> str:
        started.append(text)
        await asyncio.sleep(0.01)
        return text

    def nap(text: str) -> str:
        raise AssertionError("the async side calls the coroutine")

    nap_tool: BaseTool = StructuredTool.from_function(
        nap, coroutine=anap, name="nap", description="Sleep a little."
    )
    step = [AgentAction("nap", {"text": text}, f"nap {text}") for text in ACTIONS]
    agent = ScriptedMultiAgent(script=[step, AgentFinish({"output": "done"}, "done")])
    return cls(agent=agent, tools=[nap_tool])


def _ainvoke(cls: type[Any]) -> tuple[list[str], list[str]]:
    started: list[str] = []
    starts = _Starts()
    out = asyncio.run(_executor(cls, started).ainvoke({"input": "q"}, {"callbacks": [starts]}))
    assert out["output"] == "done"
    return started, starts.events


def _astream_events(cls: type[Any]) -> tuple[list[str], list[str]]:
    started: list[str] = []

    async def tool_starts() -> list[str]:
        events = _executor(cls, started).astream_events({"input": "q"}, version="v2")
        return [
            f"{e['event']} {e['data']['input']['text']}"
            async for e in events
            if e["event"] == "on_tool_start"
        ]

    return started, asyncio.run(tool_starts())


@pytest.mark.parametrize("call", [_ainvoke, _astream_events], ids=lambda f: f.__name__)
def test_actions_of_an_async_step_start_in_the_agents_order(call: Any) -> None:
    theirs, ours = call(LCExecutor), call(AgentExecutor)
    assert theirs[0] == ACTIONS
    assert ours == theirs
