"""LangChain's ``AgentExecutor``, running on planloop's engine.

Change one import and keep working code::

    # from langchain_classic.agents import AgentExecutor
    from planloop.compat.langchain import AgentExecutor

:class:`AgentExecutor` is a subclass of ``langchain_classic.agents.AgentExecutor``
(a real LangChain ``Chain``: same fields, defaults, validators, ``invoke`` /
``ainvoke`` / ``batch`` / ``stream`` / ``astream`` / ``astream_log`` / ``iter``,
``run`` / ``arun`` / ``__call__`` / ``acall``, memory and callbacks), whose loop is
planloop's: the agent decides in the ``plan`` state, its actions are a plan
the ``act`` state executes, and the run's limits, stop reasons and
:class:`~planloop.Trace` are the engine's. ``executor.last_trace`` holds the
trace of the latest run, ready to draw (``planloop.visualize.to_svg``).

The outputs, ``intermediate_steps``, texts, stream chunks and callback
events are LangChain's, including where LangChain is weak. How this differs
from planloop's own :class:`planloop.Agent`:

* **Time limit.** Here, as in LangChain, sync runs (``invoke``, ``stream``)
  read the clock only between steps, so a hanging tool hangs the run; async
  runs get a hard deadline. ``planloop.Agent`` has a hard deadline on both
  sides: what is in flight is cancelled, sync tools are abandoned.
* **Threads.** Here, as in LangChain, the sync side calls the agent,
  callbacks and tools on the caller's thread (its ``threading.local`` values
  are seen, ``signal.signal`` works). ``planloop.Agent`` runs sync tools on a
  daemon thread pool, so a deadline can abandon them.
* **Stop reasons.** Here a stopped run answers LangChain's text (``"Agent
  stopped due to iteration limit or time limit."``, or the agent's own answer
  with ``early_stopping_method="generate"``); the typed reason is only in the
  trace (``last_trace.ended.stop_reason``). ``planloop.Agent`` returns a
  ``RunResult`` whose ``stop_reason`` is a ``StopReason``.
* **Errors.** Here what LangChain raises is raised: the tool's own exception,
  ``ValueError`` for an unhandled parsing error, the agent's error for
  ``"generate"`` on agents that cannot generate. ``planloop.Agent`` raises a
  ``RunError`` (``StepFailed``, ``ParsingFailed``, ``PlannerFailed``) that
  carries the partial result and trace.
* **Parallel steps.** Here several actions of one step run one after another
  on the sync side and together on the async side, as in LangChain; when one
  of them raises on the async side the run still waits for the others (LangChain
  drops them unawaited). ``planloop.Agent`` runs a plan's independent steps in
  parallel on both sides, and plans may be DAGs with references between steps.
* **Unknown tools.** Here they run LangChain's ``invalid_tool`` (with its
  callbacks) and the step succeeds with its text; in ``planloop.Agent`` such a
  step fails (``ToolNotFound``) with the same text as the observation.
* **Records.** Runs here are not written to a store; ``planloop.Agent`` records
  each run (SQLite under ``.planloop/``) so it can be resumed and replayed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_classic.agents.agent import AgentExecutor as LCAgentExecutor
from langchain_classic.agents.agent_iterator import (
    AgentExecutorIterator as LCAgentExecutorIterator,
)
from langchain_core.agents import AgentFinish
from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForChainRun,
    CallbackManager,
    CallbackManagerForChainRun,
    Callbacks,
)
from langchain_core.load.dump import dumpd
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.runnables.utils import AddableDict
from langchain_core.utils.input import get_color_mapping
from pydantic import PrivateAttr

from planloop.compat.langchain._lc_run import Item, LangChainRun, Manager, drive
from planloop.engine.trace import Trace

__all__ = ["AgentExecutor", "AgentExecutorIterator"]


class AgentExecutor(LCAgentExecutor):
    """``langchain_classic.agents.AgentExecutor`` on planloop's engine, with a trace per run.

    Example:
        >>> from langchain_core.agents import AgentFinish
        >>> from langchain_core.runnables import RunnableLambda
        >>> agent = RunnableLambda(lambda _: AgentFinish({"output": "hi"}, "hi"))
        >>> executor = AgentExecutor(agent=agent, tools=[])
        >>> executor.invoke({"input": "hello"})
        {'input': 'hello', 'output': 'hi'}
        >>> [str(s) for s in executor.last_trace.states]
        ['plan', 'finish']
    """

    _last_trace: Trace | None = PrivateAttr(default=None)

    @property
    def last_trace(self) -> Trace | None:
        """The planloop trace of the latest run that started (``None`` before the first)."""
        return self._last_trace

    def _call(
        self,
        inputs: dict[str, Any],
        run_manager: CallbackManagerForChainRun | None = None,
    ) -> dict[str, Any]:
        manager = run_manager or CallbackManagerForChainRun.get_noop_manager()
        run = self._new_run(inputs, manager, is_async=False)
        try:
            finish = _final(run.caller.iterate(drive(run)))
        finally:
            self._last_trace = run.trace
        return self._return(finish, run.steps, run_manager=run_manager)

    async def _acall(
        self,
        inputs: dict[str, Any],
        run_manager: AsyncCallbackManagerForChainRun | None = None,
    ) -> dict[str, Any]:
        manager = run_manager or AsyncCallbackManagerForChainRun.get_noop_manager()
        run = self._new_run(inputs, manager, is_async=True)
        finish: AgentFinish | None = None
        try:
            async for item in drive(run):
                if item[0] == "finish":
                    finish = item[1]
        finally:
            self._last_trace = run.trace
        assert finish is not None  # drive ends with a finish or raises
        return await self._areturn(finish, run.steps, run_manager=run_manager)

    def _new_run(
        self,
        inputs: dict[str, Any],
        manager: Manager,
        *,
        is_async: bool,
        steps: list[Any] | None = None,
        excluded_colors: list[str] | None = None,
    ) -> LangChainRun:
        if excluded_colors is None:  # what LangChain's own _call and _acall exclude
            excluded_colors = ["green"] if is_async else ["green", "red"]
        colors = get_color_mapping([t.name for t in self.tools], excluded_colors=excluded_colors)
        return LangChainRun(self, inputs, manager, is_async=is_async, colors=colors, steps=steps)

    def iter(
        self,
        inputs: Any,
        callbacks: Callbacks = None,
        *,
        include_run_info: bool = False,
        async_: bool = False,
    ) -> AgentExecutorIterator:
        """The run step by step: one output per step, the final output last."""
        return AgentExecutorIterator(
            self, inputs, callbacks, tags=self.tags, include_run_info=include_run_info
        )

    def stream(
        self,
        input: dict[str, Any] | Any,
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Iterator[AddableDict]:
        """Each step's actions, then its observations, then the final output."""
        yield from self._streaming(input, config, **kwargs)

    async def astream(
        self,
        input: dict[str, Any] | Any,
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AddableDict]:
        """Async :meth:`stream`: the actions of a step run in parallel."""
        async for chunk in self._streaming(input, config, **kwargs):
            yield chunk

    def _streaming(
        self, input: Any, config: RunnableConfig | None, **kwargs: Any
    ) -> AgentExecutorIterator:
        config = ensure_config(config)
        return AgentExecutorIterator(
            self,
            input,
            config.get("callbacks"),
            tags=config.get("tags"),
            metadata=config.get("metadata"),
            run_name=config.get("run_name"),
            run_id=config.get("run_id"),
            yield_actions=True,
            **kwargs,
        )


