"""How one step of an act runs, whatever its tool: the same path for every step.

A step whose dependencies succeeded goes through :meth:`StepRunner.run`:
its ``$ref`` arguments are resolved from the outputs so far, its start is
recorded, its tool is found and its arguments are checked, then each try is
handed to the act's :class:`~planloop.engine.executor.Executor` under the
step's timeout, as often as its retry policy allows. The result is a
:class:`StepResult` with the exception behind a failure. A step that fails
before its tool is called (a reference that does not resolve, an unknown tool,
arguments that do not fit) ends ``failed`` with the message the planner is shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from planloop.engine.executor import Executor
from planloop.engine.functions import FunctionTool
from planloop.engine.plan import Plan, Step, resolve_refs
from planloop.engine.states import StepStatus
from planloop.engine.steps import StepResult
from planloop.engine.tooling import ToolLike
from planloop.engine.trace import StepLog
from planloop.errors import ToolArgumentsError

__all__ = ["TOOL_NOT_FOUND", "StepRunner", "crashed", "invalid_tool_message", "step_result"]

TOOL_NOT_FOUND = "ToolNotFound"
"""The ``error_type`` of a step whose tool does not exist."""

Ended = tuple[StepResult, BaseException | None]
"""A step's result, and the exception behind it when it failed."""


def invalid_tool_message(name: str, tools: Mapping[str, ToolLike]) -> str:
    """The observation for a call to a tool that does not exist (AgentExecutor's text)."""
    return f"{name} is not a valid tool, try one of [{', '.join(tools)}]."


def step_result(
    step: Step,
    status: StepStatus,
    *,
    args: dict[str, Any],
    output: Any = None,
    error: str | None = None,
    error_type: str | None = None,
    fatal: bool = False,
    attempts: int = 0,
    started: float | None = None,
    ended: float | None = None,
) -> StepResult:
    """``step``'s :class:`StepResult`, every field given."""
    return StepResult(
        step_id=step.id,
        status=status,
        output=output,
        error=error,
        attempts=attempts,
        started_at=started,
        ended_at=ended,
        tool=step.tool_name,
        args=args,
        error_type=error_type,
        fatal=fatal,
    )


