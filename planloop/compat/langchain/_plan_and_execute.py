"""Drop-in ``langchain_experimental.plan_and_execute``, run on planloop's loop.

``PlanAndExecute`` is a LangChain ``Chain`` with the same fields, inputs,
outputs, prompts, callbacks and texts as ``langchain_experimental``'s. Underneath,
each run is a planloop run: the planner's steps become a planloop
:class:`~planloop.Plan` (one step after the other, as LangChain runs them), each
executed in the ``act`` state, and the run's :class:`~planloop.Trace` is kept as
``last_trace``, ready to be drawn.

Two bugs of the original are fixed:

* its ``step_container`` keeps the steps of every earlier run, so a second
  ``invoke`` shows the executor the first run's steps as "previous steps" (and
  a plan with no steps answers with an earlier run's response); here every run
  starts from the container as it was given, and ``step_container`` afterwards
  holds the last run's steps;
* its ``PlanningOutputParser`` drops the first step of a plan that starts with
  ``1.`` (no header line before it); here it is kept.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from langchain_classic.agents.agent import AgentExecutor
from langchain_classic.agents.structured_chat.base import StructuredChatAgent
from langchain_classic.chains.base import Chain
from langchain_classic.chains.llm import LLMChain
from langchain_core._api import LangChainDeprecationWarning
from langchain_core.callbacks.manager import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import SystemMessage
from langchain_core.prompts import ChatPromptTemplate, HumanMessagePromptTemplate
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from planloop.compat.langchain._lc_bridge import CallerThread
from planloop.compat.langchain._pe_parts import (
    BaseExecutor,
    BasePlanner,
    BaseStepContainer,
    ChainExecutor,
    ListStepContainer,
    LLMPlanner,
    Plan,
    PlanningOutputParser,
    PlanOutputParser,
    Step,
    StepResponse,
)
from planloop.engine.loop import LoopConfig, run_loop
from planloop.engine.plan import Plan as LoopPlan
from planloop.engine.plan import Step as LoopStep
from planloop.engine.planner import Answer, RunContext
from planloop.engine.trace import Limits, Trace
from planloop.errors import RunError

__all__ = [
    "HUMAN_MESSAGE_TEMPLATE",
    "SYSTEM_PROMPT",
    "TASK_PREFIX",
    "BaseExecutor",
    "BasePlanner",
    "BaseStepContainer",
    "ChainExecutor",
    "LLMPlanner",
    "ListStepContainer",
    "Plan",
    "PlanAndExecute",
    "PlanOutputParser",
    "PlanningOutputParser",
    "Step",
    "StepResponse",
    "load_agent_executor",
    "load_chat_planner",
]

SYSTEM_PROMPT = (
    "Let's first understand the problem and devise a plan to solve the problem."
    " Please output the plan starting with the header 'Plan:' "
    "and then followed by a numbered list of steps. "
    "Please make the plan the minimum number of steps required "
    "to accurately complete the task. If the task is a question, "
    "the final step should almost always be 'Given the above steps taken, "
    "please respond to the users original question'. "
    "At the end of your plan, say '<END_OF_PLAN>'"
)

HUMAN_MESSAGE_TEMPLATE = """Previous steps: {previous_steps}

Current objective: {current_step}

{agent_scratchpad}"""

TASK_PREFIX = """{objective}

