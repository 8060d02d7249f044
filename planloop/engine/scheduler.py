"""Execution of one plan (the ``act`` state): event-driven, parallel, never hanging.

A step starts the moment its last dependency succeeds: each finished step decrements its
dependents' counters and queues those that reach zero, so there are no waves and no polling.
Queued steps (those that wait for nothing, in plan order, then each as its last dependency
ends) are taken by workers: tasks that run one step at a time, each through the same path
(:class:`~planloop.engine.runner.StepRunner`, which hands the tool's call to the act's
:class:`~planloop.engine.executor.Executor`), then take the next queued step, and end when
none is left or the act has ended. Workers are reused, so a step costs no task of its own: a
new worker is started only for a step that no idle worker will take, and never more than
``max_concurrency`` at a time. The act's own task is the first worker, so a plan of one step
runs without a task switch. A worker lets the event loop run at least every ``_SLICE``
seconds, so a deadline is served even when the tools never suspend.

A failed step marks its transitive dependents ``skipped``; other branches go
on. When the act is cancelled (a deadline, a user cancellation) every step
still open ends ``cancelled`` and the workers are cancelled: the executor lets
each running call go (a sync tool, or an async tool that ignores its
cancellation, is abandoned, never waited for). An error
while recording a step's end (a store that fails) stops the workers and is
raised by the act at once.

Context: the first worker is the act's own task, so it shares the
``contextvars`` context of the code that started the run; the others start in
a copy of that context taken when the act began. A tool runs in a copy of its
worker's context (with :class:`~planloop.engine.executor.LocalExecutor`: an
async tool in a task of its own, a sync tool on a pool thread), so nothing a
tool sets leaks back into the run.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from planloop.engine.executor import LOCAL, Executor
from planloop.engine.plan import Plan
from planloop.engine.runner import (
    TOOL_NOT_FOUND,
    StepRunner,
    crashed,
    invalid_tool_message,
    step_result,
)
from planloop.engine.states import StepStatus
from planloop.engine.steps import StepResult
from planloop.engine.tooling import ToolLike
from planloop.engine.trace import StepLog

__all__ = ["TOOL_NOT_FOUND", "ActOutcome", "execute_plan", "invalid_tool_message"]

_PENDING = StepStatus.pending
_RUNNING = StepStatus.running
_SUCCEEDED = StepStatus.succeeded
_BLOCKING = frozenset({StepStatus.failed, StepStatus.skipped, StepStatus.cancelled})

_SLICE = 0.002
"""Seconds a worker may run steps that never suspend before it lets the event loop run."""


class ActOutcome:
    """Results of one act, in the order the steps ended, and the exceptions behind failures."""

    __slots__ = ("errors", "results")

    def __init__(self) -> None:
        self.results: list[StepResult] = []
        self.errors: dict[str, BaseException] = {}


async def execute_plan(
    plan: Plan,
    tools: Mapping[str, ToolLike],
    *,
    act: int,
    clock: Callable[[], float],
    record: Callable[[Any], None],
    max_concurrency: int | None = None,
    outcome: ActOutcome | None = None,
    log: StepLog | None = None,
    executor: Executor = LOCAL,
) -> ActOutcome:
    """Run every step of ``plan`` (already validated) to a terminal status.

    ``clock`` gives seconds since the run started; ``record`` receives the
    trace events, or, when ``log`` is given (the trace's :class:`StepLog`), the
    step events go to ``log``. ``outcome`` may be passed in so the caller
    keeps what was recorded even when this coroutine is cancelled. Every try
    of every step is run by ``executor`` (see :mod:`planloop.engine.executor`).
    """
    out = outcome if outcome is not None else ActOutcome()
    steps_log = log if log is not None else StepLog(record=record)
    runner = StepRunner(plan, tools, act=act, clock=clock, log=steps_log, executor=executor)
    run = _Act(plan, runner, out, max_concurrency)
    try:
        run.spawn()
        await run.work()
        await run.wait()
    except asyncio.CancelledError:
        run.cancel()
        raise
    except BaseException:
        run.stop()
        raise
    return out


class _Act:
    """The state of one plan's execution: queued steps, workers, statuses, results."""

    __slots__ = (
        "cap",
        "closed",
        "context",
        "dependents",
        "deps",
        "done",
        "errors",
        "failure",
        "idle",
        "ready",
        "remaining",
        "results",
        "runner",
        "running",
        "status",
        "steps",
        "tasks",
        "waiting",
        "workers",
    )

    def __init__(
        self, plan: Plan, runner: StepRunner, outcome: ActOutcome, cap: int | None
    ) -> None:
        index = plan.index
        n = len(plan.steps)
        self.steps = plan.steps
        self.deps = index.deps
        self.dependents = index.dependents
        self.runner = runner
        self.results = outcome.results
        self.errors = outcome.errors
        self.cap = cap
        self.waiting = list(index.indegree)
        self.status = [_PENDING] * n
        self.ready: deque[int] = deque()
        for i, count in enumerate(self.waiting):
            if not count:
                self.ready.append(i)
        self.running: dict[int, float] = {}  # position -> start, in the order steps started
        self.remaining = n
        self.workers = 1  # the act's own task, which works first
        self.idle = 1  # workers that hold no step
        self.tasks: set[asyncio.Task[None]] = set()
        self.context = contextvars.copy_context()
        self.done: asyncio.Future[None] | None = None  # made only when there is a wait
        self.failure: BaseException | None = None
        self.closed = False

    async def wait(self) -> None:
        """Until the steps other workers still hold have ended."""
        if self.remaining and self.failure is None:
            self.done = asyncio.get_running_loop().create_future()
            await self.done
        if self.failure is not None:
            raise self.failure

    async def work(self) -> None:
        """Run queued steps, one at a time, until none is left or the act ended; then end."""
        ready, clock = self.ready, self.runner.clock
        since = clock()
        while ready and not self.closed and self.failure is None:
            i = ready.popleft()
            self.idle -= 1
            self.status[i] = _RUNNING
            started = self.running[i] = clock()
            try:
                result, error = await self.runner.run(i, started)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - a bug or an interrupt; the step still ends
                result, error = crashed(self.steps[i], exc, started, clock()), exc
            self.idle += 1
            self.settle(i, result, error)
            ended = result.ended_at
            if ended is None or ended - since >= _SLICE:
                await asyncio.sleep(0)
                since = clock()
        self.idle -= 1
        self.workers -= 1

    def spawn(self) -> None:
        """Start a worker for each queued step no idle worker will take, up to the cap."""
        cap = self.cap
        while len(self.ready) > self.idle and (cap is None or self.workers < cap):
            task = asyncio.get_running_loop().create_task(self.work(), context=self.context.copy())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            self.workers += 1
            self.idle += 1

    def settle(self, i: int, result: StepResult, error: BaseException | None) -> None:
        """Step ``i`` ended: record it, then queue the steps it freed or skip those it blocks."""
        if self.closed:  # the act was cancelled (the step ended ``cancelled``) or failed
            return
        try:
            del self.running[i]
            step_id = self.steps[i].id
            if result.status is _SUCCEEDED:
                self.runner.outputs[step_id] = result.output
                self.finish(i, result)
                self.release(i)
            else:
                if error is not None:
                    self.errors[step_id] = error
                self.finish(i, result)
                self.skip_dependents(i)
        except BaseException as exc:  # noqa: BLE001 - a bug here must not leave the act waiting
            if self.failure is None:
                self.failure = exc
            if self.done is not None and not self.done.done():
                self.done.set_result(None)

    def finish(self, i: int, result: StepResult) -> None:
        """Record step ``i``'s terminal result."""
        self.status[i] = result.status
        self.results.append(result)
        t = result.ended_at
        runner = self.runner
        runner.log.finished(runner.clock() if t is None else t, runner.act, result, self.deps[i])
        self.remaining -= 1
        if not self.remaining and self.done is not None and not self.done.done():
            self.done.set_result(None)

    def release(self, i: int) -> None:
        """Queue the dependents of step ``i`` (which succeeded) that wait for nothing else."""
        waiting, status, ready = self.waiting, self.status, self.ready
        for j in self.dependents[i]:
            waiting[j] -= 1
            if not waiting[j] and status[j] is _PENDING:
                ready.append(j)
        if len(ready) > self.idle:
            self.spawn()

    def skip_dependents(self, failed: int) -> None:
        """End ``skipped`` every step that waits, directly or not, for step ``failed``."""
        steps, status, position = self.steps, self.status, self.runner.plan.index.position
        todo = list(self.dependents[failed])
        while todo:
            i = todo.pop()
            if status[i] is not _PENDING:
                continue
            step = steps[i]
            blocked, blocker = next(
                (status[position[d]], d) for d in self.deps[i] if status[position[d]] in _BLOCKING
            )
            error = f"dependency {blocker!r} {blocked.value}"
            ended = self.runner.clock()
            self.finish(
                i, step_result(step, StepStatus.skipped, error=error, args=step.args, ended=ended)
            )
            todo.extend(self.dependents[i])

    def stop(self) -> None:
        """Cancel the other workers; a step they end from now on is not recorded."""
        self.closed = True
        for task in self.tasks:
            task.cancel()

    def cancel(self) -> None:
        """The act was cancelled: every open step ends ``cancelled`` and the workers stop."""
        self.stop()
        now = self.runner.clock()
        cancelled = StepStatus.cancelled
        for i, started in self.running.items():
            step = self.steps[i]
            text = "cancelled while running"
            result = step_result(
                step, cancelled, error=text, attempts=1, args=step.args, started=started, ended=now
            )
            self.finish(i, result)
        self.running.clear()
        for i, step in enumerate(self.steps):
            if self.status[i] is _PENDING:
                text = "cancelled before it started"
                self.finish(i, step_result(step, cancelled, error=text, args=step.args, ended=now))
