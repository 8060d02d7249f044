"""ScriptedModel: what it answers, what it keeps of each request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from planloop.engine.tooling import ToolSpec
from planloop.engine.trace import Usage
from planloop.errors import ScriptExhausted
from planloop.models.messages import ChatMessage, ModelResponse, ToolCall
from planloop.testing import ScriptedModel

HI = [ChatMessage(role="user", content="hello there")]


def chat(model: ScriptedModel, messages: Any = HI, **options: Any) -> ModelResponse:
    return asyncio.run(model.chat(messages, **options))


def test_responses_equal_validated_ones() -> None:
    call = ToolCall("add", {"a": 1})
    model = ScriptedModel(["some text", call, [call, call]])
    got = [chat(model) for _ in range(3)]
    assert got == [
        ModelResponse(
            message=ChatMessage(role="assistant", content="some text"),
            usage=Usage(input_tokens=3, output_tokens=3),
        ),
        ModelResponse(
            message=ChatMessage(role="assistant", tool_calls=(call,)),
            usage=Usage(input_tokens=3, output_tokens=1),
        ),
        ModelResponse(
            message=ChatMessage(role="assistant", tool_calls=(call, call)),
            usage=Usage(input_tokens=3, output_tokens=1),
        ),
    ]
    assert [r.model_dump() for r in got] == [
        ModelResponse.model_validate(r.model_dump()).model_dump() for r in got
    ]


def test_text_is_cut_at_stop_strings_only_when_asked() -> None:
    model = ScriptedModel(["Thought: x\nObservation: y", "Thought: x\nObservation: y"])
    assert chat(model, stop=["\nObservation:"]).message.content == "Thought: x"
    assert chat(model).message.content == "Thought: x\nObservation: y"


def test_exceptions_are_raised_each_time_they_are_played() -> None:
    boom = RuntimeError("boom")
    model = ScriptedModel([boom, "ok", boom])
    with pytest.raises(RuntimeError, match="boom"):
        chat(model)
    assert chat(model).message.content == "ok"
    with pytest.raises(RuntimeError, match="boom"):
        chat(model)
    with pytest.raises(ScriptExhausted):
        chat(model)
    assert len(model.requests) == 4


def test_an_invalid_entry_is_refused_when_played_not_when_made() -> None:
    model = ScriptedModel(["fine", ["not a call"]])  # type: ignore[list-item]
    assert chat(model).message.content == "fine"
    with pytest.raises(TypeError, match="a scripted response must be a str, a ToolCall"):
        chat(model)


def test_an_entry_replaced_in_responses_is_played_as_replaced() -> None:
    model = ScriptedModel(["first", "second"])
    model.responses[1] = ToolCall("add")
    model.responses.append("third")
    assert chat(model).message.content == "first"
    assert chat(model).message.tool_calls == (ToolCall("add"),)
    assert chat(model).message.content == "third"


def test_requests_keep_messages_tools_schema_and_stop() -> None:
    spec = ToolSpec(name="add", description="Add.", parameters={"type": "object"})
    model = ScriptedModel(["a", "b"])
    messages = list(HI)
    chat(model, messages, tools=[spec], stop=("X",))
    messages.append(ChatMessage(role="assistant", content="a"))
    chat(model, messages, response_schema={"type": "object"})
    first, second = model.requests
    assert first.messages == HI and len(second.messages) == 2
    assert first.tools == [spec] and second.tools is None
    assert first.stop == ["X"] and second.stop is None
    assert first.response_schema is None and second.response_schema == {"type": "object"}
    assert repr(first) == "ModelRequest(messages=1, tools=1)"
