"""A thread pool for sync tools that never caps I/O parallelism and never blocks exit.

``concurrent.futures.ThreadPoolExecutor`` does not fit: its default size is
tied to the core count (50 sleeping steps would queue behind a handful of
threads), and its workers are joined at interpreter exit, so one hanging tool
would hang the process. Here an idle worker is reused when there is one and a
new daemon worker is started when there is not; idle workers leave after a
while. A tool abandoned at a deadline keeps its thread until it returns, and
that thread never delays anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["run_in_thread"]

_IDLE_SECONDS = 30.0


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: deque[tuple[Callable[[], Any], asyncio.AbstractEventLoop, asyncio.Future[Any]]]
        self._jobs = deque()
        self._idle = 0
        self._wake = threading.Condition(self._lock)

    def submit(
        self, fn: Callable[[], Any], loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any]
    ) -> None:
        with self._lock:
            self._jobs.append((fn, loop, fut))
            if self._idle:
                self._idle -= 1
                self._wake.notify()
                return
        threading.Thread(target=self._work, name="planloop-tool", daemon=True).start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._jobs:
                    self._idle += 1
                    if not self._wake.wait(_IDLE_SECONDS) and not self._jobs:
                        self._idle -= 1
                        return
                    # notify() already took this worker off the idle count
                job = self._jobs.popleft()
            fn, loop, fut = job
            try:
                value = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task, not swallowed
                _deliver(loop, fut, None, exc)
            else:
                _deliver(loop, fut, value, None)


def _deliver(
    loop: asyncio.AbstractEventLoop,
    fut: asyncio.Future[Any],
    value: Any,
    exc: BaseException | None,
) -> None:
    def settle() -> None:
        if fut.done():  # cancelled at a timeout or deadline: the result is dropped
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)

    # RuntimeError: the loop closed while the tool ran, so nobody is waiting.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)


_POOL = _Pool()


def run_in_thread(fn: Callable[[], Any]) -> asyncio.Future[Any]:
    """Run ``fn`` on a pool thread; the returned future can be cancelled at any time."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    _POOL.submit(fn, loop, fut)
    return fut
