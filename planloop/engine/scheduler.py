"""Execution of one plan (the ``act`` state): event-driven, parallel, never hanging.

A step starts the moment its last dependency succeeds: each finished step
decrements its dependents' counters and starts those that reach zero, so
there are no waves and no polling. Sync tools run on daemon pool threads,
async tools on the event loop. A failed step marks its transitive dependents
``skipped``; other branches go on. When the surrounding task is cancelled (a
deadline, a user cancellation) every step still open ends ``cancelled`` and
sync tools are abandoned rather than waited for.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from planloop.engine._threads import run_in_thread
from planloop.engine.functions import FunctionTool
from planloop.engine.plan import Plan, Step, resolve_refs
from planloop.engine.states import StepStatus
from planloop.engine.steps import StepResult
from planloop.engine.tooling import ToolLike
from planloop.engine.trace import StepFinished, StepStarted
from planloop.errors import ToolArgumentsError

__all__ = ["ActOutcome", "execute_plan", "invalid_tool_message"]

TOOL_NOT_FOUND = "ToolNotFound"


def invalid_tool_message(name: str, tools: Mapping[str, ToolLike]) -> str:
    """The observation for a call to a tool that does not exist (AgentExecutor's text)."""
    return f"{name} is not a valid tool, try one of [{', '.join(tools)}]."


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
) -> ActOutcome:
    """Run every step of ``plan`` to a terminal status.

    ``clock`` gives seconds since the run started; ``record`` receives the
    trace events. ``outcome`` may be passed in so the caller keeps what was
    recorded even when this coroutine is cancelled.
    """
    out = outcome if outcome is not None else ActOutcome()
    steps = plan.steps
    deps = {s.id: plan.dependencies(s) for s in steps}
    waiting = {s.id: len(deps[s.id]) for s in steps}
    dependents: dict[str, list[str]] = {s.id: [] for s in steps}
    for sid, ds in deps.items():
        for d in ds:
            dependents[d].append(sid)
    by_id = plan.by_id
    functions: dict[int, FunctionTool] = {}

    def tool_for(step: Step) -> ToolLike | None:
        if isinstance(step.tool, str):
            return tools.get(step.tool)
        fn = functions.get(id(step.tool))
        if fn is None:
            fn = functions[id(step.tool)] = FunctionTool(step.tool)
        return fn

    outputs: dict[str, Any] = {}
    status: dict[str, StepStatus] = {s.id: StepStatus.pending for s in steps}
    running: dict[str, tuple[asyncio.Task[Any], float]] = {}
    ready: deque[Step] = deque(s for s in steps if not deps[s.id])
    closed = False
    loop = asyncio.get_running_loop()
    all_done: asyncio.Future[None] = loop.create_future()
    remaining = len(steps)

    def finish(result: StepResult) -> None:
        nonlocal remaining
        status[result.step_id] = result.status
        out.results.append(result)
        record(StepFinished(t=clock(), act=act, result=result, depends_on=deps[result.step_id]))
        remaining -= 1
        if remaining == 0 and not all_done.done():
            all_done.set_result(None)

    def skip_dependents(failed: str) -> None:
        todo = list(dependents[failed])
        while todo:
            sid = todo.pop()
            if status[sid] is not StepStatus.pending:
                continue
            blocker = next(d for d in deps[sid] if status[d] in _BAD)
            now = clock()
            finish(
                StepResult(
                    step_id=sid,
                    status=StepStatus.skipped,
                    error=f"dependency {blocker!r} {status[blocker].value}",
                    tool=by_id[sid].tool_name,
                    args=by_id[sid].args,
                    started_at=None,
                    ended_at=now,
                )
            )
            todo.extend(dependents[sid])

    def on_done(step: Step, result: StepResult, error: BaseException | None) -> None:
        if closed:  # the act was cancelled; this step already ended ``cancelled``
            return
        running.pop(step.id, None)
        if result.status is StepStatus.succeeded:
            outputs[step.id] = result.output
        if error is not None:
            out.errors[step.id] = error
        finish(result)
        if result.status is StepStatus.succeeded:
            for nxt in dependents[step.id]:
                waiting[nxt] -= 1
                if waiting[nxt] == 0 and status[nxt] is StepStatus.pending:
                    ready.append(by_id[nxt])
        else:
            skip_dependents(step.id)
        launch()

    def launch() -> None:
        while ready and (max_concurrency is None or len(running) < max_concurrency):
            step = ready.popleft()
            status[step.id] = StepStatus.running
            started = clock()
            task = loop.create_task(
                _run_step(
                    step, plan, deps[step.id], tool_for(step), tools, outputs, act, clock, record
                )
            )
            running[step.id] = (task, started)
            task.add_done_callback(_callback(step, on_done))

    launch()
    try:
        await all_done
    except asyncio.CancelledError:
        closed = True
        now = clock()
        for sid, (task, started) in list(running.items()):
            task.cancel()
            step = by_id[sid]
            finish(
                StepResult(
                    step_id=sid,
                    status=StepStatus.cancelled,
                    error="cancelled while running",
                    attempts=1,
                    tool=step.tool_name,
                    args=step.args,
                    started_at=started,
                    ended_at=now,
                )
            )
        running.clear()
        for step in steps:
            if status[step.id] is StepStatus.pending:
                finish(
                    StepResult(
                        step_id=step.id,
                        status=StepStatus.cancelled,
                        error="cancelled before it started",
                        tool=step.tool_name,
                        args=step.args,
                        ended_at=now,
                    )
                )
        raise
    return out


