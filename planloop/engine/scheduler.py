"""Execution of one plan (the ``act`` state): event-driven, parallel, never hanging.

A step starts the moment its last dependency succeeds: each finished step
decrements its dependents' counters and starts those that reach zero, so
there are no waves and no polling. Sync tools run on daemon pool threads,
async tools on the event loop, each inside a task; a task that finishes a
step goes on with the first step it made ready, so a chain of async steps
costs one task, not one per step. A failed step marks its
transitive dependents ``skipped``; other branches go on. When the surrounding
task is cancelled (a deadline, a user cancellation) every step still open
ends ``cancelled`` and sync tools are abandoned rather than waited for.

This is the hot path of a large plan, so it is written for speed: positions
instead of ids, the plan's edges computed once per plan, records built
without a second validation (see ``_trusted``), a step's completion handled
at the end of its own task rather than in a done callback, and tasks reused.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from planloop.engine._threads import run_in_thread, submitter
from planloop.engine._trusted import trusted_maker
from planloop.engine.functions import FunctionTool
from planloop.engine.plan import Plan, Step, resolve_refs
from planloop.engine.states import StepStatus
from planloop.engine.steps import StepResult
from planloop.engine.tooling import ToolLike
from planloop.engine.trace import StepLog
from planloop.errors import ToolArgumentsError

__all__ = ["ActOutcome", "execute_lone_step", "execute_plan", "invalid_tool_message"]

TOOL_NOT_FOUND = "ToolNotFound"

_PENDING = StepStatus.pending
_RUNNING = StepStatus.running
_SUCCEEDED = StepStatus.succeeded
_FAILED = StepStatus.failed
_SKIPPED = StepStatus.skipped
_CANCELLED = StepStatus.cancelled


def invalid_tool_message(name: str, tools: Mapping[str, ToolLike]) -> str:
    """The observation for a call to a tool that does not exist (AgentExecutor's text)."""
    return f"{name} is not a valid tool, try one of [{', '.join(tools)}]."


class ActOutcome:
    """Results of one act, in the order the steps ended, and the exceptions behind failures."""

    __slots__ = ("errors", "results")

    def __init__(self) -> None:
        self.results: list[StepResult] = []
        self.errors: dict[str, BaseException] = {}


# One call per record on the hot path rather than two (a 10,000-step plan makes 10,000;
# its step events go through a StepLog).
_new_result = trusted_maker(StepResult)


def step_result(
    step_id: str,
    status: StepStatus,
    *,
    output: Any = None,
    error: str | None = None,
    attempts: int = 0,
    started_at: float | None = None,
    ended_at: float | None = None,
    tool: str = "",
    args: dict[str, Any],
    error_type: str | None = None,
    fatal: bool = False,
) -> StepResult:
    """A :class:`StepResult` from values the scheduler made (not validated again)."""
    return _new_result(
        {
            "step_id": step_id,
            "status": status,
            "output": output,
            "error": error,
            "attempts": attempts,
            "started_at": started_at,
            "ended_at": ended_at,
            "tool": tool,
            "args": args,
            "error_type": error_type,
            "fatal": fatal,
        },
    )


def _succeeded(
    step: Step, value: Any, args: dict[str, Any], started: float, ended: float
) -> dict[str, Any]:
    # ``step_result``'s fields for the common case, without its keyword call.
    return {
        "step_id": step.id,
        "status": _SUCCEEDED,
        "output": value,
        "error": None,
        "attempts": 1,
        "started_at": started,
        "ended_at": ended,
        "tool": step.tool_name,
        "args": args,
        "error_type": None,
        "fatal": False,
    }


async def execute_plan(
    plan: Plan,
    tools: Mapping[str, ToolLike],
    *,
    act: int,
    clock: Callable[[], float],
    record: Callable[[Any], None],
    max_concurrency: int | None = None,
    outcome: ActOutcome | None = None,
    start: float | None = None,
    log: StepLog | None = None,
) -> ActOutcome:
    """Run every step of ``plan`` (already validated) to a terminal status.

    ``clock`` gives seconds since the run started; ``record`` receives the
    trace events, or, when ``log`` is given (the trace's :class:`StepLog`), the
    step events go to ``log``. ``start``, when given, is the ``time.perf_counter()`` reading
    ``clock`` counts from, so that the hot path can read the same time without
    calling it. ``outcome`` may be passed in so the caller keeps what was
    recorded even when this coroutine is cancelled.
    """
    out = outcome if outcome is not None else ActOutcome()
    steps_log = log if log is not None else StepLog(record=record)
    steps = plan.steps
    if len(steps) == 1 and not plan.index.indegree[0]:
        # One step (most acts of a tool-calling agent): nothing to schedule, so none
        # of the machinery below is built for it.
        await execute_lone_step(plan, tools, act, clock, out, steps_log)
        return out
    log_finished = steps_log.finished
    results = out.results
    errors = out.errors
    index = plan.index
    deps_of = index.deps
    position = index.position
    dependents = index.dependents
    waiting = list(index.indegree)
    n = len(steps)
    status = [_PENDING] * n
    started_at: list[float | None] = [None] * n
    outputs: dict[str, Any] = {}
    # A running step's task, or None for a sync step handed straight to a thread.
    running: dict[int, asyncio.Task[None] | None] = {}
    ready = deque(i for i in range(n) if not waiting[i])
    loop = asyncio.get_running_loop()
    all_done: asyncio.Future[None] = loop.create_future()
    remaining = n
    closed = False
    launching = False
    by_name: dict[str, ToolLike | None] = {}
    by_callable: dict[int, FunctionTool] = {}
    env = _Env(plan, tools, outputs, act, clock, steps_log)
    # The hot path reads the time as ``clock`` does, without the call: the same
    # counter less the same start, so its times and ``clock``'s never disagree (an
    # origin estimated as ``perf() - clock()`` was off by the time between the two
    # reads, and a trace's times went back by up to a microsecond). Without
    # ``start``, ``clock`` itself.
    perf: Callable[[], float] = time.perf_counter
    origin = start
    if origin is None:
        perf, origin = clock, 0.0
    to_thread = submitter()  # the pool, with this loop's inbox looked up once

    def tool_for(step: Step) -> ToolLike | None:
        what = step.tool
        if isinstance(what, str):
            try:
                return by_name[what]
            except KeyError:
                found = by_name[what] = tools.get(what)
                return found
        fn = by_callable.get(id(what))
        if fn is None:
            fn = by_callable[id(what)] = FunctionTool(what)
        return fn

    def finish(i: int, result: StepResult) -> None:
        nonlocal remaining
        status[i] = result.status
        results.append(result)
        # Stamped with the step's own end, taken just before with nothing recorded since.
        t = result.ended_at
        log_finished(clock() if t is None else t, act, result, deps_of[i])
        remaining -= 1
        if remaining == 0 and not all_done.done():
            all_done.set_result(None)

    def skip_dependents(failed: int) -> None:
        todo = list(dependents[failed])
        while todo:
            i = todo.pop()
            if status[i] is not _PENDING:
                continue
            step = steps[i]
            blocked, blocker = next(
                (status[position[d]], d) for d in deps_of[i] if status[position[d]] in _BAD
            )
            finish(
                i,
                step_result(
                    step.id,
                    _SKIPPED,
                    error=f"dependency {blocker!r} {blocked.value}",
                    tool=step.tool_name,
                    args=step.args,
                    ended_at=clock(),
                ),
            )
            todo.extend(dependents[i])

    def settle(
        i: int, result: StepResult, error: BaseException | None, me: asyncio.Task[None] | None
    ) -> _Next | None:
        # A step's end, from its task or its thread: never let a scheduler bug
        # leave the act waiting. ``me`` is the task the step ran in, which may
        # take on one of the steps this one made ready (the returned one).
        if closed:  # the act was cancelled; this step already ended ``cancelled``
            return None
        try:
            del running[i]
            ok = result.status is _SUCCEEDED
            if ok:
                outputs[steps[i].id] = result.output
            elif error is not None:
                errors[steps[i].id] = error
            finish(i, result)
            if ok:
                for j in dependents[i]:
                    waiting[j] -= 1
                    if waiting[j] == 0 and status[j] is _PENDING:
                        ready.append(j)
            else:
                skip_dependents(i)
            if ready and not launching:
                return launch(me)
            return None
        except BaseException as exc:  # noqa: BLE001 - handed to the act's awaiter
            if not all_done.done():
                all_done.set_exception(exc)
            return None

    async def work(i: int, step: Step, tool: ToolLike | None) -> None:
        # A step that needs a task, then whichever steps ``settle`` hands this task
        # next: a chain of async steps costs one task rather than one per step.
        # Every step still runs inside a task, and the loop gets control back at
        # least every _SLICE seconds so that deadlines and other steps are served
        # even when the tools themselves never suspend.
        me = asyncio.current_task()
        since = clock()
        while True:
            started = started_at[i] = perf() - origin
            error: BaseException | None = None
            if tool is None or step.timeout is not None or step.retry is not None:
                try:
                    result, error = await _run_step(step, deps_of[i], tool, started, env)
                except asyncio.CancelledError:
                    raise
                except BaseException as exc:  # noqa: BLE001 - a bug below the tool call; the step still ends
                    result, error = _crashed(step, exc, started, clock()), exc
            else:
                # A plain async step, kept short: this is the hot path of a big plan.
                args: dict[str, Any] = step.args
                try:
                    args, kwargs = _prepare(step, deps_of[i], tool, started, env)
                    value = await tool.call(kwargs)
                except _Early as early:
                    result, error = early.result, early.error
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a tool's failure becomes this step's result
                    result, error = _failure(step, tool, exc, 1, args, started, clock())
                except BaseException as exc:  # noqa: BLE001 - nothing can handle it; the step still ends
                    result, error = _crashed(step, exc, started, clock()), exc
                else:
                    result = _new_result(_succeeded(step, value, args, started, perf() - origin))
            nxt = settle(i, result, error, me)
            if nxt is None:
                return
            i, step, tool = nxt
            ended = result.ended_at
            if ended is None or ended - since >= _SLICE:
                await asyncio.sleep(0)
                since = clock()

    def start_in_thread(i: int, step: Step, tool: ToolLike) -> None:
        # A plain sync step needs no task: checked here, run on a pool thread, and
        # settled when the thread hands its outcome back to the loop.
        started = started_at[i] = perf() - origin
        try:
            args, kwargs = _prepare(step, deps_of[i], tool, started, env)
        except _Early as early:
            settle(i, early.result, early.error, None)
            return

        def delivered(value: Any, exc: BaseException | None) -> None:
            if exc is None:
                result = _new_result(_succeeded(step, value, args, started, perf() - origin))
                settle(i, result, None, None)
            elif isinstance(exc, Exception):
                settle(i, *_failure(step, tool, exc, 1, args, started, clock()), None)
            else:  # KeyboardInterrupt, SystemExit in a tool: nothing can handle it
                settle(i, _crashed(step, exc, started, clock()), exc, None)

        to_thread(partial(tool.call, kwargs), delivered)

    def launch_ready(me: asyncio.Task[None] | None = None) -> _Next | None:
        # Starts what is ready, in order, up to the cap. The first step that needs
        # a task is given to ``me`` when there is one (it is not started here).
        nonlocal launching
        cap = max_concurrency
        taken: _Next | None = None
        launching = True  # steps that end at once are settled here, not by recursion
        try:
            while ready and (cap is None or len(running) < cap):
                i = ready.popleft()
                status[i] = _RUNNING
                step = steps[i]
                tool = tool_for(step)
                if (
                    tool is not None
                    and not tool.is_async
                    and step.timeout is None
                    and step.retry is None
                ):
                    running[i] = None
                    start_in_thread(i, step, tool)
                elif me is not None and taken is None:
                    running[i] = me
                    taken = (i, step, tool)
                else:
                    running[i] = loop.create_task(work(i, step, tool))
        finally:
            launching = False
        return taken

    # ``complete`` reaches ``work`` through ``launch``: a reference cycle, broken
    # when the act ends by pointing ``launch`` elsewhere, so that everything this
    # act recorded is freed by reference counting rather than left to the
    # cyclic garbage collector.
    launch: Callable[[asyncio.Task[None] | None], _Next | None] = launch_ready
    # The act's own task runs the first step that needs one (and the chain it
    # starts), as any step's task would: one task and one loop pass fewer per act.
    me = asyncio.current_task()
    taken: _Next | None = None
    if n:
        taken = launch(me)
    else:
        all_done.set_result(None)
    try:
        try:
            if taken is not None:
                await work(*taken)
            await all_done
        except asyncio.CancelledError:
            closed = True
            now = clock()
            for i, task in list(running.items()):
                if task is not None and task is not me:  # ``me`` is being cancelled already
                    task.cancel()
                step = steps[i]
                started = started_at[i]
                finish(
                    i,
                    step_result(
                        step.id,
                        _CANCELLED,
                        error="cancelled while running",
                        attempts=1,
                        tool=step.tool_name,
                        args=step.args,
                        started_at=now if started is None else started,
                        ended_at=now,
                    ),
                )
            running.clear()
            for i, step in enumerate(steps):
                if status[i] is _PENDING:
                    finish(
                        i,
                        step_result(
                            step.id,
                            _CANCELLED,
                            error="cancelled before it started",
                            tool=step.tool_name,
                            args=step.args,
                            ended_at=now,
                        ),
                    )
            raise
    finally:
        launch = _nothing
    return out


_BAD = frozenset({_FAILED, _SKIPPED, _CANCELLED})


async def execute_lone_step(
    plan: Plan,
    tools: Mapping[str, ToolLike],
    act: int,
    clock: Callable[[], float],
    out: ActOutcome,
    log: StepLog,
) -> None:
    """:func:`execute_plan` for a plan of one step that waits for nothing: the same
    records, results and cancellation, in the act's own task; ``log`` takes its
    step events."""
    step = plan.steps[0]
    deps = plan.index.deps[0]
    what = step.tool
    tool = tools.get(what) if isinstance(what, str) else FunctionTool(what)
    env = _Env(plan, tools, {}, act, clock, log)
    started = clock()
    try:
        if tool is not None and tool.is_async and step.timeout is None and step.retry is None:
            # A plain async tool (the common case): ``_run_step`` without its layers.
            args: dict[str, Any] = step.args
            try:
                args, kwargs = _prepare(step, deps, tool, started, env)
                value = await tool.call(kwargs)
            except _Early as early:
                result, error = early.result, early.error
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a tool's failure becomes this step's result
                result, error = _failure(step, tool, exc, 1, args, started, clock())
            else:
                result, error = _new_result(_succeeded(step, value, args, started, clock())), None
        else:
            result, error = await _run_step(step, deps, tool, started, env)
    except asyncio.CancelledError:
        now = clock()
        result = step_result(
            step.id,
            _CANCELLED,
            error="cancelled while running",
            attempts=1,
            tool=step.tool_name,
            args=step.args,
            started_at=started,
            ended_at=now,
        )
        out.results.append(result)
        log.finished(now, act, result, deps)
        raise
    except BaseException as exc:  # noqa: BLE001 - a bug below the tool call; the step still ends
        result, error = _crashed(step, exc, started, clock()), exc
    if error is not None and result.status is not _SUCCEEDED:
        out.errors[step.id] = error
    out.results.append(result)
    t = result.ended_at
    log.finished(clock() if t is None else t, act, result, deps)


def _nothing(me: asyncio.Task[None] | None) -> None:
    return None


_Next = tuple[int, Step, ToolLike | None]
"""A step handed to the task that finished the one before it: position, step, tool."""

_SLICE = 0.002
"""Seconds a task may run chained steps before it lets the event loop run."""


class _Env:
    """What every step of one act shares."""

    __slots__ = ("act", "clock", "log", "outputs", "plan", "tools")

    def __init__(
        self,
        plan: Plan,
        tools: Mapping[str, ToolLike],
        outputs: Mapping[str, Any],
        act: int,
        clock: Callable[[], float],
        log: StepLog,
    ) -> None:
        self.plan = plan
        self.tools = tools
        self.outputs = outputs
        self.act = act
        self.clock = clock
        self.log = log


class _Early(Exception):
    """A step that ended before its tool was called (bad reference, unknown tool, bad args)."""

    def __init__(self, result: StepResult, error: BaseException | None) -> None:
        super().__init__(result.error)
        self.result = result
        self.error = error


def _prepare(
    step: Step, deps: tuple[str, ...], tool: ToolLike | None, started: float, env: _Env
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Resolve references, record the start, check the arguments: ``(args, kwargs)``.

    Raises:
        _Early: the step failed before its tool could be called.
    """
    name = step.tool_name
    args = step.args
    if step.references:
        try:
            args = resolve_refs(env.plan, args, env.outputs)
        except (KeyError, IndexError, AttributeError, TypeError) as exc:
            message = (
                f"a reference in the arguments of step {step.id!r} could not be resolved "
                f"({type(exc).__name__}: {exc}); refer to a field the output has"
            )
            env.log.started(started, env.act, step.id, name, {}, 1, deps)
            raise _early(step, started, env, message, "InvalidReference", step.args, exc) from None
    env.log.started(started, env.act, step.id, name, args, 1, deps)
    if tool is None:
        text = invalid_tool_message(name, env.tools)
        raise _early(step, started, env, text, TOOL_NOT_FOUND, args, None)
    try:
        return args, tool.validate_args(args)
    except ToolArgumentsError as exc:
        raise _early(step, started, env, str(exc), type(exc).__name__, args, exc) from None


def _early(
    step: Step,
    started: float,
    env: _Env,
    text: str,
    error_type: str,
    args: dict[str, Any],
    exc: Exception | None,
) -> _Early:
    failed = step_result(
        step.id,
        _FAILED,
        output=text,
        error=text,
        error_type=error_type,
        attempts=1,
        tool=step.tool_name,
        args=args,
        started_at=started,
        ended_at=env.clock(),
    )
    return _Early(failed, exc)


async def _run_step(
    step: Step, deps: tuple[str, ...], tool: ToolLike | None, started: float, env: _Env
) -> tuple[StepResult, BaseException | None]:
    try:
        args, kwargs = _prepare(step, deps, tool, started, env)
    except _Early as early:
        return early.result, early.error
    assert tool is not None  # _prepare fails a step whose tool is missing
    attempt = 1
    error: Exception
    try:
        if step.timeout is None and step.retry is None:  # the common case, kept short
            value = await _call(tool, kwargs)
        else:
            value, attempt = await _attempts(step, tool, kwargs, args, deps, env)
    except asyncio.CancelledError:
        raise
    except _Failed as failed:
        attempt = failed.attempt
        error = failed.error
    except Exception as raised:  # noqa: BLE001 - a tool's failure becomes this step's result
        error = raised
    else:
        return step_result(
            step.id,
            _SUCCEEDED,
            output=value,
            attempts=attempt,
            tool=step.tool_name,
            args=args,
            started_at=started,
            ended_at=env.clock(),
        ), None
    return _failure(step, tool, error, attempt, args, started, env.clock())


def _failure(
    step: Step,
    tool: ToolLike,
    error: Exception,
    attempts: int,
    args: dict[str, Any],
    started: float,
    ended: float,
) -> tuple[StepResult, BaseException]:
    """The result of a tool that raised: handled by the tool into an observation, or fatal."""
    if isinstance(error, TimeoutError) and step.timeout is not None:
        message = f"TimeoutError: timed out after {step.timeout:g} s"
    else:
        message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    handled = tool.handle_error(error)
    return step_result(
        step.id,
        _FAILED,
        output=handled,
        error=message,
        error_type=type(error).__name__,
        fatal=handled is None,
        attempts=attempts,
        tool=step.tool_name,
        args=args,
        started_at=started,
        ended_at=ended,
    ), error


def _crashed(step: Step, exc: BaseException, started: float, ended: float) -> StepResult:
    """A step ended by an exception nothing below it caught (a bug, or an interrupt)."""
    return step_result(
        step.id,
        _FAILED,
        error=f"{type(exc).__name__}: {exc}",
        error_type=type(exc).__name__,
        fatal=True,
        attempts=1,
        tool=step.tool_name,
        args=step.args,
        started_at=started,
        ended_at=ended,
    )


def _call(tool: ToolLike, kwargs: dict[str, Any]) -> Awaitable[Any]:
    if tool.is_async:
        return tool.call(kwargs)  # type: ignore[no-any-return]
    return run_in_thread(partial(tool.call, kwargs))


class _Failed(Exception):
    """The last attempt's exception, with how many attempts were made."""

    def __init__(self, error: Exception, attempt: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempt = attempt


async def _attempts(
    step: Step,
    tool: ToolLike,
    kwargs: dict[str, Any],
    args: dict[str, Any],
    deps: tuple[str, ...],
    env: _Env,
) -> tuple[Any, int]:
    """Try a step with its timeout, as often as its retry policy allows."""
    timeout = step.timeout
    policy = step.retry
    attempt = 1
    while True:
        try:
            call = _call(tool, kwargs)
            value = await (asyncio.wait_for(call, timeout) if timeout is not None else call)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # retried, or handed back as _Failed
            if policy is not None and policy.retries(exc, attempt):
                await asyncio.sleep(policy.wait(attempt))
                attempt += 1
                env.log.started(env.clock(), env.act, step.id, step.tool_name, args, attempt, deps)
                continue
            raise _Failed(exc, attempt) from exc
        return value, attempt
