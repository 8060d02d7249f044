"""Tools the engine stopped waiting for that still run: kept, counted and reported.

A step cancelled at its timeout, at the run's deadline or by an outside cancel
is *abandoned*: the run stops waiting for its tool at once and never takes its
result. A sync tool cannot be stopped from outside, so it keeps its daemon
thread until it returns. An async tool's task is cancelled; one that ignores
the cancellation (it catches ``asyncio.CancelledError``) runs on in its own
task, holding only its own arguments.

Each abandoned thread is logged at WARNING on the ``planloop`` logger with how
many are running now, and :func:`abandoned_tools` gives the counts, so a
long-lived service can notice tools that hang (and give them a timeout of
their own, or fix them) before the threads pile up.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import NamedTuple

__all__ = [
    "AbandonedTools",
    "abandon_task",
    "abandoned_tools",
    "forget_loop",
    "is_abandoned",
    "thread_abandoned",
    "thread_returned",
]

log = logging.getLogger("planloop")

_lock = threading.Lock()
_threads = 0
_tasks: set[asyncio.Task[object]] = set()  # asyncio keeps only weak references to tasks


class AbandonedTools(NamedTuple):
    """Tools the engine abandoned that have not returned yet.

    Example:
        >>> counts = AbandonedTools(threads=2, tasks=0)
        >>> counts.threads + counts.tasks
        2
    """

    threads: int
    """Sync tools still running in their daemon thread."""
    tasks: int
    """Async tools whose task was cancelled and has not ended yet."""


def abandoned_tools() -> AbandonedTools:
    """How many abandoned tools are running now, in this process.

    Example:
        >>> abandoned_tools().threads >= 0
        True
    """
    with _lock:
        return AbandonedTools(_threads, len(_tasks))


def thread_abandoned(what: str) -> None:
    """A sync call (``what``, e.g. a step and its tool) was cancelled while its thread runs."""
    global _threads
    with _lock:
        _threads += 1
        running = _threads
    log.warning(
        "planloop: %s was abandoned while it runs; its daemon thread ends when it "
        "returns (%d abandoned tool thread(s) running now). A tool that can hang should "
        "take a timeout of its own.",
        what,
        running,
    )


def thread_returned() -> None:
    """An abandoned sync tool returned: its thread is free again."""
    global _threads
    with _lock:
        _threads -= 1


def abandon_task(task: asyncio.Task[object]) -> None:
    """Cancel an async tool's ``task`` and keep it until it ends, without waiting for it."""
    task.cancel()
    if task.done():
        return
    with _lock:
        _tasks.add(task)
    task.add_done_callback(_task_ended)


def is_abandoned(task: asyncio.Task[object]) -> bool:
    """Whether ``task`` is an abandoned tool's (so nothing should wait for it)."""
    with _lock:
        return task in _tasks


def forget_loop(loop: asyncio.AbstractEventLoop) -> None:
    """``loop`` is closed: its abandoned tasks will never run again, so let them go."""
    with _lock:
        _tasks.difference_update([task for task in _tasks if task.get_loop() is loop])


def _task_ended(task: asyncio.Task[object]) -> None:
    with _lock:
        _tasks.discard(task)
    if not task.cancelled():
        task.exception()  # the tool's late error is dropped with its result, not logged