"""


def _needs(value: Any, *methods: str) -> Any:
    missing = [m for m in methods if not callable(getattr(value, m, None))]
    if missing:
        raise ValueError(f"{type(value).__name__} has no {' or '.join(missing)} method")
    return value


class PlanAndExecute(Chain):
    """Plan the steps of a task with ``planner``, then run each with ``executor``.

    Drop-in for ``langchain_experimental.plan_and_execute.PlanAndExecute``: same
    fields, input (``{"input": ...}``) and output (``{"output": <the last
    step's response>}``), the same callbacks (one chain run, with the planner's
    and each step's runs as its children) and texts. Planners, executors and
    step containers of ``langchain_experimental`` work here too, and this
    module's work in ``langchain_experimental``'s ``PlanAndExecute``: they are
    instances of its base classes (see ``_pe_parts``).

    Each run is a planloop run: ``last_trace`` is its :class:`~planloop.Trace`
    (the plan as a DAG, each step's status and timing, and the nested trace of
    a planloop executor's run), e.g. ``planloop.visualize.to_svg(pe.last_trace)``.
    Runs are isolated: each starts from ``step_container`` as it was given,
    and afterwards ``step_container`` holds that run's steps.

    Example:
        >>> from langchain_core.language_models import FakeListChatModel, FakeListLLM
        >>> planner = load_chat_planner(FakeListChatModel(responses=["1. Say hi\\n"]))
        >>> answer = 'Action:\\n```\\n{"action": "Final Answer", "action_input": "hi"}\\n```'
        >>> executor = load_agent_executor(FakeListLLM(responses=[answer]), [])
        >>> pe = PlanAndExecute(planner=planner, executor=executor)
        >>> pe.invoke({"input": "greet"})["output"]
        'hi'
        >>> [step.value for step, _ in pe.step_container.steps]
        ['Say hi\\n']
        >>> pe.last_trace.events[-1].status
        <RunStatus.finished: 'finished'>
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    planner: Any
    """Makes the plan (a :class:`BasePlanner`, see :func:`load_chat_planner`)."""
    executor: Any
    """Runs each step (a :class:`BaseExecutor`, see :func:`load_agent_executor`)."""
    step_container: Any = Field(default_factory=ListStepContainer)
    """The steps of the latest run (a :class:`BaseStepContainer`)."""
    input_key: str = "input"
    output_key: str = "output"

    _initial: Any = PrivateAttr(default=None)
    _last_trace: Trace | None = PrivateAttr(default=None)

    @field_validator("planner")
    @classmethod
    def _check_planner(cls, value: Any) -> Any:
        return _needs(value, "plan", "aplan")

    @field_validator("executor")
    @classmethod
    def _check_executor(cls, value: Any) -> Any:
        return _needs(value, "step", "astep")

    @field_validator("step_container")
    @classmethod
    def _check_container(cls, value: Any) -> Any:
        return _needs(value, "add_step", "get_final_response", "model_copy")

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._initial = self.step_container.model_copy(deep=True)

    @property
    def input_keys(self) -> list[str]:
        return [self.input_key]

    @property
    def output_keys(self) -> list[str]:
        return [self.output_key]

    @property
    def last_trace(self) -> Trace | None:
        """The planloop trace of the latest run (``None`` before the first)."""
        return self._last_trace

    def _call(
        self,
        inputs: dict[str, Any],
        run_manager: CallbackManagerForChainRun | None = None,
    ) -> dict[str, Any]:
        container = self._start()
        callbacks = run_manager.get_child() if run_manager else None

        def plan() -> Plan:
            plan: Plan = self.planner.plan(inputs, callbacks=callbacks)
            if run_manager:
                run_manager.on_text(str(plan), verbose=self.verbose)
            return plan

        def step(step: Step, step_inputs: dict[str, Any]) -> StepResponse:
            response: StepResponse = self.executor.step(step_inputs, callbacks=callbacks)
            if run_manager:
                for text in _texts(step, response):
                    run_manager.on_text(text, verbose=self.verbose)
            return response

        # The planner and the executor run on the caller's thread, as in LangChain.
        caller = CallerThread()

        async def on_caller_plan() -> Plan:
            return await caller.call(plan)

        async def on_caller_step(lc_step: Step, step_inputs: dict[str, Any]) -> StepResponse:
            return await caller.call(step, lc_step, step_inputs)

        return caller.run(self._run(inputs, container, on_caller_plan, on_caller_step))

    async def _acall(
        self,
        inputs: dict[str, Any],
        run_manager: AsyncCallbackManagerForChainRun | None = None,
    ) -> dict[str, Any]:
        container = self._start()
        callbacks = run_manager.get_child() if run_manager else None

        async def plan() -> Plan:
            plan: Plan = await self.planner.aplan(inputs, callbacks=callbacks)
            if run_manager:
                await run_manager.on_text(str(plan), verbose=self.verbose)
            return plan

        async def step(step: Step, step_inputs: dict[str, Any]) -> StepResponse:
            response: StepResponse = await self.executor.astep(step_inputs, callbacks=callbacks)
            if run_manager:
                for text in _texts(step, response):
                    await run_manager.on_text(text, verbose=self.verbose)
            return response

        return await self._run(inputs, container, plan, step)

    def _start(self) -> Any:
        container = self._initial.model_copy(deep=True)
        self.step_container = container
        return container

    async def _run(
        self,
        inputs: dict[str, Any],
        container: Any,
        plan: Callable[[], Any],
        step: Callable[[Step, dict[str, Any]], Any],
    ) -> dict[str, Any]:
        config = LoopConfig(
            planner=_Planner(self, inputs, container, plan, step),
            tools={},
            limits=Limits(max_iterations=None),
            max_plan_steps=None,
            name="PlanAndExecute",
        )
        try:
            result = await run_loop(config, inputs[self.input_key])
        except RunError as exc:
            if exc.result is not None:
                self._last_trace = exc.result.trace
            cause = exc.__cause__
            # A LangChain caller expects the planner's or the executor's own error.
            if isinstance(cause, Exception):
                raise cause from None
            raise
        self._last_trace = result.trace
        return {self.output_key: result.output}


def _texts(step: Step, response: StepResponse) -> tuple[str, str]:
    return f"*****\n\nStep: {step.value}", f"\n\nResponse: {response.response}"


class _Planner:
    """The planloop planner of one run: first the plan, then the container's answer."""

    def __init__(
        self,
        chain: PlanAndExecute,
        inputs: dict[str, Any],
        container: Any,
        plan: Callable[[], Any],
        step: Callable[[Step, dict[str, Any]], Any],
    ) -> None:
        self.chain = chain
        self.inputs = inputs
        self.container = container
        self.make_plan = plan
        self.run_step = step

    async def plan(self, ctx: RunContext) -> LoopPlan | Answer:
        if ctx.state.get("planned"):
            return Answer(self.container.get_final_response())
        plan = await ctx.record_model_call(_planner_name(self.chain.planner), self.make_plan())
        ctx.state["planned"] = True
        if not plan.steps:
            raise OutputParserException(
                f"the planner's plan has no steps ({plan!r}); its model should answer "
                "with a numbered list of steps ('1. ...')"
            )
        return LoopPlan(
            [
                LoopStep(
                    id=f"step_{i}",
                    tool=self._executor(ctx, i, step),
                    args={"step": step.value},
                    depends_on=(f"step_{i - 1}",) if i > 1 else (),
                )
                for i, step in enumerate(plan.steps, 1)
            ],
            log=str(plan),
        )

    def _executor(self, ctx: RunContext, number: int, lc_step: Step) -> Callable[..., Any]:
        chain, container, run_step = self.chain, self.container, self.run_step
        step_inputs = {
            "previous_steps": container,
            "current_step": lc_step,
            "objective": self.inputs[chain.input_key],
            **self.inputs,
        }

        def done(response: StepResponse) -> str:
            container.add_step(lc_step, response)
            trace = getattr(getattr(chain.executor, "chain", None), "last_trace", None)
            if isinstance(trace, Trace):
                ctx.trace.children[f"step_{number}"] = trace
            return response.response

        async def execute_step(step: str) -> str:
            return done(await run_step(lc_step, step_inputs))

        return execute_step

    async def final_answer(self, ctx: RunContext) -> Answer:
        return Answer(self.container.get_final_response())


def _planner_name(planner: Any) -> str:
    llm = getattr(getattr(planner, "llm_chain", None), "llm", None)
    for attr in ("model_name", "model"):
        value = getattr(llm, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(llm if llm is not None else planner).__name__


def load_chat_planner(
    llm: BaseLanguageModel[Any], system_prompt: str = SYSTEM_PROMPT
) -> LLMPlanner:
    """A planner that asks ``llm`` for a numbered plan, stopping at ``<END_OF_PLAN>``.

    Same prompt and behaviour as ``langchain_experimental``'s, with the parser
    that keeps a first step written without a header.

    Example:
        >>> from langchain_core.language_models import FakeListChatModel
        >>> planner = load_chat_planner(FakeListChatModel(responses=["1. Find it\\n2. Say it\\n"]))
        >>> [step.value for step in planner.plan({"input": "What is it?"}).steps]
        ['Find it', 'Say it\\n']
    """
    prompt = ChatPromptTemplate.from_messages(
        [SystemMessage(content=system_prompt), HumanMessagePromptTemplate.from_template("{input}")]
    )
    with warnings.catch_warnings():
        # LangChain's LLMChain is deprecated, but its callbacks are what callers see.
        warnings.simplefilter("ignore", LangChainDeprecationWarning)
        llm_chain = LLMChain(llm=llm, prompt=prompt)
    return LLMPlanner(
        llm_chain=llm_chain,
        output_parser=PlanningOutputParser(),
        stop=["<END_OF_PLAN>"],
    )


def load_agent_executor(
    llm: BaseLanguageModel[Any],
    tools: list[BaseTool],
    verbose: bool = False,
    include_task_in_prompt: bool = False,
) -> ChainExecutor:
    """An executor that runs each step with a structured-chat agent over ``tools``.

    Same prompt and behaviour as ``langchain_experimental``'s: the agent sees
    the previous steps and the current one (and the whole task with
    ``include_task_in_prompt=True``).

    Example:
        >>> from langchain_core.language_models import FakeListLLM
        >>> from planloop.compat.langchain import AgentExecutor
        >>> answer = 'Action:\\n```\\n{"action": "Final Answer", "action_input": "42"}\\n```'
        >>> executor = load_agent_executor(FakeListLLM(responses=[answer]), [])
        >>> isinstance(executor.chain, AgentExecutor)  # planloop's drop-in runs each step
        True
    """
    input_variables = ["previous_steps", "current_step", "agent_scratchpad"]
    template = HUMAN_MESSAGE_TEMPLATE
    if include_task_in_prompt:
        input_variables.append("objective")
        template = TASK_PREFIX + template
    agent = StructuredChatAgent.from_llm_and_tools(
        llm, tools, human_message_template=template, input_variables=input_variables
    )
    executor = _agent_executor_class().from_agent_and_tools(
        agent=agent, tools=tools, verbose=verbose
    )
    return ChainExecutor(chain=executor)


def _agent_executor_class() -> type[AgentExecutor]:
    # planloop's drop-in AgentExecutor: each step's agent run is a planloop run
    # too, nested in this run's trace.
    from planloop.compat.langchain._executor import AgentExecutor as PlanloopExecutor

    return PlanloopExecutor
