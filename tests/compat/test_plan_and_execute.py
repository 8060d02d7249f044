"""planloop.compat.langchain.PlanAndExecute against langchain_experimental's, same scripts.

Each test builds the same planner and executor LLM scripts and tools twice,
runs them through LangChain's classes and through ours, and compares outputs,
the planner's steps, the step container, callbacks (counts, parents, texts,
prompts) and stream chunks. Then the two bugs ours fixes, shown on theirs.
"""

from __future__ import annotations

import inspect
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)

from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.exceptions import OutputParserException  # noqa: E402
from langchain_core.language_models import FakeListChatModel, FakeListLLM  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langchain_experimental import plan_and_execute as lcx  # noqa: E402
from langchain_experimental.plan_and_execute import schema as lcx_schema  # noqa: E402
from langchain_experimental.plan_and_execute.executors import (  # noqa: E402
    agent_executor as lcx_executor,
)
from langchain_experimental.plan_and_execute.planners import (  # noqa: E402
    chat_planner as lcx_planner,
)

import planloop.compat.langchain as ours  # noqa: E402
from planloop.compat.langchain import _plan_and_execute as impl  # noqa: E402
from planloop.engine.states import RunStatus, StepStatus  # noqa: E402
from planloop.engine.trace import StepFinished  # noqa: E402
from planloop.visualize import to_dot, to_svg  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PLAN = "Plan:\n1. Add 2 and 3\n2. Double the sum\n3. Answer the question\n<END_OF_PLAN>"


def blob(action: str, action_input: Any) -> str:
    import json

    body = json.dumps({"action": action, "action_input": action_input})
    return f"Thought: next\nAction:\n```\n{body}\n```"


EXECUTOR_SCRIPT = [
    blob("add", {"a": 2, "b": 3}),
    blob("Final Answer", "5"),
    blob("multiply", {"a": 5, "b": 2}),
    blob("Final Answer", "10"),
    blob("Final Answer", "The answer is 10."),
]


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def broken(a: int) -> int:
    """Always fails."""
    raise ValueError("broken tool")


TOOLS = [add, multiply, broken]


