"""Where a step's tool runs: the executor seam between the scheduler and the work.

The scheduler decides *when* a step runs (its dependencies succeeded, a worker
is free); an :class:`Executor` decides *where*. For each try of a step the
scheduler resolves the step's references, checks its arguments against the
tool, and hands the executor a :class:`Call`: the step's id, the tool and the
validated keyword arguments, nothing tied to the event loop. The executor gives
back an awaitable of the tool's return value (or its exception); the scheduler
awaits it, applies the step's timeout, and, when the step is cancelled or
times out, calls :meth:`Executor.cancel` with it and stops waiting.

:class:`LocalExecutor` (the default) runs an async tool on the running event
loop, in the task of the worker that awaits it, and a sync tool on planloop's
daemon thread pool (:mod:`planloop.engine._threads`) in a copy of the caller's
``contextvars`` context: a sync tool never caps I/O parallelism, never blocks
the interpreter's exit, and is abandoned, not waited for, when it is cancelled.

An executor that runs steps in other processes or on a cluster (Dask, Ray)
implements the same two methods: ``submit`` serialises the call (the tool
object and plain keyword arguments; a tool made from a module-level function
pickles), runs :meth:`Call.run` remotely (``asyncio.run`` on its value for an
async tool), and returns an awaitable that resolves on this event loop with the
value or raises the tool's exception; ``cancel`` cancels the remote job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import partial
from typing import Any, NamedTuple, Protocol, runtime_checkable

from planloop.engine._threads import run_in_thread
from planloop.engine.tooling import ToolLike

__all__ = ["LOCAL", "Call", "Executor", "LocalExecutor"]


class Call(NamedTuple):
    """One try of one step, as plain data: what runs, and with which arguments.

    Example:
        >>> from planloop.engine.functions import FunctionTool
        >>> Call("double", FunctionTool(lambda x: 2 * x), {"x": 21}).run()
        42
    """

    step_id: str
    """The step this call is a try of."""
    tool: ToolLike
    """What runs: ``tool.call(kwargs)``; ``tool.is_async`` says whether that is awaitable."""
    kwargs: dict[str, Any]
    """The arguments, references resolved and checked against the tool."""

    def run(self) -> Any:
        """Call the tool here: its return value (an awaitable for an async tool)."""
        return self.tool.call(self.kwargs)


@runtime_checkable
class Executor(Protocol):
    """How a step's call is run. The scheduler uses one executor for every step of an act.

    Both methods are called on the event loop's thread and must not block.
    """

    def submit(self, call: Call) -> Awaitable[Any]:
        """Start ``call``; the awaitable gives the tool's return value or raises its exception.

        The scheduler awaits it at once, from the task of the step's worker. An
        exception raised by ``submit`` itself fails the step like one raised by
        the tool.
        """
        ...

    def cancel(self, job: Awaitable[Any]) -> None:
        """Stop ``job`` (a value ``submit`` returned): its step was cancelled or timed out.

        The scheduler no longer waits for ``job``. Work that cannot be stopped
        may run on, but its result must be dropped. Cancelling a job that has
        ended does nothing.
        """
        ...


class LocalExecutor:
    """The default executor: async tools on the running loop, sync tools on a thread pool.

    An async tool's coroutine is returned to be awaited in the worker's task
    (which runs in a copy of the caller's ``contextvars`` context); a sync tool
    runs on a daemon pool thread in a copy of the current context, and its
    future is cancelled, leaving the thread to finish on its own, when the step
    is cancelled or times out.
    """

    __slots__ = ()

    def submit(self, call: Call) -> Awaitable[Any]:
        tool = call.tool
        if tool.is_async:
            job: Awaitable[Any] = tool.call(call.kwargs)
            return job
        return run_in_thread(partial(tool.call, call.kwargs))

    def cancel(self, job: Awaitable[Any]) -> None:
        # A coroutine is being awaited by the cancelled task, so the cancellation is
        # already inside it; a thread's future is cancelled and its result dropped.
        if isinstance(job, asyncio.Future):
            job.cancel()

    def __repr__(self) -> str:
        return "LocalExecutor()"


LOCAL = LocalExecutor()
"""The executor an act uses unless it is given another."""