_BAD = frozenset({StepStatus.failed, StepStatus.skipped, StepStatus.cancelled})


def _callback(
    step: Step, on_done: Callable[[Step, StepResult, BaseException | None], None]
) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a bug below the tool call; the step still ends
            result = StepResult(
                step_id=step.id,
                status=StepStatus.failed,
                error=f"{type(exc).__name__}: {exc}",
                error_type=type(exc).__name__,
                fatal=True,
                tool=step.tool_name,
                args=step.args,
            )
            on_done(step, result, exc)
            return
        result, error = task.result()
        on_done(step, result, error)

    return done


async def _attempt(tool: ToolLike, kwargs: dict[str, Any], timeout: float | None) -> Any:
    if tool.is_async:
        call = tool.call(kwargs)
        return await (asyncio.wait_for(call, timeout) if timeout is not None else call)
    fut = run_in_thread(partial(tool.call, kwargs))
    return await (asyncio.wait_for(fut, timeout) if timeout is not None else fut)


async def _run_step(
    step: Step,
    plan: Plan,
    deps: tuple[str, ...],
    tool: ToolLike | None,
    tools: Mapping[str, ToolLike],
    outputs: Mapping[str, Any],
    act: int,
    clock: Callable[[], float],
    record: Callable[[Any], None],
) -> tuple[StepResult, BaseException | None]:
    started = clock()
    name = step.tool_name
    attempt = 1

    def result(
        status: StepStatus,
        *,
        output: Any = None,
        error: str | None = None,
        error_type: str | None = None,
        fatal: bool = False,
        args: dict[str, Any] = step.args,
    ) -> StepResult:
        return StepResult(
            step_id=step.id,
            status=status,
            output=output,
            error=error,
            error_type=error_type,
            fatal=fatal,
            attempts=attempt,
            tool=name,
            args=args,
            started_at=started,
            ended_at=clock(),
        )

    try:
        args = resolve_refs(plan, step.args, outputs) if step.references else step.args
    except (KeyError, IndexError, AttributeError, TypeError) as exc:
        message = (
            f"a reference in the arguments of step {step.id!r} could not be resolved "
            f"({type(exc).__name__}: {exc}); refer to a field the output has"
        )
        record(StepStarted(t=started, act=act, step_id=step.id, tool=name, depends_on=deps))
        failed = result(
            StepStatus.failed, output=message, error=message, error_type="InvalidReference"
        )
        return failed, exc
    record(
        StepStarted(
            t=started, act=act, step_id=step.id, tool=name, args=args, attempt=1, depends_on=deps
        )
    )
    if tool is None:
        text = invalid_tool_message(name, tools)
        return result(
            StepStatus.failed, output=text, error=text, error_type=TOOL_NOT_FOUND, args=args
        ), None
    try:
        kwargs = tool.validate_args(args)
    except ToolArgumentsError as exc:
        text = str(exc)
        return result(
            StepStatus.failed, output=text, error=text, error_type=type(exc).__name__, args=args
        ), exc
    policy = step.retry
    while True:
        try:
            value = await _attempt(tool, kwargs, step.timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a tool's failure becomes this step's result
            if policy is not None and policy.retries(exc, attempt):
                await asyncio.sleep(policy.wait(attempt))
                attempt += 1
                record(
                    StepStarted(
                        t=clock(),
                        act=act,
                        step_id=step.id,
                        tool=name,
                        args=args,
                        attempt=attempt,
                        depends_on=deps,
                    )
                )
                continue
            if isinstance(exc, TimeoutError) and step.timeout is not None:
                message = f"TimeoutError: timed out after {step.timeout:g} s"
            else:
                message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            handled = tool.handle_error(exc)
            return result(
                StepStatus.failed,
                output=handled,
                error=message,
                error_type=type(exc).__name__,
                fatal=handled is None,
                args=args,
            ), exc
        return result(StepStatus.succeeded, output=value, args=args), None
