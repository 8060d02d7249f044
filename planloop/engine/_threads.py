"""A thread pool for sync tools that never caps I/O parallelism and never blocks exit.

``concurrent.futures.ThreadPoolExecutor`` does not fit: its default size is
tied to the core count (50 sleeping steps would queue behind a handful of
threads), and its workers are joined at interpreter exit, so one hanging tool
would hang the process. Here an idle worker is reused when there is one and a
new daemon worker is started when there is not; idle workers leave after a
while. A tool abandoned at a deadline keeps its thread until it returns (it is
counted and logged by :mod:`planloop.engine._abandoned`), and that thread
never delays anything else; a call cancelled before a thread took it never
runs. A job runs in a copy of the ``contextvars`` context it was submitted
from (as with ``asyncio.to_thread``), so logging and tracing context reach
the tool and nothing it sets leaks back.

Results go back to their event loop through one inbox per loop: a worker
appends to it and wakes the loop only when no wake-up is pending, so when many
steps end at once (50 sleeps started together) the loop wakes once and
handles them all, instead of once per step.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from planloop.engine._abandoned import thread_abandoned, thread_returned

__all__ = ["run_in_thread"]

_IDLE_SECONDS = 30.0
_AHEAD = 2  # workers woken at a time for the jobs waiting in the queue

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
        one that has not yet cleared it still looks at the inbox after clearing it."""
        self.items.append((deliver, value, exc))
        if not self.scheduled:
            self.scheduled = True
            try:
                self.loop.call_soon_threadsafe(self.drain)
            except RuntimeError:  # the loop closed while the tool ran: nobody is waiting
                self.items.clear()

    def drain(self) -> None:
        """On the loop. The flag is cleared once the inbox is empty, then the inbox is
        looked at again: a result posted while the others were handed out (a callback
        that lets go of the interpreter, writing to a store) goes out in this drain
        instead of waking the loop once more."""
        items = self.items
        while True:
            while items:
                deliver, value, exc = items.popleft()
                try:
                    deliver(value, exc)
                except BaseException as error:  # noqa: BLE001 - reported; the other results still go out
                    self.loop.call_exception_handler(
                        {"message": "planloop: a thread result callback raised", "exception": error}
                    )
            self.scheduled = False
            if not items:
                return


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

    __slots__ = ("wake",)

    def __init__(self) -> None:
        self.wake = threading.Lock()
        self.wake.acquire()  # held = nothing to do