class StepRunner:
    """Runs the steps of one act: what they share (plan, tools, outputs, log, executor).

    ``outputs`` is filled by the scheduler as steps succeed; a step reads the
    outputs of its dependencies from it. Tools are found once per name, and a
    callable step is wrapped in one :class:`FunctionTool` for all the act's
    steps that call it.
    """

    __slots__ = ("act", "clock", "deps", "executor", "log", "outputs", "plan", "tools", "wrapped")

    def __init__(
        self,
        plan: Plan,
        tools: Mapping[str, ToolLike],
        *,
        act: int,
        clock: Callable[[], float],
        log: StepLog,
        executor: Executor,
    ) -> None:
        self.plan = plan
        self.deps = plan.index.deps
        self.tools = tools
        self.act = act
        self.clock = clock
        self.log = log
        self.executor = executor
        self.outputs: dict[str, Any] = {}
        self.wrapped: dict[str | Callable[..., Any], ToolLike | None] = {}

    def tool(self, what: str | Callable[..., Any]) -> ToolLike | None:
        """The tool named ``what``, or ``what`` wrapped as a tool; ``None`` if unknown."""
        try:
            return self.wrapped[what]
        except KeyError:
            found = self.tools.get(what) if isinstance(what, str) else FunctionTool(what)
            self.wrapped[what] = found
            return found
        except TypeError:  # an unhashable callable (a method of an unhashable object)
            assert not isinstance(what, str)
            return FunctionTool(what)

    async def run(self, i: int, started: float) -> Ended:
        """Run the step at position ``i``, which starts at ``started``, to its result."""
        step = self.plan.steps[i]
        deps = self.deps[i]
        try:
            tool, args, kwargs = self._prepare(step, deps, started)
        except _Early as early:
            return early.ended
        executor = self.executor
        timeout = step.timeout
        attempt = 1
        while True:
            try:
                job = executor.submit(step.id, tool, kwargs)
                # A task can ignore its cancellation (a tool that catches it): wait
                # through a shield, so the step stops waiting the moment it must.
                waited = asyncio.shield(job) if isinstance(job, asyncio.Task) else job
                try:
                    if timeout is None:
                        value = await waited
                    else:
                        async with asyncio.timeout(timeout):
                            value = await waited
                except (asyncio.CancelledError, TimeoutError):
                    executor.cancel(job)  # cancelled, or out of time: nobody waits for it now
                    raise
                break
            except Exception as exc:  # noqa: BLE001 - retried, or this step's result
                policy = step.retry
                if policy is None or not policy.retries(exc, attempt):
                    return self._failure(step, tool, exc, attempt, args, started)
                wait = policy.wait(attempt)
            await asyncio.sleep(wait)
            attempt += 1
            self.log.started(self.clock(), self.act, step.id, step.tool_name, args, attempt, deps)
        return step_result(
            step,
            StepStatus.succeeded,
            output=value,
            attempts=attempt,
            args=args,
            started=started,
            ended=self.clock(),
        ), None

    def _prepare(
        self, step: Step, deps: tuple[str, ...], started: float
    ) -> tuple[ToolLike, dict[str, Any], dict[str, Any]]:
        """Resolve references, record the start, find the tool and check the arguments.

        Returns the tool, the resolved arguments and the keyword arguments to call it with.

        Raises:
            _Early: the step failed before its tool could be called.
        """
        name = step.tool_name
        args = step.args
        if step.references:
            try:
                args = resolve_refs(self.plan, args, self.outputs)
            except (KeyError, IndexError, AttributeError, TypeError) as exc:
                self.log.started(started, self.act, step.id, name, {}, 1, deps)
                message = (
                    f"a reference in the arguments of step {step.id!r} could not be resolved "
                    f"({type(exc).__name__}: {exc}); refer to a field the output has"
                )
                raise self._early(
                    step, started, message, "InvalidReference", step.args, exc
                ) from None
        self.log.started(started, self.act, step.id, name, args, 1, deps)
        tool = self.tool(step.tool)
        if tool is None:
            text = invalid_tool_message(name, self.tools)
            raise self._early(step, started, text, TOOL_NOT_FOUND, args, None)
        try:
            return tool, args, tool.validate_args(args)
        except ToolArgumentsError as exc:
            raise self._early(step, started, str(exc), type(exc).__name__, args, exc) from None

    def _early(
        self,
        step: Step,
        started: float,
        text: str,
        error_type: str,
        args: dict[str, Any],
        exc: Exception | None,
    ) -> _Early:
        failed = step_result(
            step,
            StepStatus.failed,
            output=text,
            error=text,
            error_type=error_type,
            attempts=1,
            args=args,
            started=started,
            ended=self.clock(),
        )
        return _Early((failed, exc))

    def _failure(
        self,
        step: Step,
        tool: ToolLike,
        error: Exception,
        attempts: int,
        args: dict[str, Any],
        started: float,
    ) -> Ended:
        """The result of a tool that raised: handled by the tool into an observation, or fatal."""
        if isinstance(error, TimeoutError) and step.timeout is not None:
            message = f"TimeoutError: timed out after {step.timeout:g} s"
        else:
            message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        handled = tool.handle_error(error)
        return step_result(
            step,
            StepStatus.failed,
            output=handled,
            error=message,
            error_type=type(error).__name__,
            fatal=handled is None,
            attempts=attempts,
            args=args,
            started=started,
            ended=self.clock(),
        ), error


def crashed(step: Step, exc: BaseException, started: float, ended: float) -> StepResult:
    """A step ended by an exception nothing below it caught (a bug, or an interrupt)."""
    return step_result(
        step,
        StepStatus.failed,
        error=f"{type(exc).__name__}: {exc}",
        error_type=type(exc).__name__,
        fatal=True,
        attempts=1,
        args=step.args,
        started=started,
        ended=ended,
    )


class _Early(Exception):
    """A step that ended before its tool was called (bad reference, unknown tool, bad args)."""

    def __init__(self, ended: Ended) -> None:
        super().__init__(ended[0].error)
        self.ended = ended
