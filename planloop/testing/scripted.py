"""A chat model that plays back a script: for tests, demos and property tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from operator import is_
from typing import Any

from planloop.engine.tooling import ToolSpec
from planloop.engine.trace import Usage
from planloop.errors import ScriptExhausted
from planloop.models.messages import ChatMessage, ModelResponse, ToolCall, as_messages

__all__ = ["ModelRequest", "ScriptedModel", "ScriptedResponse"]

ScriptedResponse = str | ToolCall | Sequence[ToolCall] | ChatMessage | BaseException


class ModelRequest:
    """One call a :class:`ScriptedModel` received: its ``messages``, ``tools``,
    ``response_schema`` and ``stop``.

    Example:
        >>> import asyncio
        >>> model = ScriptedModel(["hi"])
        >>> _ = asyncio.run(model.chat([ChatMessage(role="user", content="hello")]))
        >>> [m.content for m in model.requests[0].messages]
        ['hello']
    """

    __slots__ = ("_count", "_source", "_tools", "response_schema", "stop")

    def __init__(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None,
        response_schema: Mapping[str, Any] | None,
        stop: Sequence[str] | None,
    ) -> None:
        # Planners only ever append to a conversation, so the request keeps the
        # list and its length instead of a copy (a copy per call would make a
        # long scripted run quadratic). The tools are kept as given (a planner
        # passes a fresh sequence per call); ``tools`` reads them as a new list.
        self._source = messages
        self._count = len(messages)
        self._tools = tools
        self.response_schema = response_schema
        self.stop = list(stop) if stop is not None else None

    @property
    def messages(self) -> list[ChatMessage]:
        """The messages of this request."""
        return list(self._source[: self._count])

    @property
    def tools(self) -> list[ToolSpec] | None:
        """The tools offered with this request (``None`` if none were)."""
        tools = self._tools
        return None if tools is None else list(tools)

    def __repr__(self) -> str:
        return (
            f"ModelRequest(messages={len(self.messages)}, tools={self.tools and len(self.tools)})"
        )


class ScriptedModel:
    """Answers each call with the next response of its script.

    Each response is a string (assistant text), a :class:`ToolCall` or a list
    of them (one message with tool calls), a :class:`ChatMessage`, or an
    exception instance (raised). Every request is kept in ``.requests``.
    Text is cut at the first ``stop`` string, as a real model would.

    It is a :class:`~planloop.models.ResumableModel`: when a stored run is
    resumed, a model that has not yet played as many responses as the recorded
    run made calls skips ahead to that many, so an agent built afresh (as
    ``planloop resume`` builds it from its file) with the same script goes on
    where the run stopped instead of answering the recorded calls again.

    Args:
        responses: the script.
        delay: seconds each call waits before answering.
        name: the model name recorded in traces.

    Example:
        >>> import asyncio
        >>> model = ScriptedModel(["hello"])
        >>> asyncio.run(model.chat([ChatMessage(role="user", content="hi")])).message.content
        'hello'
        >>> len(model.requests)
        1
    """

    def __init__(
        self,
        responses: Iterable[ScriptedResponse],
        *,
        delay: float = 0.0,
        name: str = "scripted",
    ) -> None:
        self.responses: list[ScriptedResponse] = list(responses)
        self.requests: list[ModelRequest] = []
        self.delay = delay
        self._name = name
        self._next = 0
        self._skipped = 0  # responses passed over by resumed_after
        self._last_tools: tuple[ToolSpec, ...] = ()
        # Each entry's message, made here once rather than on every call; with the
        # entry it was made from, so an entry replaced in ``responses`` is made anew.
        self._made: list[tuple[ScriptedResponse, ChatMessage | None]] = [
            (response, _fixed_message(response)) for response in self.responses
        ]

    @property
    def name(self) -> str:
        return self._name

    @property
    def remaining(self) -> int:
        """Responses not yet played."""
        return max(len(self.responses) - self._next, 0)

    def resumed_after(self, calls: int) -> None:
        """Go on after the first ``calls`` responses, unless already past them.

        Example:
            >>> model = ScriptedModel(["plan", "answer"])
            >>> model.resumed_after(1)  # the resumed run made one call
            >>> model.remaining
            1
        """
        if calls > self._next:
            self._skipped += calls - self._next
            self._next = calls

    async def chat(
        self,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] | None = None,
    ) -> ModelResponse:
        messages = as_messages(messages)
        if tools is not None:
            # The same tools as the last call (the usual case) are kept once: a
            # request per call lives as long as the model, a heap the garbage
            # collector keeps visiting.
            kept = tuple(tools)
            previous = self._last_tools
            if len(kept) == len(previous) and all(map(is_, kept, previous)):
                kept = previous
            self._last_tools = kept
            tools = kept
        self.requests.append(ModelRequest(messages, tools, response_schema, stop))
        if self._next >= len(self.responses):
            skipped = self._skipped
            resumed = f" (and skipped {skipped} for a resumed run's recorded calls)"
            raise ScriptExhausted(
                f"ScriptedModel {self._name!r} was called {len(self.requests)} times"
                f"{resumed if skipped else ''} but its script has {len(self.responses)} "
                "responses; add responses for the extra calls"
            )
        i = self._next
        response = self.responses[i]
        self._next = i + 1
        if self.delay:
            await asyncio.sleep(self.delay)
        made = self._made
        message = made[i][1] if i < len(made) and made[i][0] is response else None
        if message is None or (stop and isinstance(response, str)):
            message = _message(response, stop)
        # A rough, cheap count (4 characters a token) of the newest message only.
        last = len(messages[-1].content) if messages else 0
        usage = Usage(input_tokens=last // 4 + 1, output_tokens=len(message.content) // 4 + 1)
        return ModelResponse(message=message, usage=usage)


def _fixed_message(response: ScriptedResponse) -> ChatMessage | None:
    """The message ``response`` gives on any call, or ``None`` if there is none: an
    exception (raised when played) or an invalid entry (refused when played). Text
    is kept whole here; a call with ``stop`` strings cuts it."""
    if isinstance(response, BaseException):
        return None
    try:
        return _message(response, None)
    except TypeError:
        return None


def _message(response: ScriptedResponse, stop: Sequence[str] | None) -> ChatMessage:
    if isinstance(response, BaseException):
        raise response
    if isinstance(response, ChatMessage):
        return response
    if isinstance(response, str):
        text = response
        for s in stop or ():
            cut = text.find(s)
            if cut >= 0:
                text = text[:cut]
        return ChatMessage(role="assistant", content=text)
    if isinstance(response, ToolCall):
        return ChatMessage(role="assistant", tool_calls=(response,))
    calls = tuple(response)
    if not calls or not all(isinstance(c, ToolCall) for c in calls):
        raise TypeError(
            "a scripted response must be a str, a ToolCall, a non-empty list of ToolCalls, "
            f"a ChatMessage or an exception; got {response!r}"
        )
    return ChatMessage(role="assistant", tool_calls=calls)