class _Pool:
    """Jobs wait in one queue; the workers woken for them wake the next ones.

    Waking a thread costs its waker a system call, and a woken thread can only run once the
    event loop lets go of the interpreter. So ``submit`` wakes at most ``_AHEAD`` workers
    however many jobs arrive together, and the loop goes back to its own work at once; each
    worker, as it takes a job, wakes another for the jobs still queued. The first tools of a
    batch start as soon as the loop lets go, and the others follow, one hand-over each,
    rather than all waiting for the loop to have woken every thread. More than one worker is
    on its way at a time, so one thread the system is slow to schedule does not hold up the
    jobs behind it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []  # most recently idle last: warm threads first
        self._jobs: deque[_Job] = deque()
        self._waking = 0  # workers woken (or starting) that have not taken a job yet

    def submit(self, inbox: _Inbox, fn: Callable[[], Any], deliver: Delivery) -> None:
        job = (fn, inbox, deliver)
        with self._lock:
            self._jobs.append(job)
            if self._waking >= min(_AHEAD, len(self._jobs)):
                return  # the workers on their way take this job or wake one that will
            self._waking += 1
            worker = self._idle.pop() if self._idle else None
        try:
            self._wake(worker)
        except BaseException:
            with self._lock:
                self._waking -= 1
                if self._waking:  # a worker is on its way: it takes the job, later
                    return
                self._jobs.remove(job)  # no thread at all for it: the caller is told
            raise

    def _wake(self, worker: _Worker | None) -> None:
        if worker is not None:
            worker.wake.release()
        else:
            threading.Thread(
                target=self._work, args=(_Worker(),), name="planloop-tool", daemon=True
            ).start()

    def _take(self) -> _Job | None:
        """The first queued job for a woken worker, which wakes another for the rest."""
        with self._lock:
            jobs = self._jobs
            job = jobs.popleft() if jobs else None
            self._waking -= 1
            if self._waking >= min(_AHEAD, len(jobs)):
                return job
            self._waking += 1
            worker = self._idle.pop() if self._idle else None
        try:
            self._wake(worker)
        except BaseException:  # noqa: BLE001 - no new thread: the jobs left wait for a worker
            with self._lock:
                self._waking -= 1
        return job

    def _work(self, worker: _Worker) -> None:
        job = self._take()
        while True:
            if job is not None:
                fn, inbox, deliver = job
                try:
                    value, error = fn(), None
                except BaseException as exc:  # noqa: BLE001 - handed to the loop, not swallowed
                    value, error = None, exc
                # A job still queued is taken on here. Otherwise this worker is idle
                # again before the result goes out, so that the step the result
                # unblocks finds it warm instead of starting a thread. A wake-up
                # sent before the wait below finds the lock already released.
                with self._lock:
                    jobs = self._jobs
                    job = jobs.popleft() if jobs else None
                    if job is None:
                        self._idle.append(worker)
                inbox.post(deliver, value, error)
                del fn, inbox, deliver, value, error  # keep nothing alive while idle
                if job is not None:
                    continue
            else:
                with self._lock:
                    self._idle.append(worker)
            if not worker.wake.acquire(timeout=_IDLE_SECONDS):
                with self._lock:
                    if worker in self._idle:  # still idle after the wait: leave
                        self._idle.remove(worker)
                        return
                # a submit took this worker just as the wait ended; its release follows
                worker.wake.acquire()
            job = self._take()


_POOL = _Pool()


class _Call:
    """One call's progress, shared by its event loop (which may cancel it) and its thread.

    A call cancelled before a thread takes it never runs; one cancelled while it
    runs is abandoned: counted and reported by :mod:`planloop.engine._abandoned`
    until it returns.
    """

    __slots__ = ("abandoned", "cancelled", "name", "running")

    def __init__(self, name: str) -> None:
        self.name = name
        self.cancelled = self.running = self.abandoned = False

    def start(self) -> bool:
        """On the worker thread: whether to run the call (it was not cancelled first)."""
        with _CALLS_LOCK:
            self.running = not self.cancelled
            return self.running

    def end(self) -> None:
        """On the worker thread: the call returned or raised."""
        with _CALLS_LOCK:
            self.running = False
            was_abandoned = self.abandoned
        if was_abandoned:
            thread_returned()

    def settled(self, fut: asyncio.Future[Any]) -> None:
        """On the loop: the call's future is done; if it was cancelled, let the call go."""
        if not fut.cancelled():
            return
        with _CALLS_LOCK:
            self.cancelled = True
            self.abandoned = self.running
        if self.abandoned:
            thread_abandoned(self.name)


_CALLS_LOCK = threading.Lock()


def run_in_thread(fn: Callable[[], Any], name: str = "a sync call") -> asyncio.Future[Any]:
    """Run ``fn`` on a pool thread, in a copy of the caller's ``contextvars`` context.

    The returned future can be cancelled at any time: a call no thread has taken
    yet never runs; a running one runs on, its result is dropped, and its thread
    is reported as abandoned (named ``name``) until it returns.
    """
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Any] = loop.create_future()
    call = _Call(name)
    context = contextvars.copy_context()

    def job() -> Any:
        if not call.start():
            return None
        try:
            return context.run(fn)
        finally:
            call.end()

    def settle(value: Any, exc: BaseException | None) -> None:
        if fut.done():  # cancelled at a timeout or deadline: the result is dropped
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)

    fut.add_done_callback(call.settled)
    _POOL.submit(_inbox(loop), job, settle)
    return fut
