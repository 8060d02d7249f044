"""Chat models take OpenAI-style dicts as messages, checked into planloop's messages;
``dir(planloop.models)`` lists every public name. Against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from chat_server import ChatServer, answer

import planloop.models
from planloop.errors import InvalidMessage
from planloop.models import ChatMessage, OpenAIChat, ToolCall, as_messages
from planloop.testing import ScriptedModel


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLANLOOP_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def chat(server: ChatServer) -> OpenAIChat:
    return OpenAIChat("test-model", base_url=server.url, api_key="", max_retries=0)


def test_chat_sync_takes_openai_style_dicts() -> None:
    with ChatServer([answer("hello")]) as server:
        response = chat(server).chat_sync([{"role": "user", "content": "hi"}])
    assert response.message.content == "hello"
    assert server.bodies[0]["messages"] == [{"role": "user", "content": "hi"}]


def test_a_conversation_with_tool_calls_goes_to_the_server_as_given() -> None:
    conversation: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Population of Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "population", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "709000"},
        ChatMessage(role="user", content="And per km²?"),
    ]
    with ChatServer([answer("1561")]) as server:
        response = asyncio.run(chat(server).chat(conversation))
    assert response.message.content == "1561"
    sent = server.bodies[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "user"]
    [call] = sent[2]["tool_calls"]
    assert (call["id"], call["function"]["name"]) == ("c1", "population")
    assert sent[3] == {"role": "tool", "content": "709000", "tool_call_id": "c1"}


def test_as_messages_reads_planloop_and_openai_tool_calls() -> None:
    planloop_form = {"role": "assistant", "tool_calls": [{"name": "f", "args": {"x": 1}}]}
    [message] = as_messages([planloop_form])
    assert message.tool_calls == (ToolCall("f", {"x": 1}),)
    given = [ChatMessage(role="user", content="hi")]
    assert as_messages(given) is given  # nothing to check or copy


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        ({"content": "hi"}, "message 0 has no 'role'; give one of 'system', 'user'"),
        ({"role": "bot", "content": "hi"}, "message 0 has role 'bot'; use one of 'system'"),
        (
            {"role": "user", "content": ["hi"]},
            "message 0's content is a list, not a string; pass the text as a string",
        ),
        ("hi", "message 0 is a str, not a message; pass a dict"),
        (
            {"role": "user", "content": "hi", "colour": "red"},
            "message 0 has unknown keys ['colour']; a message has role, content",
        ),
        (
            {
                "role": "assistant",
                "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{x"}}],
            },
            "message 0's tool_calls[0] has arguments that are not a JSON object: '{x'",
        ),
    ],
)
def test_a_bad_message_is_refused_saying_which_and_what(message: Any, problem: str) -> None:
    with ChatServer([answer("never sent")]) as server:
        model = chat(server)
        with pytest.raises(InvalidMessage) as raised:
            model.chat_sync([message])
    assert problem in str(raised.value)
    assert raised.value.index == 0 and isinstance(raised.value, ValueError)
    assert server.requests == []  # refused before anything was sent


def test_every_bad_message_is_listed_at_once() -> None:
    good = {"role": "user", "content": "hi"}
    with pytest.raises(InvalidMessage) as raised:
        as_messages([good, {"content": "a"}, good, {"role": "robot"}])
    err = raised.value
    assert err.index == 1
    assert [p.split(" ", 2)[1] for p in err.problems] == ["1", "3"]
    assert str(err).startswith("invalid chat messages (2 of 4):\n  - message 1 has no 'role'")


def test_scripted_model_takes_dicts_too() -> None:
    model = ScriptedModel(["hello"])
    response = asyncio.run(model.chat([{"role": "user", "content": "hi"}]))
    assert response.message.content == "hello"
    assert model.requests[0].messages == [ChatMessage(role="user", content="hi")]
    with pytest.raises(InvalidMessage, match="message 0 has role 'human'"):
        asyncio.run(ScriptedModel(["x"]).chat([{"role": "human", "content": "hi"}]))


def test_dir_of_planloop_models_lists_every_public_name() -> None:
    names = dir(planloop.models)
    missing = [name for name in planloop.models.__all__ if name not in names]
    assert missing == []


def test_a_langchain_model_takes_dicts_too() -> None:
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from planloop.models.langchain import LangChainChatModel

    fake = GenericFakeChatModel(messages=iter([AIMessage("hello")]))
    model = LangChainChatModel(fake)
    response = asyncio.run(model.chat([{"role": "user", "content": "hi"}]))
    assert response.message.content == "hello"
    with pytest.raises(InvalidMessage, match="message 0 has no 'role'"):
        asyncio.run(model.chat([{"content": "hi"}]))
