"""Chat messages, tool calls and the :class:`ChatModel` protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from planloop.engine.tooling import ToolSpec
from planloop.engine.trace import Usage

__all__ = ["ChatMessage", "ChatModel", "ModelResponse", "ResumableModel", "ToolCall"]


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

    A model may also be a :class:`ResumableModel`: one whose answers depend on
    how many calls it has answered (a script) is told, when a stored run is
    resumed, how many calls the recorded run already made.

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


@runtime_checkable
class ResumableModel(Protocol):
    """A chat model told how many calls a resumed run already made (optional).

    When an :class:`~planloop.Agent` resumes a stored run (``agent.resume``,
    ``planloop resume``), it calls ``resumed_after(calls)`` on its model, if the
    model has it, before the run goes on: ``calls`` is the number of model calls
    the run's recording made, whose answers the run already has. A model that
    plays back a fixed sequence of answers goes on after that many, so a model
    built afresh (a new process) does not answer the recorded calls again. A
    model that has itself answered ``calls`` calls or more already is past them
    and changes nothing. A model that answers from the conversation alone (any
    real chat model) needs no such method.

    Example:
        >>> class Numbers:
        ...     name = "numbers"
        ...     def __init__(self):
        ...         self.answered = 0
        ...     def resumed_after(self, calls):
        ...         self.answered = max(self.answered, calls)
        ...     async def chat(self, messages, *, tools=None, response_schema=None, stop=None):
        ...         self.answered += 1
        ...         text = f"answer {self.answered}"
        ...         return ModelResponse(message=ChatMessage(role="assistant", content=text))
        >>> model = Numbers()
        >>> isinstance(model, ResumableModel), isinstance(model, ChatModel)
        (True, True)
        >>> model.resumed_after(2)  # the recorded run made two calls
        >>> import asyncio
        >>> asyncio.run(model.chat([ChatMessage(role="user", content="next?")])).message.content
        'answer 3'
    """

    def resumed_after(self, calls: int) -> None: ...
