"""``PlanAndExecute``: plan every step up front, run each with a sub-agent."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from planloop._diagrams import check_dir
from planloop._runnable import Runnable
from planloop.agent import Agent, chat_model
from planloop.engine.durable import StoreOption
from planloop.engine.loop import LoopConfig
from planloop.engine.trace import Limits
from planloop.errors import DefinitionError
from planloop.models.messages import ChatModel
from planloop.nodes.planners.plan_and_execute import (
    PLANNER_SYSTEM_PROMPT,
    ChatPlanner,
    PlanAndExecutePlanner,
    StepExecutor,
)
from planloop.nodes.tool import Tool

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.tools import BaseTool

__all__ = ["PlanAndExecute", "load_agent_executor", "load_chat_planner"]


def load_chat_planner(
    model: ChatModel | BaseChatModel, system_prompt: str = PLANNER_SYSTEM_PROMPT
) -> ChatPlanner:
    """A planner that asks ``model`` for a numbered plan (as in ``langchain_experimental``).

    ``model`` may be a LangChain chat model; the plan is asked for as
    structured output (``{"steps": [...]}``) and read as text when the model
    answers with a numbered list instead.

    Example:
        >>> from planloop.testing import ScriptedModel
        >>> planner = load_chat_planner(ScriptedModel(["Plan:\\n1. Find the capital\\n2. Say it"]))
        >>> executor = load_agent_executor(ScriptedModel(["Oslo", "It is Oslo."]), [])
        >>> result = PlanAndExecute(planner, executor, store=False).run_sync("Norway's capital?")
        >>> [step.args["step"] for step in result.steps]
        ['Find the capital', 'Say it']
    """
    return ChatPlanner(chat_model(model), system_prompt=system_prompt)


def load_agent_executor(
    model: ChatModel | BaseChatModel,
    tools: Iterable[Tool | BaseTool | Callable[..., Any]],
    *,
    include_task_in_prompt: bool = False,
    **agent_options: Any,
) -> StepExecutor:
    """An executor that runs each step with an :class:`~planloop.Agent` over ``tools``.

    ``agent_options`` go to the Agent (``max_iterations``, ``planner``, ...).

    Example:
        >>> from planloop import tool
        >>> from planloop.models import ToolCall
        >>> from planloop.testing import ScriptedModel
        >>> @tool
        ... def capital(country: str) -> str:
        ...     '''The capital of a country.'''
        ...     return {"Norway": "Oslo"}[country]
        >>> model = ScriptedModel([ToolCall("capital", {"country": "Norway"}), "Oslo"])
        >>> executor = load_agent_executor(model, [capital], max_iterations=3)
        >>> planner = load_chat_planner(ScriptedModel(["1. Look up the capital of Norway"]))
        >>> result = PlanAndExecute(planner, executor, store=False).run_sync("Norway's capital?")
        >>> result.output, [str(s) for s in result.trace.children["step_1"].states]
        ('Oslo', ['plan', 'act', 'observe', 'plan', 'finish'])
    """
    agent = Agent(model, tools, name="step executor", **agent_options)
    return StepExecutor(agent, include_task_in_prompt=include_task_in_prompt)


class PlanAndExecute(Runnable):
    """Plan the whole task, then execute the steps in order, each with a sub-agent.

    The output is the last step's response. Each step's sub-agent run is kept
    in ``result.trace.children`` by step id. ``replan=True`` asks the planner
    again after every step (it may change the remaining steps or answer).

    Runs are durable like an agent's. :meth:`resume` continues a run whose
    process died in the middle of a plan, in any process that built the same
    object: the steps that completed are not run again (their sub-agents are not
    called; later steps still see their responses), the step that was running
    runs again. With ``interrupt_before=["act"]`` the run pauses before each
    plan is executed; resume it with ``Approve()``, ``Edit(steps=[...])`` (the
    texts of the steps to run instead, validated like any plan) or
    ``Reject(message=...)`` (the planner is asked for another plan and told
    why). Each step's sub-agent trace is stored with the run, so
    ``planloop show RUN_ID -o run.svg`` draws it inside its step.

    Args:
        planner: makes the plan (see :func:`load_chat_planner`).
        executor: runs each step (see :func:`load_agent_executor`).
        replan: ask the planner again after every step.
        max_iterations: passes through ``observe`` before stopping; ``None`` for no limit.
        max_execution_time: a hard deadline in seconds for the whole run.
        name: shown in traces and diagrams.
        diagram_dir: a directory (created if missing) where every run writes
            ``<run_id>.svg`` when it ends (finished, stopped or failed): one
            picture per run, with each step's sub-agent run drawn inside the step
            that ran it. The sub-agents write no files of their own, even with
            ``$PLANLOOP_DIAGRAM_DIR`` set; an executor agent given its own
            ``diagram_dir=`` (``load_agent_executor(..., diagram_dir=...)``)
            writes one per step. ``None`` (default) uses ``$PLANLOOP_DIAGRAM_DIR``
            if it is set when the run starts. A picture that cannot be drawn or
            written gives a :class:`~planloop.DiagramWarning` and leaves the
            result as it is.

    Raises:
        DefinitionError: ``diagram_dir`` is not a usable directory path (e.g. a file).

    Example:
        >>> from planloop.testing import ScriptedModel
        >>> planner_model = ScriptedModel(["Plan:\\n1. Find it\\n2. Say it\\n<END_OF_PLAN>"])
        >>> executor_model = ScriptedModel(["found: 42", "The answer is 42."])
        >>> pe = PlanAndExecute(load_chat_planner(planner_model),
        ...                     load_agent_executor(executor_model, []))
        >>> result = pe.run_sync("What is the answer?")
        >>> result.output, sorted(result.trace.children)
        ('The answer is 42.', ['step_1', 'step_2'])
    """

    def __init__(
        self,
        planner: ChatPlanner,
        executor: StepExecutor,
        *,
        replan: bool = False,
        max_iterations: int | None = 15,
        max_execution_time: float | None = None,
        name: str = "plan_and_execute",
        diagram_dir: str | os.PathLike[str] | None = None,
        store: StoreOption = None,
        interrupt_before: Iterable[str] = (),
    ) -> None:
        problems = self._set_durability(store, interrupt_before)
        if problems:
            raise DefinitionError(
                "invalid PlanAndExecute:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        self.diagram_dir = check_dir(diagram_dir)
        self.planner = planner
        self.executor = executor
        self.replan = replan
        self.name = name
        self._config = LoopConfig(
            planner=PlanAndExecutePlanner(planner, executor, replan=replan),
            tools={},
            limits=Limits(max_iterations=max_iterations, max_execution_time=max_execution_time),
            name=name,
            interrupt_before=self.interrupt_before,
            identity=self._identity,
        )

    def _identity(self) -> dict[str, Any]:
        # What, besides the name, must be the same for a stored run to be resumed:
        # the step texts run through this executor's tools.
        agent = self.executor.agent
        return {
            "replan": self.replan,
            "executor_tools": sorted(t.name for t in agent.tools),
            "include_task_in_prompt": self.executor.include_task_in_prompt,
        }

    def _loop_config(self) -> LoopConfig:
        return self._config
