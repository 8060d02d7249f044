"""Chat messages, tool calls and the :class:`ChatModel` protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from planloop.engine.tooling import ToolSpec
from planloop.engine.trace import Usage

__all__ = ["ChatMessage", "ChatModel", "ModelResponse", "ToolCall"]


class ToolCall(BaseModel):
    """A model's request to call a tool.

    Example:
        >>> ToolCall("search", {"query": "planloop"})
        ToolCall(name='search', args={'query': 'planloop'}, id=None)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None

    def __init__(
        self, name: str | None = None, args: Mapping[str, Any] | None = None, /, **data: Any
    ) -> None:
        if name is not None:
            data["name"] = name
        if args is not None:
            data["args"] = dict(args)
        super().__init__(**data)


class ChatMessage(BaseModel):
    """One message of a chat: system, user, assistant (maybe with tool calls) or tool.

    Example:
        >>> question = ChatMessage(role="user", content="Population of Oslo?")
        >>> lookup = ToolCall("population", {"city": "Oslo"}, id="c1")
        >>> call = ChatMessage(role="assistant", tool_calls=(lookup,))
        >>> answer = ChatMessage(role="tool", content="717710", tool_call_id="c1")
        >>> [m.role for m in (question, call, answer)], call.tool_calls[0].name
        (['user', 'assistant', 'tool'], 'population')
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


class ModelResponse(BaseModel):
    """What a chat model returned: the assistant message and the tokens used.

    Example:
        >>> from planloop.engine.trace import Usage
        >>> response = ModelResponse(
        ...     message=ChatMessage(role="assistant", content="Hello."),
        ...     usage=Usage(input_tokens=12, output_tokens=3),
        ... )
        >>> response.message.content, response.usage.total_tokens
        ('Hello.', 15)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    message: ChatMessage
    usage: Usage | None = None


@runtime_checkable
class ChatModel(Protocol):
    """A chat model planloop can drive.

    ``tools`` are offered for native tool calls; ``response_schema`` asks for
    JSON output that follows the schema; ``stop`` ends generation at any of
    the given strings.

    Example:
        A model is any object with a ``name`` and an async ``chat``; this one
        always answers the same:

        >>> import asyncio
        >>> class Parrot:
        ...     name = "parrot"
        ...     async def chat(self, messages, *, tools=None, response_schema=None, stop=None):
        ...         return ModelResponse(message=ChatMessage(role="assistant", content="Hello."))
        >>> isinstance(Parrot(), ChatModel)
        True
        >>> from planloop import Agent
        >>> Agent(Parrot(), store=False).run_sync("Hi").output
        'Hello.'
    """

    @property
    def name(self) -> str: ...

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] | None = None,
    ) -> ModelResponse: ...
