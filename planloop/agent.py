"""The agent: a model, tools and a planner driven through the typed loop."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from planloop._diagrams import check_dir
from planloop._runnable import Runnable
from planloop.engine.durable import StoreOption
from planloop.engine.loop import LoopConfig, ParsingErrorHandler, StateHandler, TrimSteps
from planloop.engine.planner import Planner
from planloop.engine.spec import MachineSpec
from planloop.engine.states import LoopState
from planloop.engine.trace import Limits
from planloop.errors import DefinitionError
from planloop.models.messages import ChatModel, ResumableModel
from planloop.nodes.planners import ReActPlanner, ToolCallingPlanner
from planloop.nodes.tool import Tool, as_tool

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.tools import BaseTool

__all__ = ["Agent", "chat_model"]


class Agent(Runnable):
    """Runs a model with tools as a typed state machine: plan, act, observe, finish.

    Args:
        model: the chat model: a :class:`~planloop.models.ChatModel`, or any
            LangChain chat model (wrapped in
            :class:`~planloop.models.langchain.LangChainChatModel`); may be
            ``None`` when the planner needs none.
        tools: :class:`Tool` objects, plain functions (made into tools), or
            LangChain tools (``BaseTool``: ``@tool``, ``StructuredTool``, ...).
        planner: ``"tool_calling"`` (default), ``"react"``, or a planner object.
        max_iterations: passes through ``observe`` before stopping; ``None``
            for no limit, ``0`` to stop before any model call.
        max_execution_time: a hard deadline in seconds for the whole run.
        early_stopping_method: ``"force"`` returns a fixed message when a limit
            stops the run; ``"generate"`` asks the planner for a final answer.
        handle_parsing_errors: what to do when the model's output cannot be
            parsed: ``False`` stops the run and raises, ``True`` sends the
            parser's feedback back as an observation, a string sends that
            string, a function of the error sends its return value.
        trim_intermediate_steps: show the planner only the last N steps
            (N > 0), or map the list with a function; ``-1`` shows all.
        max_model_calls, max_tokens: budgets; exceeding one stops the run
            with reason ``budget``.
        max_concurrency: how many steps of one plan may run at once
            (default: as many as are ready).
        on_tool_error: ``"stop"``: a tool error nothing handled stops the run
            and raises :class:`StepFailed`; ``"observe"``: the error becomes the
            step's observation and the planner can plan around it. The default
            is the planner's preference (``"observe"`` for
            :class:`CompilerPlanner`), else ``"stop"``.
        spec, handlers: a machine spec with extra states, and a handler per
            extra state returning the event that leaves it (a ``Stopped`` event
            ends the run stopped, with its reason and output; raising
            :class:`~planloop.StopRun` does the same). The built-in states
            ``plan``, ``act`` and ``observe`` cannot be given a handler.
        name: shown in traces and diagrams.
        diagram_dir: a directory (created if missing) where every run writes
            ``<run_id>.svg``, a picture of the run, when it ends: finished,
            stopped or failed. ``None`` (default) uses ``$PLANLOOP_DIAGRAM_DIR``
            if it is set when the run starts, except for a run nested in
            another planloop run (a sub-agent), which the outer run's picture
            shows. A picture that cannot be drawn or written gives a
            :class:`~planloop.DiagramWarning` and leaves the result as it is.
        store: where runs are recorded, with a checkpoint after every
            transition, so they can be listed, replayed and resumed: ``None``
            (default) is the SQLite file ``.planloop/planloop.db`` under the
            working directory or ``$PLANLOOP_HOME/planloop.db`` (``PLANLOOP_STORE=off``
            turns it off), ``False`` records nothing, or a path or a
            :class:`~planloop.Store`.
        interrupt_before: states to pause before entering (``["act"]`` shows
            each plan to a person before it runs); a paused run ends with status
            ``paused`` and goes on with :meth:`resume` and a decision.

    Raises:
        DefinitionError: an argument is invalid (every problem is listed),
            e.g. ``diagram_dir`` is a file.

    Example:
        >>> from planloop import Agent, tool
        >>> from planloop.models import ToolCall
        >>> from planloop.testing import ScriptedModel
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two integers.'''
        ...     return a + b
        >>> model = ScriptedModel([ToolCall("add", {"a": 2, "b": 3}), "2 + 3 = 5"])
        >>> result = Agent(model, [add]).run_sync("What is 2 + 3?")
        >>> result.output, result.status, result.iterations
        ('2 + 3 = 5', <RunStatus.finished: 'finished'>, 1)
    """

    def __init__(
        self,
        model: ChatModel | BaseChatModel | None,
        tools: Iterable[Tool | BaseTool | Callable[..., Any]] = (),
        *,
        planner: Planner | Literal["tool_calling", "react"] | None = None,
        max_iterations: int | None = 15,
        max_execution_time: float | None = None,
        early_stopping_method: Literal["force", "generate"] = "force",
        handle_parsing_errors: ParsingErrorHandler = False,
        trim_intermediate_steps: TrimSteps = -1,
        max_model_calls: int | None = None,
        max_tokens: int | None = None,
        max_concurrency: int | None = None,
        on_tool_error: Literal["stop", "observe"] | None = None,
        spec: MachineSpec | None = None,
        handlers: Mapping[str, StateHandler] | None = None,
        name: str = "agent",
        diagram_dir: str | os.PathLike[str] | None = None,
        store: StoreOption = None,
        interrupt_before: Iterable[str] = (),
    ) -> None:
        problems: list[str] = self._set_durability(store, interrupt_before)
        self.tools: list[Tool] = [as_tool(t) for t in tools]
        problems += _option_problems(
            self.tools,
            max_iterations=max_iterations,
            max_execution_time=max_execution_time,
            max_model_calls=max_model_calls,
            max_tokens=max_tokens,
            max_concurrency=max_concurrency,
            handlers=handlers,
            trim_intermediate_steps=trim_intermediate_steps,
        )
        try:
            self.diagram_dir = check_dir(diagram_dir)
        except DefinitionError as exc:
            problems.append(str(exc))
        if problems:
            raise DefinitionError("invalid Agent:\n" + "\n".join(f"  - {p}" for p in problems))
        model = chat_model(model)
        self.model = model
        self.planner = _planner(planner, model)
        self.name = name
        self._config = LoopConfig(
            planner=self.planner,
            tools={t.name: t for t in self.tools},
            spec=spec or MachineSpec.default(),
            limits=Limits(
                max_iterations=max_iterations,
                max_execution_time=max_execution_time,
                max_model_calls=max_model_calls,
                max_tokens=max_tokens,
            ),
            early_stopping_method=early_stopping_method,
            handle_parsing_errors=handle_parsing_errors,
            trim_intermediate_steps=trim_intermediate_steps,
            handlers=dict(handlers or {}),
            max_concurrency=max_concurrency,
            on_tool_error=on_tool_error or _tool_error_default(self.planner),
            name=name,
            interrupt_before=self.interrupt_before,
            on_resume=model.resumed_after if isinstance(model, ResumableModel) else None,
        )

    @property
    def spec(self) -> MachineSpec:
        """The machine this agent runs."""
        return self._config.spec

    @property
    def limits(self) -> Limits:
        return self._config.limits

    def _loop_config(self) -> LoopConfig:
        return self._config

    def __repr__(self) -> str:
        names = [t.name for t in self.tools]
        planner = type(self.planner).__name__
        return f"Agent(name={self.name!r}, tools={names!r}, planner={planner})"


@overload
def chat_model(model: None) -> None: ...
@overload
def chat_model(model: ChatModel | BaseChatModel) -> ChatModel: ...
@overload
def chat_model(model: ChatModel | BaseChatModel | None) -> ChatModel | None: ...


def chat_model(model: ChatModel | BaseChatModel | None) -> ChatModel | None:
    """A LangChain chat model wrapped in :class:`~planloop.models.langchain.LangChainChatModel`.

    Anything else comes back as it is. LangChain is looked at only when the
    program has loaded it already, so planloop never imports it for this.
    """
    if model is None or isinstance(model, ChatModel) or "langchain_core" not in sys.modules:
        return model  # type: ignore[return-value]
    from planloop.models.langchain import as_chat_model

    wrapped: ChatModel = as_chat_model(model)
    return wrapped


_BUILTIN_STATES = frozenset({LoopState.plan, LoopState.act, LoopState.observe})


def _option_problems(
    tools: list[Tool],
    *,
    max_iterations: int | None,
    max_execution_time: float | None,
    max_model_calls: int | None,
    max_tokens: int | None,
    max_concurrency: int | None,
    handlers: Mapping[str, StateHandler] | None,
    trim_intermediate_steps: TrimSteps,
) -> list[str]:
    """Every problem with an :class:`Agent`'s tools, limits and handlers, in one list."""
    problems: list[str] = []
    seen: set[str] = set()
    for t in tools:
        if t.name in seen:
            problems.append(f"two tools are named {t.name!r}; give one of them another name")
        seen.add(t.name)
    for label, value in (
        ("max_iterations", max_iterations),
        ("max_model_calls", max_model_calls),
        ("max_tokens", max_tokens),
    ):
        if value is not None and (not isinstance(value, int) or value < 0):
            problems.append(f"{label}={value!r}; use a whole number >= 0 or None")
    if max_execution_time is not None and not max_execution_time >= 0:
        problems.append(f"max_execution_time={max_execution_time!r}; use seconds >= 0 or None")
    if max_concurrency is not None and (
        not isinstance(max_concurrency, int) or max_concurrency < 1
    ):
        problems.append(f"max_concurrency={max_concurrency!r}; use a whole number >= 1 or None")
    for state in sorted(set(handlers or ()) & _BUILTIN_STATES):
        problems.append(
            f"handlers names the built-in state {state!r}, which runs the planner, the "
            "plan or the observation and checks the limits; pass planner=... to change "
            "how plans are made, or add a state of your own to the spec "
            "(MachineSpec.with_transitions) and give the handler to that"
        )
    if isinstance(trim_intermediate_steps, int) and trim_intermediate_steps == 0:
        problems.append(
            "trim_intermediate_steps=0 would hide every step; use N > 0, -1 (all) or a function"
        )
    return problems


def _tool_error_default(planner: Planner) -> Literal["stop", "observe"]:
    return "observe" if getattr(planner, "on_tool_error", "stop") == "observe" else "stop"


def _planner(planner: Planner | str | None, model: ChatModel | None) -> Planner:
    if planner is None or planner == "tool_calling":
        return ToolCallingPlanner(model)
    if planner == "react":
        return ReActPlanner(model)
    if isinstance(planner, str):
        raise DefinitionError(
            f"unknown planner {planner!r}; use 'tool_calling', 'react' or a planner object"
        )
    if not (hasattr(planner, "plan") and hasattr(planner, "final_answer")):
        raise DefinitionError(
            f"{type(planner).__name__} is not a planner: it needs async plan(ctx) and "
            "final_answer(ctx) methods"
        )
    with_model = getattr(planner, "with_model", None)
    if model is not None and getattr(planner, "model", "absent") is None and with_model:
        bound: Planner = with_model(model)
        return bound
    return planner
