"""LangChain chat models and tools driven by planloop (LangChainChatModel, LangChainTool)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from langchain_core.language_models import (
    BaseChatModel,
    FakeMessagesListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import BaseTool, StructuredTool, ToolException, tool
from pydantic import BaseModel, Field, PrivateAttr

import planloop
from planloop.engine.trace import ModelCalled, StepFinished, StepStarted, Usage
from planloop.errors import StepFailed, ToolArgumentsError
from planloop.models import ChatMessage, ToolCall
from planloop.models.langchain import LangChainChatModel, as_chat_model
from planloop.nodes._langchain_tool import LangChainTool
from planloop.nodes.tool import as_tool
from planloop.testing import check_trace


def ai(content: str = "", *calls: tuple[str, dict[str, Any], str], tokens: int = 0) -> AIMessage:
    usage = (
        {"input_tokens": tokens, "output_tokens": 1, "total_tokens": tokens + 1} if tokens else None
    )
    return AIMessage(
        content=content,
        tool_calls=[{"name": n, "args": a, "id": i} for n, a, i in calls],
        usage_metadata=usage,  # type: ignore[arg-type]
    )


class Recording(BaseChatModel):
    """Answers from a script and keeps what it was sent (messages, stop, bound tools)."""

    script: list[AIMessage]
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    stops: list[list[str] | None] = Field(default_factory=list)
    bound: list[Any] = Field(default_factory=list)
    _i: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        self.stops.append(stop)
        message = self.script[self._i]
        self._i += 1
        return ChatResult(generations=[ChatGeneration(message=message)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, Any]:
        self.bound.append(list(tools))
        return self


class NoTools(Recording):
    """A model with no tool binding, so no structured output either (like many fakes)."""

    bind_tools = BaseChatModel.bind_tools  # type: ignore[assignment]


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(return_direct=True)
def shout(text: str) -> str:
    """Say it loudly."""
    return text.upper()


def trace_kinds(result: planloop.RunResult) -> list[str]:
    return [e.kind for e in result.trace.events]


def test_an_agent_runs_a_langchain_model_and_tool() -> None:
    fake = FakeMessagesListChatModel(
        responses=[ai("", ("add", {"a": 2, "b": 3}, "call_1"), tokens=10), ai("5", tokens=20)]
    )
    agent = planloop.Agent(fake, [add], store=False)
    assert isinstance(agent.model, LangChainChatModel)
    assert isinstance(agent.tools[0], LangChainTool)
    result = agent.run_sync("What is 2 + 3?")
    assert result.output == "5"
    assert [(a.tool, a.tool_input, a.step_id, obs) for a, obs in result.intermediate_steps] == [
        ("add", {"a": 2, "b": 3}, "call_1", 5)
    ]
    started = [e for e in result.trace.events if isinstance(e, StepStarted)]
    assert [(e.step_id, e.tool, e.args) for e in started] == [("call_1", "add", {"a": 2, "b": 3})]
    calls = [e for e in result.trace.events if isinstance(e, ModelCalled)]
    assert [(c.model, c.usage) for c in calls] == [
        ("FakeMessagesListChatModel", Usage(input_tokens=10, output_tokens=1)),
        ("FakeMessagesListChatModel", Usage(input_tokens=20, output_tokens=1)),
    ]
    check_trace(result.trace)


def test_messages_go_to_langchain_with_tool_call_ids_and_tools_bound() -> None:
    model = Recording(script=[ai("", ("add", {"a": 1, "b": 2}, "c7")), ai("3")])
    result = planloop.Agent(model, [add], store=False).run_sync("1 + 2?")
    assert result.output == "3"
    second = model.seen[1]
    assert [type(m).__name__ for m in second] == ["HumanMessage", "AIMessage", "ToolMessage"]
    assert second[1].tool_calls == [  # type: ignore[attr-defined]
        {"name": "add", "args": {"a": 1, "b": 2}, "id": "c7", "type": "tool_call"}
    ]
    assert isinstance(second[2], ToolMessage)
    assert (second[2].content, second[2].tool_call_id, second[2].name) == ("3", "c7", "add")
    assert model.bound[0] == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two integers.",
                "parameters": {
                    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                    "required": ["a", "b"],
                    "type": "object",
                },
            },
        }
    ]


def test_stop_reaches_the_langchain_model() -> None:
    model = Recording(script=[ai("Final Answer: done")])
    planloop.Agent(model, [add], planner="react", store=False).run_sync("go")
    assert model.stops[0] and "\nObservation:" in model.stops[0]


def test_tool_arguments_are_checked_before_the_langchain_tool_runs() -> None:
    fake = FakeMessagesListChatModel(
        responses=[ai("", ("add", {"a": "two", "b": 3}, "c1")), ai("cannot add")]
    )
    result = planloop.Agent(fake, [add], store=False).run_sync("2 + 3?")
    assert result.output == "cannot add"
    [(action, observation)] = result.intermediate_steps
    assert action.tool == "add"
    assert "invalid arguments for tool 'add'" in str(observation)
    assert "a: Input should be a valid integer" in str(observation)
    finished = [e for e in result.trace.events if isinstance(e, StepFinished)]
    assert finished[0].result.error_type == "ToolArgumentsError"


def test_a_return_direct_langchain_tool_ends_the_run() -> None:
    fake = FakeMessagesListChatModel(responses=[ai("", ("shout", {"text": "hi"}, "c1"))])
    result = planloop.Agent(fake, [shout], store=False).run_sync("shout hi")
    assert result.output == "HI"
    assert trace_kinds(result).count("model_called") == 1
    assert as_tool(shout).return_direct is True


def test_langchain_tool_error_handling_applies() -> None:
    def fail(q: str) -> str:
        raise ToolException(f"no results for {q}")

    handled = StructuredTool.from_function(
        fail, name="search", description="Search.", handle_tool_error=True
    )
    fake = FakeMessagesListChatModel(
        responses=[ai("", ("search", {"q": "x"}, "c1")), ai("nothing found")]
    )
    result = planloop.Agent(fake, [handled], store=False).run_sync("find x")
    assert result.intermediate_steps[0][1] == "no results for x"
    assert result.output == "nothing found"

    unhandled = StructuredTool.from_function(fail, name="search", description="Search.")
    fake = FakeMessagesListChatModel(responses=[ai("", ("search", {"q": "x"}, "c1"))])
    with pytest.raises(StepFailed, match="no results for x"):
        planloop.Agent(fake, [unhandled], store=False).run_sync("find x")


class Lookup(BaseTool):
    name: str = "lookup"
    description: str = "Look a word up."

    class Args(BaseModel):
        word: str = Field(description="the word")

    args_schema: type[BaseModel] = Args

    def _run(self, word: str, **kwargs: Any) -> str:
        return f"{word}: a word"


async def _atranslate(text: str, to: str = "fr") -> str:
    return f"{text} ({to})"


@pytest.mark.parametrize(
    ("lc_tool", "args", "expected"),
    [
        (Lookup(), {"word": "plan"}, "plan: a word"),
        (
            StructuredTool.from_function(coroutine=_atranslate, name="translate", description="T."),
            {"text": "hi"},
            "hi (fr)",
        ),
        (add, {"a": 1, "b": "2"}, 3),
    ],
)
def test_any_langchain_tool_becomes_a_planloop_tool(
    lc_tool: BaseTool, args: dict[str, Any], expected: Any
) -> None:
    t = as_tool(lc_tool)
    assert isinstance(t, LangChainTool)
    assert (t.name, t.description) == (lc_tool.name, lc_tool.description)
    assert t.spec.parameters["type"] == "object"
    assert set(t.spec.parameters["properties"]) <= set(lc_tool.args)
    assert t.invoke(args) == expected
    assert t.is_async


def test_lookup_schema_keeps_descriptions() -> None:
    spec = as_tool(Lookup()).spec
    assert spec.parameters["properties"]["word"] == {"description": "the word", "type": "string"}
    assert spec.parameters["required"] == ["word"]


def test_structured_output_falls_back_to_asking_for_json() -> None:
    model = NoTools(script=[ai(json.dumps({"steps": ["Find it", "Say it"]}))])
    planner = planloop.load_chat_planner(model)
    executor_model = FakeMessagesListChatModel(responses=[ai("found 42"), ai("It is 42.")])
    pe = planloop.PlanAndExecute(
        planner, planloop.load_agent_executor(executor_model, []), store=False
    )
    result = pe.run_sync("What is it?")
    assert result.output == "It is 42."
    assert sorted(result.trace.children) == ["step_1", "step_2"]
    system = model.seen[0][0]
    assert system.type == "system"
    assert "Answer with one JSON object that follows this JSON schema" in str(system.content)
    assert str(system.content).startswith("Let's first understand the problem")


class Structured(GenericFakeChatModel):
    """A fake model with structured output: says which method it was asked for."""

    calls: list[tuple[Any, Any]] = Field(default_factory=list)

    def with_structured_output(  # type: ignore[override]
        self, schema: Any, *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[Any, Any]:
        self.calls.append((schema, kwargs.get("method")))
        raw = ai('{"steps": ["One", "Two"]}', tokens=7)
        return RunnableLambda(lambda _: {"raw": raw, "parsed": {"steps": ["One", "Two"]}})


def test_structured_output_uses_json_schema_when_the_model_has_it() -> None:
    model = Structured(messages=iter([]))
    executor_model = FakeMessagesListChatModel(responses=[ai("1"), ai("2")])
    pe = planloop.PlanAndExecute(
        planloop.load_chat_planner(model),
        planloop.load_agent_executor(executor_model, []),
        store=False,
    )
    result = pe.run_sync("count")
    assert result.output == "2"
    [(schema, method)] = model.calls
    assert method == "json_schema"
    assert schema["properties"]["steps"] == {"type": "array", "items": {"type": "string"}}
    calls = [e for e in result.trace.events if isinstance(e, ModelCalled)]
    assert calls[0].usage == Usage(input_tokens=7, output_tokens=1)


def test_a_numbered_text_plan_still_works_with_a_langchain_model() -> None:
    model = GenericFakeChatModel(messages=iter([ai("Plan:\n1. One\n2. Two\n<END_OF_PLAN>")]))
    planner = planloop.load_chat_planner(model)
    executor_model = FakeMessagesListChatModel(responses=[ai("1"), ai("2")])
    result = planloop.PlanAndExecute(
        planner, planloop.load_agent_executor(executor_model, []), store=False
    ).run_sync("count")
    assert result.output == "2"


def test_invalid_tool_calls_are_parse_errors_the_model_is_told_about() -> None:
    bad = AIMessage(
        content="",
        invalid_tool_calls=[
            {
                "name": "add",
                "args": "{a: 1",
                "id": "c1",
                "error": "bad JSON",
                "type": "invalid_tool_call",
            }
        ],
    )
    model = Recording(script=[bad, ai("gave up")])
    result = planloop.Agent(model, [add], handle_parsing_errors=True, store=False).run_sync("go")
    assert result.output == "gave up"
    assert "Call the tool again" in str(model.seen[1][-1].content)


def test_chat_and_names() -> None:
    model = LangChainChatModel(GenericFakeChatModel(messages=iter([ai("hi", tokens=3)])))
    response = planloop.engine._sync.run_sync(
        model.chat(
            [
                ChatMessage(role="system", content="be brief"),
                ChatMessage(role="user", content="hello"),
                ChatMessage(role="assistant", tool_calls=(ToolCall("add", {"a": 1}, id="x"),)),
                ChatMessage(role="tool", content="1", tool_call_id="x", name="add"),
            ]
        )
    )
    assert response.message == ChatMessage(role="assistant", content="hi")
    assert response.usage == Usage(input_tokens=3, output_tokens=1)
    named = Recording(script=[])
    assert LangChainChatModel(named, name="mine").name == "mine"
    assert as_chat_model(model) is model
    with pytest.raises(TypeError, match="needs a langchain_core BaseChatModel"):
        LangChainChatModel(object())  # type: ignore[arg-type]


def test_importing_planloop_does_not_import_langchain() -> None:
    code = (
        "import sys, planloop\n"
        "from planloop.testing import ScriptedModel\n"
        "def echo(x: str) -> str:\n    return x\n"
        "planloop.Agent(ScriptedModel(['hi']), [echo], store=False).run_sync('q')\n"
        "print([m for m in sys.modules if m.startswith('langchain')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_json_schema_langchain_tool_has_its_argument_names_checked() -> None:
    def search(q: str) -> str:
        return f"got {q}"

    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    t = as_tool(
        StructuredTool.from_function(search, name="search", description="S.", args_schema=schema)
    )
    assert t.spec.parameters == schema
    assert t.invoke({"q": "x"}) == "got x"
    with pytest.raises(ToolArgumentsError) as info:
        t.invoke({"r": 1})
    assert info.value.errors == ("q: missing (this argument is required)", "r: unexpected argument")


async def test_the_adapters_work_inside_a_running_event_loop() -> None:
    fake = FakeMessagesListChatModel(responses=[ai("", ("add", {"a": 1, "b": 1}, "c1")), ai("2")])
    result = planloop.Agent(fake, [add], store=False).run_sync("1 + 1?")
    assert result.output == "2"
    result = await planloop.Agent(
        FakeMessagesListChatModel(responses=[ai("3")]), [add], store=False
    ).run("?")
    assert result.output == "3"
