"""Any LangChain chat model as a planloop :class:`~planloop.models.ChatModel`.

Needs ``langchain-core`` (``pip install 'planloop[langchain]'``). Importing this
module imports it; :func:`as_chat_model` is what the rest of planloop calls, and
only once LangChain is already loaded, so ``import planloop`` never loads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from planloop.engine.tooling import ToolSpec
from planloop.engine.trace import Usage
from planloop.errors import OutputParserError
from planloop.models.messages import ChatMessage, ModelResponse, ToolCall, as_messages

try:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import (
        AIMessage,
        BaseMessage,
        HumanMessage,
        SystemMessage,
        ToolMessage,
    )
    from langchain_core.messages.tool import tool_call
    from langchain_core.runnables import Runnable
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "planloop.models.langchain needs langchain-core: pip install 'planloop[langchain]'"
    ) from exc

__all__ = ["JSON_PROMPT", "LangChainChatModel", "as_chat_model"]

JSON_PROMPT = (
    "Answer with one JSON object that follows this JSON schema, and nothing else:\n{schema}"
)
"""Appended to the system prompt when the model cannot give structured output itself."""


class LangChainChatModel:
    """A LangChain chat model (any ``BaseChatModel``) driven by planloop.

    Messages are translated both ways (an assistant message's tool calls keep
    their ids, a tool message its ``tool_call_id``); ``tools`` are bound with
    ``bind_tools``; ``response_schema`` uses
    ``with_structured_output(..., method="json_schema")`` and, for a model that
    has no structured output (fake models, many local ones), asks for JSON in
    the system prompt instead; token usage comes from ``usage_metadata``.

    Args:
        chat_model: the LangChain chat model.
        name: shown in traces; defaults to the model's ``model_name``,
            ``model`` or class name.

    Example:
        >>> from langchain_core.language_models import GenericFakeChatModel
        >>> from langchain_core.messages import AIMessage
        >>> from planloop.models import ChatMessage
        >>> fake = GenericFakeChatModel(messages=iter([AIMessage("hello")]))
        >>> model = LangChainChatModel(fake)
        >>> model.name
        'GenericFakeChatModel'
        >>> import asyncio
        >>> asyncio.run(model.chat([ChatMessage(role="user", content="hi")])).message.content
        'hello'
    """

    def __init__(self, chat_model: BaseChatModel, *, name: str | None = None) -> None:
        if not isinstance(chat_model, BaseChatModel):
            raise TypeError(
                f"LangChainChatModel needs a langchain_core BaseChatModel, "
                f"got {type(chat_model).__name__}"
            )
        self.chat_model = chat_model
        self._name = name or _model_name(chat_model)

    @property
    def name(self) -> str:
        return self._name

    async def chat(
        self,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] | None = None,
    ) -> ModelResponse:
        lc_messages = [to_langchain(m) for m in as_messages(messages)]
        runnable: Runnable[Any, Any] = self.chat_model
        structured = False
        if tools:
            runnable = self._with_tools(tools)
        elif response_schema is not None:
            bound = self._structured(response_schema)
            if bound is None:
                lc_messages = _ask_for_json(lc_messages, response_schema)
            else:
                runnable, structured = bound, True
        kwargs: dict[str, Any] = {"stop": list(stop)} if stop else {}
        out = await runnable.ainvoke(lc_messages, **kwargs)
        if structured:
            return _from_structured(out)
        if not isinstance(out, AIMessage):
            raise TypeError(f"{self._name} returned {type(out).__name__}, not an AIMessage")
        return ModelResponse(message=from_langchain(out), usage=_usage(out))

    def _with_tools(self, tools: Sequence[ToolSpec]) -> Runnable[Any, Any]:
        functions = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters or {"type": "object", "properties": {}},
                },
            }
            for t in tools
        ]
        try:
            return self.chat_model.bind_tools(functions)
        except NotImplementedError:
            # Fake and some local models have no tool binding; they may still
            # answer with tool calls (a scripted AIMessage does).
            return self.chat_model

    def _structured(self, schema: Mapping[str, Any]) -> Runnable[Any, Any] | None:
        named = {"title": "response", **schema}
        try:
            return self.chat_model.with_structured_output(
                named, method="json_schema", include_raw=True
            )
        except (NotImplementedError, ValueError, TypeError):
            return None

    def __repr__(self) -> str:
        return f"LangChainChatModel({self._name!r})"


def as_chat_model(obj: Any) -> Any:
    """``obj`` wrapped in :class:`LangChainChatModel` if it is a LangChain chat model.

    Anything else (a planloop :class:`~planloop.models.ChatModel`, ``None``)
    comes back as it is.

    Example:
        >>> from langchain_core.language_models import FakeListChatModel
        >>> as_chat_model(FakeListChatModel(responses=["hi"]))
        LangChainChatModel('FakeListChatModel')
        >>> as_chat_model(None) is None
        True
    """
    if isinstance(obj, BaseChatModel):
        return LangChainChatModel(obj)
    return obj


def to_langchain(message: ChatMessage) -> BaseMessage:
    """A planloop message as the LangChain message of the same role."""
    if message.role == "system":
        return SystemMessage(content=message.content)
    if message.role == "user":
        return HumanMessage(content=message.content)
    if message.role == "tool":
        return ToolMessage(
            content=message.content, tool_call_id=message.tool_call_id or "", name=message.name
        )
    calls = [tool_call(name=c.name, args=dict(c.args), id=c.id) for c in message.tool_calls]
    return AIMessage(content=message.content, tool_calls=calls)


def from_langchain(message: AIMessage) -> ChatMessage:
    """The assistant's text and tool calls; invalid tool calls raise :class:`OutputParserError`."""
    text = str(message.text)
    if message.invalid_tool_calls and not message.tool_calls:
        bad = message.invalid_tool_calls[0]
        raise OutputParserError(
            f"the model called tool {bad.get('name')!r} with arguments that are not a JSON "
            f"object: {bad.get('error') or bad.get('args')!r}",
            llm_output=text or str(bad.get("args") or ""),
            observation="Call the tool again with its arguments as one JSON object.",
        )
    calls = tuple(ToolCall(c["name"], c["args"], id=c.get("id")) for c in message.tool_calls)
    return ChatMessage(role="assistant", content=text, tool_calls=calls)


