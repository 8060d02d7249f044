"""Sync iteration over an async generator, one item per ``next()``, on a private loop.

The compat ``AgentExecutor`` has one async core for both of LangChain's sides.
The sync side must stay lazy like LangChain's generator (nothing runs between
two ``next()`` calls, so a caller that stops iterating stops the agent), so the
core runs on an event loop of its own that turns only while ``next()`` waits:
in the calling thread when it has no running loop, in a helper thread when it
has one (Jupyter), never re-entering the caller's loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncGenerator, Awaitable, Iterator
from typing import Any, TypeVar

__all__ = ["iterate_sync"]

T = TypeVar("T")


def iterate_sync(agen: AsyncGenerator[T, None]) -> Iterator[T]:
    """Yield the items of ``agen``; closing this iterator closes ``agen`` on its loop."""
    loop = asyncio.new_event_loop()
    context = contextvars.copy_context()

    def run(aw: Awaitable[Any]) -> Any:
        def target() -> Any:
            return context.run(loop.run_until_complete, aw)

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return target()
        box: dict[str, Any] = {}

        def in_thread() -> None:
            try:
                box["value"] = target()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=in_thread, name="planloop-compat", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box.get("value")

    try:
        while True:
            try:
                item = run(anext(agen))
            except StopAsyncIteration:
                return
            yield item
    finally:
        try:
            run(agen.aclose())
            run(loop.shutdown_asyncgens())
        finally:
            loop.close()
