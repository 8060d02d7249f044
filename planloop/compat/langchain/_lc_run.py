"""One compat ``AgentExecutor`` run on planloop's engine: the planner and step adapters.

The LangChain agent decides in the ``plan`` state (its ``plan`` / ``aplan``);
its actions become a planloop :class:`~planloop.Plan` whose steps call the
LangChain tools; the engine's limits, stop reasons and trace do the rest.
:func:`drive` runs the loop and yields what LangChain's executor yields, in
its order: each step's actions, then its observations, then the step itself,
and at the end the :class:`AgentFinish`.

LangChain's two sides differ and both are kept:

* sync (``invoke``, ``stream``, ``iter``): ``plan``, ``on_agent_action`` and
  ``tool.run`` on the caller's thread (through :class:`CallerThread`, which
  :func:`drive`'s consumer iterates with), the actions of one step one after another
  (each step depends on the one before); ``max_execution_time`` is checked
  only before each step, so a slow tool is waited for;
* async (``ainvoke``, ``astream``): ``aplan``, the actions of a step in
  parallel (``asyncio.gather`` in LangChain), ``max_execution_time`` a hard
  deadline; no ``on_agent_action`` for a parsing error.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping, Set
from typing import TYPE_CHECKING, Any, Literal

from langchain_classic.agents.agent import ExceptionTool
from langchain_classic.agents.tools import InvalidTool
from langchain_core.agents import AgentAction, AgentFinish, AgentStep
from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.exceptions import OutputParserException
from langchain_core.tools import BaseTool

from planloop.compat.langchain._lc_bridge import CallerThread
from planloop.engine.loop import LoopConfig, StopRun, run_loop
from planloop.engine.plan import Plan, Step
from planloop.engine.planner import Answer, RunContext
from planloop.engine.states import LoopState, StopReason
from planloop.engine.tooling import ToolSpec
from planloop.engine.trace import Limits, Trace, Transitioned
from planloop.errors import OutputParserError, RunError

if TYPE_CHECKING:
    from langchain_classic.agents.agent import AgentExecutor as LCAgentExecutor

__all__ = ["Item", "LangChainRun", "drive"]

Manager = CallbackManagerForChainRun | AsyncCallbackManagerForChainRun
Pair = tuple[AgentAction, Any]
Item = (
    tuple[Literal["action"], AgentAction]
    | tuple[Literal["step"], AgentStep]
    | tuple[Literal["iteration"], list[Pair]]
    | tuple[Literal["finish"], AgentFinish, bool]
)
"""What :func:`drive` yields; ``finish`` says whether its step counts as an iteration."""


class _Channel:
    """Items from the engine to the consumer, and the consumer's demand back.

    ``wanted`` returns once the consumer has taken everything put so far and
    asks for more: the engine waits on it before each model call and tool
    call, which keeps a sync ``stream`` as lazy as LangChain's generator.
    """

    def __init__(self) -> None:
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()
        self._hungry = asyncio.Event()
        self._closed = False

    def put(self, item: Item) -> None:
        self._items.append(item)
        self._hungry.clear()
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def wanted(self) -> None:
        await self._hungry.wait()

    async def get(self) -> Item | None:
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            self._hungry.set()
            await self._ready.wait()
        return self._items.popleft()


class _ToolInfo:
    """A LangChain tool as the engine's tool table sees it (name, ``return_direct``)."""

    def __init__(self, tool: BaseTool) -> None:
        self.tool = tool

    @property
    def name(self) -> str:
        return self.tool.name

    @property
    def return_direct(self) -> bool:
        return self.tool.return_direct

    @property
    def is_async(self) -> bool:
        return False

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.tool.name, description=self.tool.description)

    def validate_args(
        self, args: Mapping[str, Any], *, partial: Set[str] = frozenset()
    ) -> dict[str, Any]:
        return dict(args)

    def call(self, kwargs: dict[str, Any]) -> Any:
        return self.tool.run(kwargs.get("tool_input", kwargs))

    def handle_error(self, error: BaseException) -> Any | None:
        return None


