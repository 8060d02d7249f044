"""Chat messages, tool calls and the :class:`ChatModel` protocol."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, Self, SupportsIndex, cast, overload, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planloop.engine.tooling import ToolSpec
from planloop.engine.trace import Usage
from planloop.errors import InvalidMessage

__all__ = [
    "ChatMessage",
    "ChatModel",
    "Conversation",
    "ModelResponse",
    "ResumableModel",
    "ToolCall",
    "as_messages",
]


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


_ROLES = ("system", "user", "assistant", "tool")
_FIELDS = tuple(ChatMessage.model_fields)
# Keys of the messages OpenAI's API answers with; a message passed back as it came
# (``message.model_dump()``) has them, empty, and they say nothing planloop keeps.
_EMPTY_OK = ("refusal", "annotations", "audio", "function_call")


class Conversation(list[ChatMessage]):
    """A chat history that holds :class:`ChatMessage` objects only, checked as it grows.

    A model takes any sequence of messages and checks each one on every call
    (:func:`as_messages`); a conversation is taken as it is, so a history kept
    for a whole run and extended each iteration costs each call only its new
    messages, not the whole history again.

    Example:
        >>> history = Conversation([ChatMessage(role="user", content="hi")])
        >>> history.append(ChatMessage(role="assistant", content="hello"))
        >>> as_messages(history) is history
        True
        >>> history.append({"role": "user", "content": "hi"})
        Traceback (most recent call last):
        ...
        TypeError: a Conversation holds only ChatMessage objects, not dict (see as_messages)
    """

    def __init__(self, messages: Iterable[ChatMessage] = (), /) -> None:
        super().__init__(_checked(messages))

    def append(self, message: ChatMessage, /) -> None:
        super().append(_checked_one(message))

    def extend(self, messages: Iterable[ChatMessage], /) -> None:
        super().extend(_checked(messages))

    def insert(self, index: SupportsIndex, message: ChatMessage, /) -> None:
        super().insert(index, _checked_one(message))

    def __iadd__(self, messages: Iterable[ChatMessage], /) -> Self:  # type: ignore[override,misc]
        return super().__iadd__(_checked(messages))

    @overload
    def __setitem__(self, index: SupportsIndex, message: ChatMessage, /) -> None: ...
    @overload
    def __setitem__(self, index: slice, message: Iterable[ChatMessage], /) -> None: ...
    def __setitem__(self, index: SupportsIndex | slice, message: Any, /) -> None:
        if isinstance(index, slice):
            super().__setitem__(index, _checked(message))
        else:
            super().__setitem__(index, _checked_one(message))


def _checked_one(message: object) -> ChatMessage:
    if not isinstance(message, ChatMessage):
        raise TypeError(
            f"a Conversation holds only ChatMessage objects, not {type(message).__name__} "
            "(see as_messages)"
        )
    return message


def _checked(messages: Iterable[object]) -> list[ChatMessage]:
    return [_checked_one(m) for m in messages]


def as_messages(messages: Sequence[ChatMessage | Mapping[str, Any]]) -> Sequence[ChatMessage]:
    """``messages`` as :class:`ChatMessage` objects: each OpenAI-style dict is checked
    and read into one (``"content": None`` is no text; ``tool_calls`` in OpenAI's
    form, with JSON ``arguments``, or in planloop's, with ``args``).

    Every model's ``chat`` takes its messages through this. A sequence of
    :class:`ChatMessage` objects only is returned as it is.

    Raises:
        InvalidMessage: some messages are not messages; every problem is listed,
            each naming its message by index.

    Example:
        >>> [m.role for m in as_messages([{"role": "system", "content": "Be brief."},
        ...                               ChatMessage(role="user", content="hi")])]
        ['system', 'user']
        >>> as_messages([{"role": "user", "content": ["hi"]}])
        Traceback (most recent call last):
        ...
        planloop.errors.InvalidMessage: invalid chat messages (1 of 1):
          - message 0's content is a list, not a string; pass the text as a string
    """
    if isinstance(messages, Conversation):  # checked as it grew
        return messages
    if all(isinstance(m, ChatMessage) for m in messages):
        return cast("Sequence[ChatMessage]", messages)
    read: list[ChatMessage] = []
    problems: dict[int, str] = {}
    for i, message in enumerate(messages):
        try:
            read.append(message if isinstance(message, ChatMessage) else _read(i, message))
        except _Problem as problem:
            problems[i] = str(problem)
    if problems:
        raise InvalidMessage(problems, len(messages))
    return read


class _Problem(Exception):
    """What is wrong with one message (collected into an :class:`InvalidMessage`)."""


def _read(i: int, message: object) -> ChatMessage:
    """The message ``message`` (the ``i``-th) describes; :class:`_Problem` if none."""
    where = f"message {i}"
    if not isinstance(message, Mapping):
        raise _Problem(
            f"{where} is a {type(message).__name__}, not a message; pass a dict like "
            "{'role': 'user', 'content': 'hi'} or a ChatMessage"
        )
    data = {k: v for k, v in message.items() if not (k in _EMPTY_OK and not v)}
    unknown = sorted(str(k) for k in data if k not in _FIELDS)
    roles = ", ".join(map(repr, _ROLES))
    if unknown:
        raise _Problem(f"{where} has unknown keys {unknown}; a message has {', '.join(_FIELDS)}")
    if "role" not in data:
        raise _Problem(f"{where} has no 'role'; give one of {roles}")
    if data["role"] not in _ROLES:
        raise _Problem(f"{where} has role {data['role']!r}; use one of {roles}")
    content = data.get("content")
    if content is None:
        data["content"] = ""
    elif not isinstance(content, str):
        raise _Problem(
            f"{where}'s content is a {type(content).__name__}, not a string; "
            "pass the text as a string"
        )
    calls = data.get("tool_calls")
    if isinstance(calls, Sequence) and not isinstance(calls, str):
        data["tool_calls"] = [
            _tool_call(f"{where}'s tool_calls[{j}]", call) for j, call in enumerate(calls)
        ]
    try:
        return ChatMessage.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise _Problem(f"{where} is not valid: {errors}") from None


def _tool_call(where: str, call: object) -> object:
    """An OpenAI-style tool call (``{"function": {"name", "arguments"}}``) as planloop's;
    anything else as it is, for pydantic to check."""
    function = call.get("function") if isinstance(call, Mapping) else None
    if not isinstance(call, Mapping) or not isinstance(function, Mapping):
        return call
    raw = function.get("arguments")
    arguments = raw or {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            arguments = None
    if not isinstance(arguments, Mapping):
        raise _Problem(f"{where} has arguments that are not a JSON object: {raw!r}")
    return {"name": function.get("name"), "args": dict(arguments), "id": call.get("id")}


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
