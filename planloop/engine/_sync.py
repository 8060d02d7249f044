"""The one bridge from sync to async: every ``*_sync`` entry point goes through it.

It runs the coroutine on a new event loop, as :func:`asyncio.run` does, but
closes that loop without waiting for tools the run abandoned: ``asyncio.run``
cancels every task left and waits for all of them, so one tool that ignores
its cancellation would keep ``run_sync`` from returning. Other tasks left
behind are cancelled and given ``_GRACE`` seconds to end.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from planloop.engine._abandoned import forget_loop, is_abandoned

__all__ = ["run_sync"]

T = TypeVar("T")

_GRACE = 1.0
"""Seconds the tasks a run leaves behind (not abandoned tools) get to end once cancelled."""


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code.

    With no event loop running in this thread it uses ``asyncio.run``. Inside a
    running loop (Jupyter, an async framework) it runs the coroutine on a fresh
    loop in a helper thread and waits for it, so the caller's loop is never
    re-entered.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run(coro)
    box: dict[str, Any] = {}
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            box["value"] = ctx.run(_run, coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name="planloop-run-sync", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)``, except that closing the loop never waits for abandoned tools."""
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            _cancel_left_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(asyncio.wait_for(loop.shutdown_default_executor(), _GRACE))
        except TimeoutError:  # a thread of the loop's default executor still runs: left to end
            pass
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            forget_loop(loop)


def _cancel_left_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still on ``loop``, wait a little for them, report their errors."""
    left = [task for task in asyncio.all_tasks(loop) if not is_abandoned(task)]
    if not left:
        return
    for task in left:
        task.cancel()
    loop.run_until_complete(asyncio.wait(left, timeout=_GRACE))
    for task in left:
        if task.done() and not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during run_sync() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