class LangChainRun:
    """The state of one run: LangChain's intermediate steps, the items to hand out."""

    def __init__(
        self,
        executor: LCAgentExecutor,
        inputs: dict[str, Any],
        manager: Manager,
        *,
        is_async: bool,
        colors: Mapping[str, str],
        steps: list[Pair] | None = None,
    ) -> None:
        self.executor = executor
        self.agent = executor._action_agent
        self.inputs = inputs
        self.manager = manager
        self.is_async = is_async
        self.colors = colors
        self.tools = {tool.name: tool for tool in executor.tools}
        self.steps: list[Pair] = steps if steps is not None else []
        self.channel = _Channel()
        self.current: list[AgentAction] = []
        self.observations: dict[int, Any] = {}
        self.rejected: Pair | None = None
        self.finish: AgentFinish | None = None
        self.counted = True
        self.stop_failed = False
        """The stopped response raised (LangChain's iterator reports no chain error then)."""
        self.trace: Trace | None = None
        self.started = time.time()
        self.caller = CallerThread()
        """The sync side's consumer iterates :func:`drive` with it; the blocking calls run there."""

    # --- helpers ---------------------------------------------------------------

    async def on_caller(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        # On the caller's thread, as LangChain's sync side calls them.
        return await self.caller.call(fn, *args, **kwargs)

    def child(self) -> Any:
        return self.manager.get_child()

    # --- the plan state --------------------------------------------------------

    async def plan(self, ctx: RunContext) -> Plan | Answer:
        self.trace = ctx.trace
        await self.channel.wanted()
        limit = self.executor.max_execution_time
        if not self.is_async and limit is not None:
            # LangChain's sync loop reads the clock only between steps, starting at 0.
            elapsed = time.time() - self.started if ctx.iteration else 0.0
            if elapsed >= limit:
                raise StopRun(StopReason.max_execution_time)
        visible = self.executor._prepare_intermediate_steps(self.steps)
        agent, inputs = self.agent, self.inputs
        if self.is_async:
            call = agent.aplan(visible, callbacks=self.child(), **inputs)
        else:
            call = self.on_caller(agent.plan, visible, callbacks=self.child(), **inputs)
        try:
            output = await ctx.record_model_call(type(agent).__name__, call)
        except OutputParserException as exc:
            raise await self._rejected(exc) from exc
        if isinstance(output, AgentFinish):
            self.finish, self.counted = output, True
            return Answer(dict(output.return_values), log=output.log)
        actions = [output] if isinstance(output, AgentAction) else list(output)
        self.current, self.observations = actions, {}
        for action in actions:
            self.channel.put(("action", action))
        return Plan(_steps(actions, self, chained=not self.is_async), log=actions[0].log)

    async def _rejected(self, exc: OutputParserException) -> Exception:
        handle = self.executor.handle_parsing_errors
        if handle is False:
            error = ValueError(
                "An output parsing error occurred. In order to pass this error back to "
                "the agent and have it try again, pass `handle_parsing_errors=True` to "
                f"the AgentExecutor. This is the error: {exc!s}"
            )
            error.__cause__ = exc
            return error
        text = str(exc)
        if handle is True:
            if exc.send_to_llm:
                observation: Any = str(exc.observation)
                text = str(exc.llm_output)
            else:
                observation = "Invalid or incomplete response"
        elif isinstance(handle, str):
            observation = handle
        else:
            observation = handle(exc)
        action = AgentAction("_Exception", observation, text)
        kwargs = self.agent.tool_run_logging_kwargs()
        verbose = self.executor.verbose
        if isinstance(self.manager, AsyncCallbackManagerForChainRun):
            result = await ExceptionTool().arun(
                action.tool_input, verbose=verbose, color=None, callbacks=self.child(), **kwargs
            )
        else:
            manager = self.manager

            def run() -> Any:
                manager.on_agent_action(action, color="green")
                return ExceptionTool().run(
                    action.tool_input, verbose=verbose, color=None, callbacks=self.child(), **kwargs
                )

            result = await self.on_caller(run)
        self.rejected = (action, result)
        self.channel.put(("step", AgentStep(action=action, observation=result)))
        return OutputParserError(str(exc), llm_output=text, observation=str(result))

    async def final_answer(self, ctx: RunContext) -> Answer:
        method = self.executor.early_stopping_method
        stop = self.agent.return_stopped_response
        try:
            if self.is_async:  # LangChain calls it on the loop, unawaited, in both sides
                finish = stop(method, self.steps, **self.inputs)
            else:
                finish = await self.on_caller(stop, method, self.steps, **self.inputs)
        except BaseException:
            self.stop_failed = True
            raise
        self.finish, self.counted = finish, False
        return Answer(dict(finish.return_values), log=finish.log)

    # --- the act state ---------------------------------------------------------

    async def perform(self, index: int, action: AgentAction) -> Any:
        await self.channel.wanted()
        tool = self.tools.get(action.tool)
        kwargs = self.agent.tool_run_logging_kwargs()
        if tool is None:
            runner: BaseTool = InvalidTool()
            tool_input: Any = {
                "requested_tool_name": action.tool,
                "available_tool_names": list(self.tools),
            }
            color = None
        else:
            runner, tool_input, color = tool, action.tool_input, self.colors.get(tool.name)
            if tool.return_direct:
                kwargs["llm_prefix"] = ""
        verbose = self.executor.verbose
        if isinstance(self.manager, AsyncCallbackManagerForChainRun):
            await self.manager.on_agent_action(action, verbose=verbose, color="green")
            observation = await runner.arun(
                tool_input, verbose=verbose, color=color, callbacks=self.child(), **kwargs
            )
        else:
            manager = self.manager

            def run() -> Any:
                manager.on_agent_action(action, color="green")
                return runner.run(
                    tool_input, verbose=verbose, color=color, callbacks=self.child(), **kwargs
                )

            observation = await self.on_caller(run)
            self.channel.put(("step", AgentStep(action=action, observation=observation)))
        self.observations[index] = observation
        return observation

    # --- entering observe ------------------------------------------------------

    def on_event(self, event: Any) -> None:
        if type(event) is not Transitioned or event.target != LoopState.observe:
            return
        if event.source == LoopState.act:
            if len(self.observations) < len(self.current):  # a tool raised: the run fails
                return
            pairs = [(a, self.observations[i]) for i, a in enumerate(self.current)]
            if self.is_async:  # gathered: observations in action order, after all of them
                for action, observation in pairs:
                    self.channel.put(("step", AgentStep(action=action, observation=observation)))
        elif self.rejected is not None:
            pairs, self.rejected = [self.rejected], None
        else:
            return
        self.steps.extend(pairs)
        direct = self.executor._get_tool_return(pairs[0]) if len(pairs) == 1 else None
        if direct is not None:
            self.finish, self.counted = direct, True
        else:
            self.channel.put(("iteration", pairs))


def _steps(actions: list[AgentAction], run: LangChainRun, *, chained: bool) -> list[Step]:
    steps: list[Step] = []
    seen: dict[str, int] = {}
    for index, action in enumerate(actions):
        seen[action.tool] = seen.get(action.tool, 0) + 1
        step_id = action.tool if seen[action.tool] == 1 else f"{action.tool}#{seen[action.tool]}"
        args = _args(action.tool_input)
        if Step(id=step_id, tool=action.tool, args=args).references:
            # a "$ref" in the tool's own input is not a planloop reference
            args = {"tool_input": repr(action.tool_input)}
        depends = (steps[-1].id,) if chained and steps else ()
        steps.append(
            Step(id=step_id, tool=_runner(run, index, action), args=args, depends_on=depends)
        )
    return steps


def _args(tool_input: Any) -> dict[str, Any]:
    if isinstance(tool_input, dict) and all(isinstance(k, str) for k in tool_input):
        return dict(tool_input)
    return {"tool_input": tool_input}


def _runner(run: LangChainRun, index: int, action: AgentAction) -> Callable[..., Any]:
    async def step(**_: Any) -> Any:
        return await run.perform(index, action)

    # The step is named after the tool: that is what the trace and the diagram show,
    # and how the engine finds the tool's return_direct.
    step.__name__ = step.__qualname__ = action.tool
    return step


class _Planner:
    def __init__(self, run: LangChainRun) -> None:
        self._run = run

    async def plan(self, ctx: RunContext) -> Plan | Answer:
        return await self._run.plan(ctx)

    async def final_answer(self, ctx: RunContext) -> Answer:
        return await self._run.final_answer(ctx)


async def drive(run: LangChainRun) -> AsyncGenerator[Item, None]:
    """Run the loop, yielding LangChain's items; raise what LangChain would raise."""
    executor = run.executor
    limit = executor.max_execution_time if run.is_async else None
    config = LoopConfig(
        planner=_Planner(run),
        tools={name: _ToolInfo(tool) for name, tool in run.tools.items()},
        limits=Limits(max_iterations=executor.max_iterations, max_execution_time=limit),
        early_stopping_method="generate",  # the agent's return_stopped_response decides
        handle_parsing_errors=True,  # the planner already chose LangChain's observation
        name=executor.get_name(),
    )
    task = asyncio.ensure_future(
        run_loop(config, run.inputs, run_id=str(run.manager.run_id), on_event=run.on_event)
    )
    task.add_done_callback(lambda _: run.channel.close())
    try:
        while (item := await run.channel.get()) is not None:
            yield item
        failure: BaseException | None = None
        try:
            result = task.result()
        except RunError as exc:
            if exc.result is not None:
                run.trace = exc.result.trace
            failure = exc.__cause__ if exc.__cause__ is not None else exc
        else:
            run.trace = result.trace
        if failure is not None:
            raise failure
        finish = run.finish
        if finish is None:  # the engine ended without a decision of the agent's
            raise RuntimeError(f"the run ended {result.status} without an AgentFinish")
        yield ("finish", finish, run.counted)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait([task])
