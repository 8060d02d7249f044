"""The parts of planloop's plan-and-execute are LangChain's kind, and behave as LangChain's.

``planloop.compat.langchain`` exports the parts (``ChainExecutor``,
``BaseExecutor``, ``StepResponse``, ``PlanningOutputParser`` …); they are
instances of ``langchain_experimental.plan_and_execute``'s bases, so
LangChain's own ``PlanAndExecute`` takes planloop's planner, executor and step
container and gives the same answer as with its own; and an executor or
planner over a chain with two output keys raises LangChain's error.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import warnings
from typing import Any

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)

from langchain_classic.chains.llm import LLMChain  # noqa: E402
from langchain_core.language_models import FakeListChatModel, FakeListLLM  # noqa: E402
from langchain_core.prompts import PromptTemplate  # noqa: E402
from langchain_experimental import plan_and_execute as lcx  # noqa: E402
from langchain_experimental.plan_and_execute import schema as lcx_schema  # noqa: E402
from langchain_experimental.plan_and_execute.executors import base as lcx_executors  # noqa: E402
from langchain_experimental.plan_and_execute.planners import base as lcx_planners  # noqa: E402

import planloop.compat.langchain as ours  # noqa: E402
from tests.compat.test_plan_and_execute import EXECUTOR_SCRIPT, PLAN, TOOLS, build  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PARTS = ["BaseExecutor", "ChainExecutor", "PlanningOutputParser", "StepResponse"]


def test_the_parts_are_exported_in_a_sorted_all() -> None:
    for name in PARTS:
        assert name in ours.__all__
        assert getattr(ours, name).__name__ == name
    assert ours.__all__ == sorted(ours.__all__)


def test_the_parts_are_instances_of_langchains_bases() -> None:
    pe = build(ours)
    assert isinstance(pe.planner, lcx_planners.BasePlanner)
    assert isinstance(pe.planner.output_parser, lcx_schema.PlanOutputParser)
    assert isinstance(pe.executor, lcx_executors.BaseExecutor)
    assert isinstance(pe.executor, ours.BaseExecutor)
    assert isinstance(pe.step_container, lcx_schema.BaseStepContainer)
    assert isinstance(ours.StepResponse(response="x"), lcx_schema.StepResponse)
    assert issubclass(ours.ChainExecutor, lcx_executors.BaseExecutor)
    assert issubclass(ours.PlanningOutputParser, lcx_schema.PlanOutputParser)


def test_langchains_plan_and_execute_takes_planloops_planner_executor_and_container() -> None:
    theirs = build(lcx)
    mine = build(ours)
    mixed = lcx.PlanAndExecute(
        planner=mine.planner, executor=mine.executor, step_container=mine.step_container
    )
    expected = theirs.invoke({"input": "q"})
    assert mixed.invoke({"input": "q"}) == expected
    assert [(s.value, r.response) for s, r in mixed.step_container.steps] == [
        (s.value, r.response) for s, r in theirs.step_container.steps
    ]


def test_langchains_planner_takes_planloops_parser() -> None:
    theirs = lcx.load_chat_planner(FakeListChatModel(responses=[PLAN]))
    mine = lcx_planners.LLMPlanner(
        llm_chain=lcx.load_chat_planner(FakeListChatModel(responses=[PLAN])).llm_chain,
        output_parser=ours.PlanningOutputParser(),
        stop=theirs.stop,
    )
    planned = [s.value for s in mine.plan({"input": "q"}).steps]
    assert planned == [s.value for s in theirs.plan({"input": "q"}).steps]
    assert planned[:2] == ["Add 2 and 3", "Double the sum"]


def _outcome(call: Any) -> tuple[str, Any]:
    """What ``call()`` gave: its plan's steps or its response, or the error it raised."""
    try:
        value = call()
    except Exception as exc:  # noqa: BLE001 - the error is what is compared
        return type(exc).__name__, str(exc)
    steps = getattr(value, "steps", None)
    return "ok", [s.value for s in steps] if steps is not None else value.response


def _step_inputs() -> dict[str, Any]:
    return {
        "input": "q",
        "objective": "q",
        "previous_steps": lcx_schema.ListStepContainer(),
        "current_step": lcx_schema.Step(value="Add 2 and 3"),
    }


@pytest.mark.parametrize("side", ["step", "astep"])
def test_an_executor_over_a_chain_with_two_output_keys_raises_as_langchains(side: str) -> None:
    outcomes = []
    for module in (lcx, ours):
        executor = module.load_agent_executor(FakeListLLM(responses=EXECUTOR_SCRIPT), TOOLS)
        executor.chain.return_intermediate_steps = True  # output keys: output, intermediate_steps
        if side == "step":
            outcomes.append(_outcome(lambda e=executor: e.step(_step_inputs())))
        else:
            outcomes.append(_outcome(lambda e=executor: asyncio.run(e.astep(_step_inputs()))))
    assert outcomes[1] == outcomes[0]
    assert outcomes[0][0] == "ValueError"
    assert "`run` not supported when there is not exactly one output key" in outcomes[0][1]


@pytest.mark.parametrize("side", ["plan", "aplan"])
def test_a_planner_over_a_chain_with_two_output_keys_reads_langchains_key(side: str) -> None:
    # LangChain's run reads an LLMChain's text key; its arun raises for two keys.
    outcomes = []
    for module in (lcx, ours):
        planner = module.load_chat_planner(FakeListChatModel(responses=[PLAN]))
        chain = LLMChain(
            llm=FakeListLLM(responses=[PLAN]),
            prompt=PromptTemplate.from_template("{input}"),
            return_final_only=False,  # output keys: text, full_generation
        )
        planner = type(planner)(llm_chain=chain, output_parser=planner.output_parser)
        if side == "plan":
            outcomes.append(_outcome(lambda p=planner: p.plan({"input": "q"})))
        else:
            outcomes.append(_outcome(lambda p=planner: asyncio.run(p.aplan({"input": "q"}))))
    assert outcomes[1] == outcomes[0]
    assert outcomes[0][0] == ("ok" if side == "plan" else "ValueError")


def test_without_langchain_experimental_the_parts_stand_on_their_own() -> None:
    code = """
import sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
sys.modules["langchain_experimental"] = None  # as if it were not installed
from langchain_core.language_models import FakeListChatModel, FakeListLLM
from planloop.compat.langchain import (
    BaseExecutor, PlanAndExecute, load_agent_executor, load_chat_planner,
)
planner = load_chat_planner(FakeListChatModel(responses=["1. Say hi\\n"]))
answer = 'Action:\\n```\\n{"action": "Final Answer", "action_input": "hi"}\\n```'
executor = load_agent_executor(FakeListLLM(responses=[answer]), [])
pe = PlanAndExecute(planner=planner, executor=executor)
print(pe.invoke({"input": "greet"})["output"], BaseExecutor.__mro__[1].__name__)
print(sorted(m for m in sys.modules if m.startswith("langchain_experimental.")))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["hi BaseModel", "[]"]
