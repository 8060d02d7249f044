"""Tools that fight cancellation: the deadline and an outside cancel still hold.

An async tool that catches ``asyncio.CancelledError`` (once, or every time) is
abandoned at the deadline, as a hanging sync tool is: the run stops waiting for
it and returns within a small bounded slack. Each scenario runs in a daemon
thread, so a run that hangs fails its test instead of the whole suite.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest

from planloop import Agent, StepStatus, StopReason, abandoned_tools, tool
from planloop.models import ToolCall
from planloop.testing import ScriptedModel, check_trace

SLACK = 3.0
"""Seconds past the deadline a run may take on this (slow, shared) machine."""


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """``fn()``'s value, or a failed test if it has not returned after ``seconds``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@tool
async def stubborn() -> str:
    """Ignores every cancellation, forever."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue


@tool
async def swallow_once() -> str:
    """Ignores the first cancellation, then returns 3 s later."""
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        await asyncio.sleep(3)
    return "finished anyway"


@pytest.mark.parametrize("stubborn_tool", [stubborn, swallow_once], ids=["forever", "once"])
def test_the_deadline_holds_against_a_tool_that_swallows_cancellation(stubborn_tool: Any) -> None:
    model = ScriptedModel([ToolCall(stubborn_tool.name)])
    agent = Agent(model, [stubborn_tool], max_execution_time=1.0)
    started = time.perf_counter()
    result = within(1.0 + SLACK + 5, lambda: agent.run_sync("go"))
    took = time.perf_counter() - started
    assert took < 1.0 + SLACK, f"the run returned {took:.1f} s after it started"
    assert result.stop_reason is StopReason.max_execution_time
    assert [s.status for s in result.steps] == [StepStatus.cancelled]
    check_trace(result.trace, time_slack=SLACK)


def test_an_outside_cancel_is_never_lost_to_a_tool_that_swallows_it() -> None:
    model = ScriptedModel([ToolCall("swallow_once"), "done"])
    agent = Agent(model, [swallow_once])

    async def main() -> str:
        task = asyncio.create_task(agent.run("go"))
        await asyncio.sleep(0.3)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    assert within(SLACK + 5, lambda: asyncio.run(main())) == "cancelled"


def test_parallel_steps_beside_a_stubborn_one_end_cancelled_at_the_deadline() -> None:
    @tool
    async def nap(i: int) -> int:
        """Sleeps past the deadline."""
        await asyncio.sleep(3600)
        return i

    model = ScriptedModel(
        [[ToolCall("stubborn"), ToolCall("nap", {"i": 1}), ToolCall("nap", {"i": 2})]]
    )
    agent = Agent(model, [stubborn, nap], max_execution_time=0.5)
    result = within(0.5 + SLACK + 5, lambda: agent.run_sync("go"))
    assert result.stop_reason is StopReason.max_execution_time
    assert [s.status for s in result.steps] == [StepStatus.cancelled] * 3


def test_an_abandoned_tool_keeps_no_reference_to_the_run() -> None:
    model = ScriptedModel([ToolCall("stubborn")])
    agent = Agent(model, [stubborn], max_execution_time=0.3)

    def run() -> weakref.ref[Any]:
        result = agent.run_sync("go")
        assert result.stop_reason is StopReason.max_execution_time
        return weakref.ref(result)

    ref = within(0.3 + SLACK + 5, run)
    gc.collect()
    assert ref() is None


def test_abandoned_tools_are_counted_and_logged_while_they_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()

    @tool
    def block() -> str:
        """Blocks until released."""
        release.wait(30)
        return "late"

    model = ScriptedModel([ToolCall("block")])
    try:
        agent = Agent(model, [block], max_execution_time=0.2)
        with caplog.at_level(logging.WARNING, logger="planloop"):
            result = within(SLACK + 5, lambda: agent.run_sync("go"))
        assert result.stop_reason is StopReason.max_execution_time
        during = abandoned_tools().threads  # other tests' abandoned tools may still run
        assert during >= 1
        [message] = [r.getMessage() for r in caplog.records if "abandoned" in r.getMessage()]
        assert "step 'call_1' (tool 'block') was abandoned" in message
        assert re.search(r"\(\d+ abandoned tool thread\(s\) running now\)", message)
    finally:
        release.set()
    deadline = time.monotonic() + 5
    while abandoned_tools().threads >= during and time.monotonic() < deadline:
        time.sleep(0.01)
    assert abandoned_tools().threads < during
