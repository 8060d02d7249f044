"""A thread pool for sync tools that never caps I/O parallelism and never blocks exit.

``concurrent.futures.ThreadPoolExecutor`` does not fit: its default size is
tied to the core count (50 sleeping steps would queue behind a handful of
threads), and its workers are joined at interpreter exit, so one hanging tool
would hang the process. Here an idle worker is reused when there is one and a
new daemon worker is started when there is not; idle workers leave after a
while. A tool abandoned at a deadline keeps its thread until it returns, and
that thread never delays anything else.

Results go back to their event loop through one inbox per loop: a worker
appends to it and wakes the loop only when no wake-up is pending, so when many
steps end at once (50 sleeps started together) the loop wakes once and
handles them all, instead of once per step.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Delivery", "run_in_thread", "submit"]

_IDLE_SECONDS = 30.0

Delivery = Callable[[Any, BaseException | None], None]
"""Called on the event loop's thread with ``(value, None)`` or ``(None, exception)``."""


class _Inbox:
    """Results waiting to be handed to callbacks on one event loop."""

    __slots__ = ("__weakref__", "items", "loop", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: deque[tuple[Delivery, Any, BaseException | None]] = deque()
        self.scheduled = False

    def post(self, deliver: Delivery, value: Any, exc: BaseException | None) -> None:
        """From a worker thread. Appending before reading ``scheduled`` is what makes
        this race-free: a drain that already cleared the flag gets a new wake-up, and
        one that has not yet cleared it will still pop this item."""
        self.items.append((deliver, value, exc))
        if not self.scheduled:
            self.scheduled = True
            try:
                self.loop.call_soon_threadsafe(self.drain)
            except RuntimeError:  # the loop closed while the tool ran: nobody is waiting
                self.items.clear()

    def drain(self) -> None:
        self.scheduled = False
        items = self.items
        while items:
            deliver, value, exc = items.popleft()
            try:
                deliver(value, exc)
            except BaseException as error:  # noqa: BLE001 - reported; the other results still go out
                self.loop.call_exception_handler(
                    {"message": "planloop: a thread result callback raised", "exception": error}
                )


_INBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox] = weakref.WeakKeyDictionary()
_INBOX_LOCK = threading.Lock()


def _inbox(loop: asyncio.AbstractEventLoop) -> _Inbox:
    inbox = _INBOXES.get(loop)
    if inbox is None:
        with _INBOX_LOCK:
            inbox = _INBOXES.get(loop)
            if inbox is None:
                inbox = _INBOXES[loop] = _Inbox(loop)
    return inbox


_Job = tuple[Callable[[], Any], _Inbox, Delivery]


class _Worker:
    """One pool thread; it sleeps on its own lock, so waking it is one lock release."""

    __slots__ = ("job", "wake")

    def __init__(self, job: _Job) -> None:
        self.job: _Job | None = job
        self.wake = threading.Lock()
        self.wake.acquire()  # held = nothing to do


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []  # most recently idle last: warm threads first

    def submit(self, fn: Callable[[], Any], inbox: _Inbox, deliver: Delivery) -> None:
        job = (fn, inbox, deliver)
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None:
            worker = _Worker(job)
            threading.Thread(
                target=self._work, args=(worker,), name="planloop-tool", daemon=True
            ).start()
        else:
            worker.job = job
            worker.wake.release()

    def _work(self, worker: _Worker) -> None:
        while True:
            job = worker.job
            assert job is not None
            worker.job = None
            fn, inbox, deliver = job
            try:
                value, error = fn(), None
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, not swallowed
                value, error = None, exc
            # Idle again before the result goes out, so that the step the result
            # unblocks finds this warm worker instead of starting a thread. A job
            # handed over before the wait below finds the lock already released.
            with self._lock:
                self._idle.append(worker)
            inbox.post(deliver, value, error)
            del job, fn, inbox, deliver, value, error  # keep nothing alive while idle
            if not worker.wake.acquire(timeout=_IDLE_SECONDS):
                with self._lock:
                    if worker in self._idle:  # still idle after the wait: leave
                        self._idle.remove(worker)
                        return
                # submit() took this worker just as the wait ended; its release follows
                worker.wake.acquire()


_POOL = _Pool()


def submit(fn: Callable[[], Any], deliver: Delivery) -> None:
    """Run ``fn`` on a pool thread; ``deliver`` gets its outcome on the running loop."""
    _POOL.submit(fn, _inbox(asyncio.get_running_loop()), deliver)


def run_in_thread(fn: Callable[[], Any]) -> asyncio.Future[Any]:
    """Run ``fn`` on a pool thread; the returned future can be cancelled at any time."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, exc: BaseException | None) -> None:
        if fut.done():  # cancelled at a timeout or deadline: the result is dropped
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)

    _POOL.submit(fn, _inbox(loop), settle)
    return fut
