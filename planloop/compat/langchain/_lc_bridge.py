"""Sync iteration over an async core whose blocking calls run on the caller's thread.

The compat ``AgentExecutor`` has one async core for both of LangChain's sides.
LangChain's sync side calls the agent, the callbacks and the tools on the
caller's thread, so a ``threading.local`` the caller set is seen there,
``signal.signal`` works from the main thread, and a sync tool finds the
caller's event loop state (none, usually, so it may run a loop of its own).

:class:`CallerThread` keeps that: the core's event loop turns on a helper
thread while the caller's thread waits in :meth:`CallerThread.iterate`, and
each blocking call the core makes through :meth:`CallerThread.call` is handed
back to the waiting caller's thread and run there. The loop turns only while
``next()`` waits, so the sync side stays lazy like LangChain's generator
(nothing runs between two ``next()`` calls, and a caller that stops iterating
stops the agent); the caller's own running loop (Jupyter) is never re-entered.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from functools import partial
from typing import Any, TypeVar

__all__ = ["CallerThread"]

T = TypeVar("T")

_Job = Callable[[], None]


class CallerThread:
    """Runs an async core from sync code, its blocking calls on the iterating thread.

    Example:
        >>> import threading
        >>> bridge = CallerThread()
        >>> async def core():
        ...     yield await bridge.call(threading.current_thread)
        >>> list(bridge.iterate(core())) == [threading.current_thread()]
        True
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the thread waiting in :meth:`iterate`.

        It runs in a copy of the awaiting task's ``contextvars`` context; its
        exception is raised here.
        """
        run = partial(contextvars.copy_context().run, fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def job() -> None:
            try:
                value = run()
            except BaseException as exc:  # noqa: BLE001 - raised where the call is awaited
                loop.call_soon_threadsafe(_settle, future, None, exc)
            else:
                loop.call_soon_threadsafe(_settle, future, value, None)

        self._jobs.put(job)
        return await future

    def iterate(self, agen: AsyncGenerator[T, None]) -> Iterator[T]:
        """Yield the items of ``agen``; closing this iterator closes ``agen`` on its loop."""
        loop = asyncio.new_event_loop()
        context = contextvars.copy_context()
        try:
            while True:
                try:
                    item = self._wait(loop, context, anext(agen))
                except StopAsyncIteration:
                    return
                yield item
        finally:
            try:
                self._wait(loop, context, agen.aclose())
                self._wait(loop, context, loop.shutdown_asyncgens())
            finally:
                loop.close()

    def run(self, aw: Awaitable[T]) -> T:
        """Await ``aw`` to its value (what :meth:`iterate` does for one item)."""
        (value,) = self.iterate(_once(aw))
        return value

    def _wait(
        self, loop: asyncio.AbstractEventLoop, context: contextvars.Context, aw: Awaitable[Any]
    ) -> Any:
        """Turn ``loop`` on a helper thread until ``aw`` is done, running its calls here."""
        box: dict[str, Any] = {}

        def turn() -> None:
            try:
                box["value"] = context.run(loop.run_until_complete, aw)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc
            finally:
                self._jobs.put(None)

        thread = threading.Thread(target=turn, name="planloop-compat", daemon=True)
        thread.start()
        while (job := self._jobs.get()) is not None:
            job()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box.get("value")


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


async def _once(aw: Awaitable[T]) -> AsyncGenerator[T, None]:
    yield await aw
