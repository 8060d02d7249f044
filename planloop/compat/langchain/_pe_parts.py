"""The parts of plan-and-execute: plan, step, response, container, parser, planner, executor.

Each is an instance of ``langchain_experimental.plan_and_execute``'s class of
the same name when that package is installed, so LangChain's own
``PlanAndExecute`` takes planloop's planner, executor and step container (its
fields are typed with those bases), and LangChain's ``LLMPlanner`` takes
planloop's parser. Without ``langchain_experimental`` they stand on pydantic's
``BaseModel`` and LangChain's ``BaseOutputParser`` alone, with the same fields
and methods.
"""

from __future__ import annotations

import re
import warnings
from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from langchain_classic.chains.base import Chain
from langchain_core.callbacks import Callbacks
from langchain_core.output_parsers import BaseOutputParser
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from langchain_experimental.plan_and_execute.executors.base import (
        BaseExecutor as _ExecutorBase,
    )
    from langchain_experimental.plan_and_execute.planners.base import BasePlanner as _PlannerBase
    from langchain_experimental.plan_and_execute.schema import (
        BaseStepContainer as _ContainerBase,
    )
    from langchain_experimental.plan_and_execute.schema import (
        ListStepContainer as _ListContainerBase,
    )
    from langchain_experimental.plan_and_execute.schema import Plan as _PlanBase
    from langchain_experimental.plan_and_execute.schema import PlanOutputParser as _ParserBase
    from langchain_experimental.plan_and_execute.schema import Step as _StepBase
    from langchain_experimental.plan_and_execute.schema import StepResponse as _ResponseBase
else:
    try:
        with warnings.catch_warnings():  # it warns that it is being sunset, on import
            warnings.simplefilter("ignore", DeprecationWarning)
            from langchain_experimental.plan_and_execute.executors.base import (
                BaseExecutor as _ExecutorBase,
            )
            from langchain_experimental.plan_and_execute.planners.base import (
                BasePlanner as _PlannerBase,
            )
            from langchain_experimental.plan_and_execute.schema import (
                BaseStepContainer as _ContainerBase,
            )
            from langchain_experimental.plan_and_execute.schema import (
                ListStepContainer as _ListContainerBase,
            )
            from langchain_experimental.plan_and_execute.schema import Plan as _PlanBase
            from langchain_experimental.plan_and_execute.schema import (
                PlanOutputParser as _ParserBase,
            )
            from langchain_experimental.plan_and_execute.schema import Step as _StepBase
            from langchain_experimental.plan_and_execute.schema import (
                StepResponse as _ResponseBase,
            )
    except ImportError as exc:
        if not (exc.name or "").startswith("langchain_experimental"):
            raise
        _ExecutorBase = _PlannerBase = _ContainerBase = _ListContainerBase = BaseModel
        _PlanBase = _StepBase = _ResponseBase = BaseModel
        _ParserBase = BaseOutputParser

__all__ = [
    "BaseExecutor",
    "BasePlanner",
    "BaseStepContainer",
    "ChainExecutor",
    "LLMPlanner",
    "ListStepContainer",
    "Plan",
    "PlanOutputParser",
    "PlanningOutputParser",
    "Step",
    "StepResponse",
]


class Step(_StepBase):
    """One step of a plan, as the planner wrote it."""

    value: str


class Plan(_PlanBase):
    """The planner's steps."""

    steps: list[Step]  # type: ignore[assignment]  # planloop's steps, LangChain's kind


class StepResponse(_ResponseBase):
    """What the executor answered for one step.

    Example:
        >>> StepResponse(response="42").response
        '42'
    """

    response: str


class BaseStepContainer(_ContainerBase):
    """Keeps the steps of a run and their responses."""

    @abstractmethod
    def add_step(self, step: Step, step_response: StepResponse) -> None:  # type: ignore[override]
        """Add a step and its response."""

    @abstractmethod
    def get_final_response(self) -> str:
        """The run's answer, from the steps taken."""


class ListStepContainer(BaseStepContainer, _ListContainerBase):
    """The steps in order; the answer is the last step's response."""

    steps: list[tuple[Step, StepResponse]] = Field(default_factory=list)  # type: ignore[assignment]

    def add_step(self, step: Step, step_response: StepResponse) -> None:  # type: ignore[override]
        self.steps.append((step, step_response))

    def get_steps(self) -> list[tuple[Step, StepResponse]]:  # type: ignore[override]
        return self.steps

    def get_final_response(self) -> str:
        return self.steps[-1][1].response


class PlanOutputParser(_ParserBase):
    """Reads a :class:`Plan` from the planner's text."""

    @abstractmethod
    def parse(self, text: str) -> Plan:
        """Parse into a plan."""


_NUMBER = re.compile(r"\n\s*\d+\. ")


class PlanningOutputParser(PlanOutputParser):
    """Splits the text at each ``<n>. `` that starts a line.

    What comes before the first number (the ``Plan:`` header) is not a step.
    LangChain's parser also takes a first step that starts the text for that
    header and drops it; this one keeps it.

    Example:
        >>> [s.value for s in PlanningOutputParser().parse("1. Look\\n2. Answer").steps]
        ['Look', 'Answer']
        >>> [s.value for s in PlanningOutputParser().parse("Plan:\\n1. Look\\n2. Answer").steps]
        ['Look', 'Answer']
    """

    def parse(self, text: str) -> Plan:
        return Plan(steps=[Step(value=v) for v in _NUMBER.split("\n" + text)[1:]])