def _usage(message: AIMessage) -> Usage | None:
    meta = message.usage_metadata
    if not meta:
        return None
    return Usage(
        input_tokens=meta.get("input_tokens", 0), output_tokens=meta.get("output_tokens", 0)
    )


def _from_structured(out: Any) -> ModelResponse:
    raw = out.get("raw") if isinstance(out, Mapping) else None
    parsed = out.get("parsed") if isinstance(out, Mapping) else out
    if isinstance(parsed, BaseModel):
        parsed = parsed.model_dump()
    usage = _usage(raw) if isinstance(raw, AIMessage) else None
    if parsed is None:
        # Unparsable structured output: the planner reads the text instead.
        text = str(raw.text) if isinstance(raw, AIMessage) else ""
        return ModelResponse(message=ChatMessage(role="assistant", content=text), usage=usage)
    return ModelResponse(
        message=ChatMessage(role="assistant", content=json.dumps(parsed)), usage=usage
    )


def _ask_for_json(messages: list[BaseMessage], schema: Mapping[str, Any]) -> list[BaseMessage]:
    ask = JSON_PROMPT.format(schema=json.dumps(schema, sort_keys=True))
    if messages and isinstance(messages[0], SystemMessage):
        first = f"{messages[0].text}\n\n{ask}"
        return [SystemMessage(content=first), *messages[1:]]
    return [SystemMessage(content=ask), *messages]


def _model_name(model: BaseChatModel) -> str:
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__
