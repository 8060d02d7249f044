"""Where a step's tool runs: the executor seam between the scheduler and the work.

The scheduler decides *when* a step runs (its dependencies succeeded, a worker
is free); an :class:`Executor` decides *where*. For each try of a step the
scheduler resolves the step's references, checks its arguments against the
tool, and calls :meth:`Executor.submit` with the step's id, the tool and the
checked keyword arguments: plain values, nothing tied to the event loop. The
executor gives back an awaitable of the tool's return value (or its
exception); the scheduler awaits it at once, under the step's timeout, and,
when the step is cancelled or times out, stops waiting at once and calls
:meth:`Executor.cancel` with it. A job that is an :class:`asyncio.Task` is
waited for through :func:`asyncio.shield`, so a tool that ignores its
cancellation cannot hold the step, the act or the run's deadline.

:class:`LocalExecutor` (the default) runs an async tool in a task of its own
on the running event loop, and a sync tool on planloop's daemon thread pool
(:mod:`planloop.engine._threads`), both in a copy of the worker's
``contextvars`` context: a sync tool never caps I/O parallelism, never blocks
the interpreter's exit, and is abandoned, not waited for, when it is cancelled;
so is an async tool that ignores its cancellation.

An executor that runs steps in other processes or on a cluster (Dask, Ray)
implements the same two methods: ``submit`` ships :func:`call_tool` with the
tool and its keyword arguments (pickled: a tool made from a module-level
function pickles as it is; cloudpickle, which Dask and Ray use, also takes
closures) and returns an awaitable that resolves on this event loop with the
return value, or raises the tool's exception; ``cancel`` cancels the remote job.
The return value comes back as data, so it must pickle too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import partial
from typing import Any, Protocol, runtime_checkable

from planloop.engine._abandoned import abandon_task
from planloop.engine._threads import run_in_thread
from planloop.engine.tooling import ToolLike

__all__ = ["LOCAL", "Executor", "LocalExecutor", "call_tool"]


@runtime_checkable
class Executor(Protocol):
    """How a step's call is run. The scheduler uses one executor for every step of an act.

    Both methods are called on the event loop's thread and must not block.
    """

    def submit(self, step_id: str, tool: ToolLike, kwargs: dict[str, Any]) -> Awaitable[Any]:
        """Start ``tool.call(kwargs)`` for a try of step ``step_id``.

        The awaitable gives the tool's return value or raises its exception.
        The scheduler awaits it at once, from the task of the step's worker.
        Return a future or a task: a bare coroutine would run in the worker's
        task, where one that ignores its cancellation delays the step's end.
        An exception raised by ``submit`` itself fails the step like one
        raised by the tool.
        """
        ...

    def cancel(self, job: Awaitable[Any]) -> None:
        """Stop ``job`` (a value ``submit`` returned): its step was cancelled or timed out.

        The scheduler no longer waits for ``job``. Work that cannot be stopped
        may run on, but its result must be dropped. Cancelling a job that has
        ended does nothing.
        """
        ...


def call_tool(tool: ToolLike, kwargs: dict[str, Any]) -> Any:
    """Run ``tool`` here, to its return value (an async tool in an event loop of its own).

    What an executor runs in another process or on another machine.

    Example:
        >>> import asyncio
        >>> from planloop.engine.functions import FunctionTool
        >>> async def double(x: int) -> int:
        ...     return 2 * x
        >>> call_tool(FunctionTool(double), {"x": 21})
        42
    """
    value = tool.call(kwargs)
    return asyncio.run(_wait(value)) if tool.is_async else value


async def _wait(job: Awaitable[Any]) -> Any:
    return await job


class LocalExecutor:
    """The default executor: async tools on the running loop, sync tools on a thread pool.

    An async tool runs in a task of its own on the running loop, a sync tool on
    a daemon pool thread; both in a copy of the submitting worker's
    ``contextvars`` context. When the step is cancelled or times out, the task
    is cancelled (a tool that ignores that runs on, abandoned) and the thread's
    future is cancelled, leaving the thread to finish on its own. Abandoned
    tools are counted by :func:`planloop.abandoned_tools`.
    """

    __slots__ = ()

    def submit(self, step_id: str, tool: ToolLike, kwargs: dict[str, Any]) -> Awaitable[Any]:
        if tool.is_async:
            return asyncio.get_running_loop().create_task(
                tool.call(kwargs), name=f"planloop step {step_id}"
            )
        return run_in_thread(partial(tool.call, kwargs), f"step {step_id!r} (tool {tool.name!r})")

    def cancel(self, job: Awaitable[Any]) -> None:
        if isinstance(job, asyncio.Task):
            abandon_task(job)  # cancelled; one that ignores it runs on, unwaited
        elif isinstance(job, asyncio.Future):
            job.cancel()  # a thread's: the thread runs on and its result is dropped

    def __repr__(self) -> str:
        return "LocalExecutor()"


LOCAL = LocalExecutor()
"""The executor an act uses unless it is given another."""