def _run_output_key(chain: Chain) -> str:
    """The output key LangChain's ``Chain.run`` reads (its ``ValueError`` when there is none)."""
    key: str = chain._run_output_key  # an LLMChain has its own: its text key
    return key


def _arun_output_key(chain: Chain) -> str:
    """The output key LangChain's ``Chain.arun`` reads: the only one, or its ``ValueError``."""
    if len(chain.output_keys) != 1:
        raise ValueError(
            "`run` not supported when there is not exactly one output key. "
            f"Got {chain.output_keys}."
        )
    return chain.output_keys[0]


class BasePlanner(_PlannerBase):
    """Makes the plan: ``plan`` and ``aplan`` of the run's inputs.

    Example:
        >>> class OneStep(BasePlanner):
        ...     def plan(self, inputs, callbacks=None, **kwargs):
        ...         return Plan(steps=[Step(value=inputs["input"])])
        ...     async def aplan(self, inputs, callbacks=None, **kwargs):
        ...         return self.plan(inputs)
        >>> OneStep().plan({"input": "Say hi"}).steps[0].value
        'Say hi'
    """

    @abstractmethod
    def plan(self, inputs: dict[str, Any], callbacks: Callbacks = None, **kwargs: Any) -> Plan:
        """The plan for ``inputs``."""

    @abstractmethod
    async def aplan(
        self, inputs: dict[str, Any], callbacks: Callbacks = None, **kwargs: Any
    ) -> Plan:
        """The plan for ``inputs``."""


class LLMPlanner(BasePlanner):
    """Asks a chain (an ``LLMChain``) for the plan's text and parses it.

    It reads the output key LangChain's reads (``Chain.run``'s and
    ``Chain.arun``'s), with their ``ValueError`` for a chain whose output key is
    not clear.

    Example:
        >>> from langchain_core.language_models import FakeListChatModel
        >>> from planloop.compat.langchain import load_chat_planner
        >>> planner = load_chat_planner(FakeListChatModel(responses=["1. Look\\n"]))
        >>> isinstance(planner, LLMPlanner), type(planner.output_parser).__name__
        (True, 'PlanningOutputParser')
    """

    llm_chain: Chain
    output_parser: PlanOutputParser
    stop: list[str] | None = None

    def plan(self, inputs: dict[str, Any], callbacks: Callbacks = None, **kwargs: Any) -> Plan:
        key = _run_output_key(self.llm_chain)
        out = self.llm_chain.invoke({**inputs, "stop": self.stop}, {"callbacks": callbacks})
        return self.output_parser.parse(out[key])

    async def aplan(
        self, inputs: dict[str, Any], callbacks: Callbacks = None, **kwargs: Any
    ) -> Plan:
        key = _arun_output_key(self.llm_chain)
        out = await self.llm_chain.ainvoke({**inputs, "stop": self.stop}, {"callbacks": callbacks})
        return self.output_parser.parse(out[key])


class BaseExecutor(_ExecutorBase):
    """Executes one step: ``step`` and ``astep`` of the step's inputs.

    Example:
        >>> class Echo(BaseExecutor):
        ...     def step(self, inputs, callbacks=None, **kwargs):
        ...         return StepResponse(response=inputs["current_step"].value)
        ...     async def astep(self, inputs, callbacks=None, **kwargs):
        ...         return self.step(inputs)
        >>> Echo().step({"current_step": Step(value="hi")}).response
        'hi'
    """

    @abstractmethod
    def step(
        self, inputs: dict[str, Any], callbacks: Callbacks = None, **kwargs: Any
    ) -> StepResponse:
        """Take the step."""

    @abstractmethod
    async def astep(
        self, inputs: dict[str, Any], callbacks: Callbacks = None, **kwargs: Any
    ) -> StepResponse:
        """Take the step."""


class ChainExecutor(BaseExecutor):
    """Runs each step with a chain (an agent executor); its one output is the response.

    As LangChain's (which calls ``Chain.run`` and ``Chain.arun``), a chain with
    more than one output key raises their ``ValueError``.

    Example:
        >>> from langchain_core.language_models import FakeListLLM
        >>> from planloop.compat.langchain import load_agent_executor
        >>> answer = 'Action:\\n```\\n{"action": "Final Answer", "action_input": "42"}\\n```'
        >>> executor = load_agent_executor(FakeListLLM(responses=[answer]), [])
        >>> isinstance(executor, ChainExecutor)
        True
    """

    chain: Chain

    def step(
        self, inputs: dict[str, Any], callbacks: Callbacks = None, **kwargs: Any
    ) -> StepResponse:
        key = _run_output_key(self.chain)
        return StepResponse(response=self.chain.invoke(inputs, {"callbacks": callbacks})[key])

    async def astep(
        self, inputs: dict[str, Any], callbacks: Callbacks = None, **kwargs: Any
    ) -> StepResponse:
        key = _arun_output_key(self.chain)
        out = await self.chain.ainvoke(inputs, {"callbacks": callbacks})
        return StepResponse(response=out[key])
