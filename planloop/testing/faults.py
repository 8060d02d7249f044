"""Tools that misbehave on purpose: flaky, slow, raising, hanging."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from planloop.nodes.tool import Tool

__all__ = ["flaky_tool", "hanging_tool", "raising_tool", "slow_tool"]


def flaky_tool(
    fails: int, *, name: str = "flaky", error: type[Exception] = ConnectionError
) -> Tool:
    """A tool that raises ``error`` on its first ``fails`` calls, then returns ``"ok"``.

    Example:
        >>> t = flaky_tool(fails=1)
        >>> try:
        ...     t.invoke({})
        ... except ConnectionError as e:
        ...     print(e)
        flaky: failure 1 of 1
        >>> t.invoke({})
        'ok'
    """
    lock = threading.Lock()
    calls = [0]

    def flaky() -> str:
        with lock:
            calls[0] += 1
            n = calls[0]
        if n <= fails:
            raise error(f"{name}: failure {n} of {fails}")
        return "ok"

    return Tool(flaky, name=name, description=f"Fails {fails} times, then returns 'ok'.")


def slow_tool(seconds: float, *, name: str = "slow", sync: bool = False) -> Tool:
    """A tool that takes ``seconds`` and returns them (async by default; ``sync=True``
    sleeps in a worker thread instead).

    Example:
        >>> import asyncio
        >>> asyncio.run(slow_tool(0.01).ainvoke({}))
        0.01
    """
    if sync:

        def slow_sync() -> float:
            time.sleep(seconds)
            return seconds

        return Tool(slow_sync, name=name, description=f"Sleeps {seconds} s.")

    async def slow() -> float:
        await asyncio.sleep(seconds)
        return seconds

    return Tool(slow, name=name, description=f"Sleeps {seconds} s.")


class _AnyArgs(BaseModel):
    model_config = ConfigDict(extra="allow")


def raising_tool(error: BaseException, *, name: str = "raising") -> Tool:
    """A tool that always raises ``error`` (whatever arguments it is given).

    Example:
        >>> t = raising_tool(TimeoutError("upstream timed out"))
        >>> try:
        ...     t.invoke({"query": "x"})
        ... except TimeoutError as e:
        ...     print(e)
        upstream timed out
    """

    def raising(**_: Any) -> None:
        raise error

    return Tool(raising, name=name, description="Always raises.", args_schema=_AnyArgs)


class _HangingTool(Tool):
    def __init__(self, name: str, sync: bool) -> None:
        self._released = threading.Event()
        if sync:

            def hang_sync() -> str:
                self._released.wait()
                return "released"

            super().__init__(hang_sync, name=name, description="Never returns.")
        else:

            async def hang() -> str:
                while not self._released.is_set():
                    await asyncio.sleep(0.05)
                return "released"

            super().__init__(hang, name=name, description="Never returns.")

    def release(self) -> None:
        """Let every call in progress (and every later one) return."""
        self._released.set()


def hanging_tool(*, name: str = "hanging", sync: bool = False) -> _HangingTool:
    """A tool that never returns until ``.release()`` is called.

    Give the run a time limit: ``max_execution_time`` stops it and cancels the
    call. Sync hanging calls hold a pool thread until released; call
    ``release()`` when the test is done.

    Example:
        >>> from planloop import Agent
        >>> from planloop.models import ToolCall
        >>> from planloop.testing import ScriptedModel
        >>> hang = hanging_tool()
        >>> agent = Agent(ScriptedModel([ToolCall("hanging", {})]), [hang],
        ...               max_execution_time=0.05, store=False)
        >>> agent.run_sync("go").stop_reason
        <StopReason.max_execution_time: 'max_execution_time'>
        >>> hang.release()
    """
    return _HangingTool(name, sync)