class AgentExecutorIterator(LCAgentExecutorIterator):
    """LangChain's ``AgentExecutorIterator`` over a run on planloop's engine.

    ``iterations``, ``time_elapsed`` and ``intermediate_steps`` follow the run
    as LangChain's do; ``reset()`` starts over (iterating again starts a new
    run); ``trace`` is the planloop trace of the latest run.

    Example:
        >>> from langchain_core.agents import AgentFinish
        >>> from langchain_core.runnables import RunnableLambda
        >>> agent = RunnableLambda(lambda _: AgentFinish({"output": "hi"}, "hi"))
        >>> iterator = AgentExecutor(agent=agent, tools=[]).iter({"input": "hello"})
        >>> [chunk["output"] for chunk in iterator]
        ['hi']
        >>> iterator.iterations  # LangChain counts the step that answered
        1
        >>> [str(state) for state in iterator.trace.states]
        ['plan', 'finish']
    """

    trace: Trace | None = None

    def __iter__(self) -> Iterator[AddableDict]:
        self.reset()
        executor = self._executor()
        manager = CallbackManager.configure(*self._callback_options(executor))
        run_manager = manager.on_chain_start(
            dumpd(executor), self.inputs, self.run_id, name=self.run_name
        )
        run = self._run(executor, run_manager, is_async=False)
        try:
            for item in (items := run.caller.iterate(drive(run))):
                if item[0] == "finish":
                    if item[2]:
                        self.update_iterations()
                    output = self._return(item[1], run_manager=run_manager)
                    _close(items)
                    yield output
                    return
                chunk = self._chunk(item)
                if chunk is not None:
                    yield chunk
        except BaseException as exc:
            if not run.stop_failed:  # LangChain's iterator makes the stopped response unguarded
                run_manager.on_chain_error(exc)
            raise
        finally:
            self.trace = executor._last_trace = run.trace

    async def __aiter__(self) -> AsyncIterator[AddableDict]:
        self.reset()
        executor = self._executor()
        manager = AsyncCallbackManager.configure(*self._callback_options(executor))
        run_manager = await manager.on_chain_start(
            dumpd(executor), self.inputs, self.run_id, name=self.run_name
        )
        run = self._run(executor, run_manager, is_async=True)
        try:
            async for item in drive(run):
                if item[0] == "finish":
                    if item[2]:
                        self.update_iterations()
                    yield await self._areturn(item[1], run_manager=run_manager)
                    return
                chunk = self._chunk(item)
                if chunk is not None:
                    yield chunk
        except BaseException as exc:
            if not run.stop_failed:
                await run_manager.on_chain_error(exc)
            raise
        finally:
            self.trace = executor._last_trace = run.trace

    def _callback_options(self, executor: AgentExecutor) -> tuple[Any, ...]:
        """``CallbackManager.configure``'s arguments: this iterator's, then the executor's."""
        return (
            self.callbacks,
            executor.callbacks,
            executor.verbose,
            self.tags,
            executor.tags,
            self.metadata,
            executor.metadata,
        )

    def _run(self, executor: AgentExecutor, manager: Manager, *, is_async: bool) -> LangChainRun:
        return executor._new_run(
            self.inputs,
            manager,
            is_async=is_async,
            steps=self.intermediate_steps,
            excluded_colors=["green", "red"],
        )

    def _executor(self) -> AgentExecutor:
        executor = self.agent_executor
        if not isinstance(executor, AgentExecutor):
            raise TypeError(
                "planloop's AgentExecutorIterator runs planloop's AgentExecutor; got "
                f"{type(executor).__module__}.{type(executor).__name__}. Import "
                "AgentExecutor from planloop.compat.langchain"
            )
        return executor

    def _chunk(self, item: Item) -> AddableDict | None:
        if item[0] == "iteration":
            self.update_iterations()
            return None if self.yield_actions else AddableDict(intermediate_step=item[1])
        if not self.yield_actions:
            return None
        if item[0] == "action":
            return AddableDict(actions=[item[1]], messages=item[1].messages)
        if item[0] == "step":
            return AddableDict(steps=[item[1]], messages=item[1].messages)
        return None


def _final(items: Iterator[Item]) -> AgentFinish:
    finish: AgentFinish | None = None
    for item in items:  # to the end, so the run is closed before the result goes out
        if item[0] == "finish":
            finish = item[1]
    assert finish is not None  # drive ends with a finish or raises
    return finish


def _close(items: Iterator[Item]) -> None:
    close = getattr(items, "close", None)
    if close is not None:
        close()