class Recorder(BaseCallbackHandler):
    """Every callback, with the names of runs and their parents."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.chains: list[tuple[str, str | None]] = []
        self.texts: list[str] = []
        self.prompts: list[str] = []
        self._names: dict[UUID, str] = {}

    def _start(self, kind: str, name: str, run_id: UUID, parent: UUID | None) -> None:
        self.counts[kind] += 1
        self._names[run_id] = name
        self.chains.append((name, self._names.get(parent) if parent else None))

    def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
        self._start("chain_start", kw.get("name") or "?", kw["run_id"], kw.get("parent_run_id"))

    def on_llm_start(self, serialized: Any, prompts: list[str], **kw: Any) -> None:
        self.prompts.extend(prompts)
        self._start("llm_start", "llm", kw["run_id"], kw.get("parent_run_id"))

    def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
        self.prompts.extend(str([m.content for m in ms]) for ms in messages)
        self._start("chat_model_start", "chat", kw["run_id"], kw.get("parent_run_id"))

    def on_tool_start(self, serialized: Any, input_str: str, **kw: Any) -> None:
        self._start("tool_start", kw.get("name") or "?", kw["run_id"], kw.get("parent_run_id"))

    def on_text(self, text: str, **kw: Any) -> None:
        self.counts["text"] += 1
        self.texts.append(text)


def _counter(event: str) -> Callable[..., None]:
    def count(self: Recorder, *args: Any, **kw: Any) -> None:
        self.counts[event] += 1

    return count


for _event in (
    "chain_end",
    "chain_error",
    "llm_end",
    "llm_error",
    "tool_end",
    "tool_error",
    "agent_action",
    "agent_finish",
):
    setattr(Recorder, f"on_{_event}", _counter(_event))


def build(
    module: Any,
    plan: str = PLAN,
    script: list[str] | None = None,
    *,
    include_task_in_prompt: bool = False,
) -> Any:
    planner = module.load_chat_planner(FakeListChatModel(responses=[plan]))
    executor = module.load_agent_executor(
        FakeListLLM(responses=list(script or EXECUTOR_SCRIPT)),
        TOOLS,
        include_task_in_prompt=include_task_in_prompt,
    )
    return module.PlanAndExecute(planner=planner, executor=executor)


def steps(pe: Any) -> list[tuple[str, str]]:
    return [(step.value, response.response) for step, response in pe.step_container.steps]


def run_both(
    call: Callable[[Any, dict[str, Any], dict[str, Any]], Any], **options: Any
) -> tuple[tuple[Any, Any, Recorder], tuple[Any, Any, Recorder]]:
    sides = []
    for module in (lcx, ours):
        pe = build(module, **options)
        recorder = Recorder()
        out = call(pe, {"input": "What is (2 + 3) * 2?"}, {"callbacks": [recorder]})
        sides.append((pe, out, recorder))
    return sides[0], sides[1]


def assert_same(theirs: tuple[Any, Any, Recorder], mine: tuple[Any, Any, Recorder]) -> None:
    (lc_pe, lc_out, lc_rec), (pl_pe, pl_out, pl_rec) = theirs, mine
    assert pl_out == lc_out
    assert steps(pl_pe) == steps(lc_pe)
    assert pl_rec.counts == lc_rec.counts
    assert pl_rec.chains == lc_rec.chains
    assert pl_rec.texts == lc_rec.texts
    assert pl_rec.prompts == lc_rec.prompts


def test_same_output_steps_and_callbacks_as_langchain() -> None:
    theirs, mine = run_both(lambda pe, inputs, config: pe.invoke(inputs, config))
    assert_same(theirs, mine)
    pe, out, recorder = mine
    assert out == {"input": "What is (2 + 3) * 2?", "output": "The answer is 10."}
    assert steps(pe) == [
        ("Add 2 and 3", "5"),
        ("Double the sum", "10"),
        ("Answer the question\n<END_OF_PLAN>", "The answer is 10."),
    ]
    assert recorder.chains[0] == ("PlanAndExecute", None)
    assert recorder.chains[1] == ("LLMChain", "PlanAndExecute")
    assert recorder.chains.count(("AgentExecutor", "PlanAndExecute")) == 3
    assert recorder.texts[-2:] == [
        "*****\n\nStep: Answer the question\n<END_OF_PLAN>",
        "\n\nResponse: The answer is 10.",
    ]


def test_same_as_langchain_async() -> None:
    import asyncio

    theirs, mine = run_both(lambda pe, i, c: asyncio.run(pe.ainvoke(i, c)))
    assert_same(theirs, mine)


def test_same_as_langchain_with_the_task_in_the_prompt() -> None:
    theirs, mine = run_both(lambda pe, i, c: pe.invoke(i, c), include_task_in_prompt=True)
    assert_same(theirs, mine)
    assert (
        mine[2]
        .prompts[1]
        .endswith(
            "Human: What is (2 + 3) * 2?\n\nPrevious steps: steps=[]\n\n"
            "Current objective: value='Add 2 and 3'\n\n"
        )
    )


def test_same_stream_chunks_as_langchain() -> None:
    theirs, mine = run_both(lambda pe, i, c: list(pe.stream(i, c)))
    assert_same(theirs, mine)
    assert mine[1] == [{"input": "What is (2 + 3) * 2?", "output": "The answer is 10."}]


def test_same_error_as_langchain_when_a_tool_raises() -> None:
    script = [blob("broken", {"a": 1})]
    results = []
    for module in (lcx, ours):
        pe = build(module, script=script)
        recorder = Recorder()
        with pytest.raises(ValueError, match="broken tool"):
            pe.invoke({"input": "go"}, {"callbacks": [recorder]})
        results.append((recorder.counts, recorder.chains, steps(pe)))
    assert results[1] == results[0]
    trace = pe.last_trace
    assert trace is not None
    assert trace.events[-1].status == RunStatus.stopped


def test_langchain_experimental_parts_work_in_ours() -> None:
    planner = lcx.load_chat_planner(FakeListChatModel(responses=[PLAN]))
    executor = lcx.load_agent_executor(FakeListLLM(responses=EXECUTOR_SCRIPT), TOOLS)
    pe = ours.PlanAndExecute(
        planner=planner, executor=executor, step_container=lcx_schema.ListStepContainer()
    )
    assert pe.invoke({"input": "q"})["output"] == "The answer is 10."
    assert [r.response for _, r in pe.step_container.steps] == ["5", "10", "The answer is 10."]


def test_same_signatures_and_prompts_as_langchain() -> None:
    for name in ("load_chat_planner", "load_agent_executor"):
        theirs = inspect.signature(getattr(lcx, name)).parameters
        mine = inspect.signature(getattr(ours, name)).parameters
        assert [(p.name, p.default) for p in mine.values()] == [
            (p.name, p.default) for p in theirs.values()
        ]
    assert impl.SYSTEM_PROMPT == lcx_planner.SYSTEM_PROMPT
    assert impl.HUMAN_MESSAGE_TEMPLATE == lcx_executor.HUMAN_MESSAGE_TEMPLATE
    assert impl.TASK_PREFIX == lcx_executor.TASK_PREFIX
    assert set(ours.PlanAndExecute.model_fields) == set(lcx.PlanAndExecute.model_fields)
    planner = ours.load_chat_planner(FakeListChatModel(responses=[PLAN]))
    assert planner.stop == ["<END_OF_PLAN>"]


# The two bugs.


def test_langchain_leaks_steps_into_the_next_run_and_ours_does_not() -> None:
    script = EXECUTOR_SCRIPT * 2
    lc_pe = build(lcx, script=script)
    pl_pe = build(ours, script=script)
    for pe in (lc_pe, pl_pe):
        pe.planner.llm_chain.llm.responses = [PLAN, PLAN]
        pe.invoke({"input": "first"})
    first = steps(pl_pe)
    recorders = {}
    for name, pe in (("lc", lc_pe), ("pl", pl_pe)):
        recorders[name] = Recorder()
        pe.invoke({"input": "second"}, {"callbacks": [recorders[name]]})
    # LangChain: the second run's container holds both runs' steps, and its
    # executor is told the first run's steps were this run's previous steps.
    assert len(lc_pe.step_container.steps) == 6
    assert "Previous steps: steps=[(Step(value='Add 2 and 3')" in recorders["lc"].prompts[1]
    # Ours: only this run's steps, and the first executor call sees none.
    assert steps(pl_pe) == first
    assert len(pl_pe.step_container.steps) == 3
    assert "Previous steps: steps=[]\n" in recorders["pl"].prompts[1]


def test_an_empty_plan_does_not_answer_with_an_earlier_run() -> None:
    pe = build(ours)
    pe.invoke({"input": "first"})
    pe.planner.llm_chain.llm.responses = ["I have no plan."]
    pe.planner.llm_chain.llm.i = 0
    with pytest.raises(OutputParserException, match="the planner's plan has no steps"):
        pe.invoke({"input": "second"})
    assert pe.step_container.steps == []


def test_a_given_container_is_where_every_run_starts() -> None:
    seeded = impl.ListStepContainer(
        steps=[(impl.Step(value="seen"), impl.StepResponse(response="x"))]
    )
    built = build(ours, script=EXECUTOR_SCRIPT * 2)
    pe = ours.PlanAndExecute(planner=built.planner, executor=built.executor, step_container=seeded)
    pe.planner.llm_chain.llm.responses = [PLAN, PLAN]
    for _ in range(2):
        pe.invoke({"input": "q"})
        assert [s.value for s, _ in pe.step_container.steps][:2] == ["seen", "Add 2 and 3"]
        assert len(pe.step_container.steps) == 4
    assert len(seeded.steps) == 1


def test_langchain_drops_a_first_step_without_a_header_and_ours_keeps_it() -> None:
    text = "1. Add 2 and 3\n2. Double the sum\n3. Answer the question"
    theirs = lcx_planner.PlanningOutputParser().parse(text)
    mine = ours.load_chat_planner(FakeListChatModel(responses=["x"])).output_parser.parse(text)
    assert [s.value for s in theirs.steps] == ["Double the sum", "Answer the question"]
    assert [s.value for s in mine.steps] == ["Add 2 and 3", "Double the sum", "Answer the question"]


@pytest.mark.parametrize(
    "text",
    [
        PLAN,
        "Plan:\n\n1. Add 2 and 3\n 2. Double the sum\n3. Answer the question\n",
        "Here is my plan.\n1. Add 2 and 3\n2. Double the sum",
        "Plan: 1. Add 2 and 3\n2. Double the sum",
        "no numbers here",
    ],
)
def test_parser_agrees_with_langchain_when_there_is_a_header(text: str) -> None:
    theirs = lcx_planner.PlanningOutputParser().parse(text)
    mine = impl.PlanningOutputParser().parse(text)
    assert [s.value for s in mine.steps] == [s.value for s in theirs.steps]


def test_a_plan_without_a_header_runs_every_step() -> None:
    plan = "1. Add 2 and 3\n2. Double the sum\n3. Answer the question"
    lc_pe, pl_pe = build(lcx, plan=plan), build(ours, plan=plan)
    assert lc_pe.invoke({"input": "q"})["output"] == "10"
    assert len(lc_pe.step_container.steps) == 2
    assert pl_pe.invoke({"input": "q"})["output"] == "The answer is 10."
    assert len(pl_pe.step_container.steps) == 3


# planloop underneath.


def test_each_run_keeps_a_planloop_trace_that_draws() -> None:
    pe = build(ours)
    assert pe.last_trace is None
    pe.invoke({"input": "What is (2 + 3) * 2?"})
    trace = pe.last_trace
    assert trace is not None
    assert trace.input == "What is (2 + 3) * 2?"
    assert trace.events[-1].status == RunStatus.finished
    finished = [e for e in trace.events if isinstance(e, StepFinished)]
    assert [(e.result.step_id, e.result.status) for e in finished] == [
        ("step_1", StepStatus.succeeded),
        ("step_2", StepStatus.succeeded),
        ("step_3", StepStatus.succeeded),
    ]
    # Each step ran on planloop's AgentExecutor, whose run is nested in this one.
    assert sorted(trace.children) == ["step_1", "step_2", "step_3"]
    assert trace.children["step_1"].events[-1].status == RunStatus.finished
    dot = to_dot(trace)
    assert "step_1" in dot and "step_3" in dot
    svg = to_svg(trace)
    assert "<svg" in svg
    first = trace
    pe.planner.llm_chain.llm.i = 0
    pe.executor.chain.agent.llm_chain.llm.i = 0
    pe.invoke({"input": "again"})
    assert pe.last_trace is not first
    assert pe.last_trace is not None and pe.last_trace.input == "again"


def test_each_step_runs_on_planloops_agent_executor() -> None:
    pe = build(ours)
    assert impl._agent_executor_class() is ours.AgentExecutor
    assert type(pe.executor.chain) is ours.AgentExecutor


async def test_sync_invoke_inside_a_running_event_loop_as_in_jupyter() -> None:
    pe = build(ours)
    assert pe.invoke({"input": "q"})["output"] == "The answer is 10."
    pe = build(ours)
    assert (await pe.ainvoke({"input": "q"}))["output"] == "The answer is 10."
    assert len(pe.step_container.steps) == 3
