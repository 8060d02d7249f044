"""Errors of a chat model's server: it failed, refused the request, or answered garbage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from planloop.errors._root import PlanloopError

__all__ = ["InvalidMessage", "ModelAuthError", "ModelError", "ModelNotFound"]


class InvalidMessage(PlanloopError, ValueError):
    """Messages given to a chat model are not chat messages (raised before any request).

    A message is a :class:`~planloop.models.ChatMessage` or an OpenAI-style dict
    (``{"role": "user", "content": "hi"}``); every bad one is listed at once.

    Attributes:
        problems: one line per bad message, naming it by its index.
        indexes: the indexes of the bad messages.
        index: the index of the first bad message.
        count: how many messages were given.

    Example:
        >>> import asyncio
        >>> from planloop.testing import ScriptedModel
        >>> messages = [{"role": "user", "content": "hi"}, {"role": "bot", "content": "?"}]
        >>> try:
        ...     asyncio.run(ScriptedModel(["hello"]).chat(messages))
        ... except InvalidMessage as err:
        ...     print(err.index, err.problems[0])
        1 message 1 has role 'bot'; use one of 'system', 'user', 'assistant', 'tool'
    """

    def __init__(self, problems: Mapping[int, str], count: int) -> None:
        self.indexes: tuple[int, ...] = tuple(sorted(problems))
        self.index = self.indexes[0] if self.indexes else -1
        self.problems: tuple[str, ...] = tuple(problems[i] for i in self.indexes)
        self.count = count
        lines = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(f"invalid chat messages ({len(self.problems)} of {count}):{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(zip(self.indexes, self.problems, strict=True)), self.count))


class ModelError(PlanloopError, RuntimeError):
    """A chat model's server failed, refused the request, or answered something unreadable.

    Raised after the retries (429, 5xx, timeouts, dropped connections) are used
    up, at once for other 4xx answers, and for a body that is not a chat
    completion. Inside a run it stops the run, which raises a
    :class:`ModelFailed`: a :class:`PlannerFailed` that is a ``ModelError`` too
    (so ``except ModelError`` catches it), with this error as its ``__cause__``
    and its attributes copied.

    Attributes:
        model: the model asked.
        base_url: the server's API root.
        status_code: the HTTP status of the last answer, or ``None`` when there
            was none (timeout, connection refused or dropped).
        hint: how to fix it (also the end of the message).
        attempts: how many requests were sent.

    Example:
        >>> from planloop import Agent, PlannerFailed
        >>> from planloop.models import OpenAIChat
        >>> url = "http://127.0.0.1:9/v1"  # nothing listens there
        >>> chat = OpenAIChat("llama3.2", base_url=url, api_key="", max_retries=0)
        >>> try:
        ...     Agent(chat, store=False).run_sync("hi")
        ... except ModelError as err:
        ...     print(type(err).__name__, isinstance(err, PlannerFailed), err.status_code)
        ...     print(err.hint)
        ModelFailed True None
        is the server running, and is the base URL right? set OPENAI_BASE_URL or pass base_url=
    """

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        base_url: str = "",
        status_code: int | None = None,
        hint: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(f"{message}; {hint}" if hint else message)
        self.model = model
        self.base_url = base_url
        self.status_code = status_code
        self.hint = hint
        self.attempts = attempts

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),), dict(self.__dict__))


class ModelAuthError(ModelError):
    """The model server refused the API key (HTTP 401) or access to the model (HTTP 403).

    Example:
        >>> import http.server, threading
        >>> from planloop import Agent, PlannerFailed
        >>> from planloop.models import OpenAIChat
        >>> class BadKey(http.server.BaseHTTPRequestHandler):
        ...     def do_POST(self):
        ...         self.send_error(401, "invalid api key")
        >>> with http.server.HTTPServer(("127.0.0.1", 0), BadKey) as server:
        ...     threading.Thread(target=server.handle_request).start()
        ...     url = f"http://127.0.0.1:{server.server_port}/v1"
        ...     chat = OpenAIChat("gpt-4o-mini", base_url=url, api_key="")
        ...     try:
        ...         Agent(chat, store=False).run_sync("hi")
        ...     except PlannerFailed as err:
        ...         print(type(err.__cause__).__name__, err.__cause__.hint)
        ModelAuthError set OPENAI_API_KEY or pass api_key=
    """


class ModelNotFound(ModelError):
    """The model server has no such model, or no such endpoint (HTTP 404).

    Example:
        >>> import http.server, threading
        >>> from planloop import Agent, PlannerFailed
        >>> from planloop.models import OpenAIChat
        >>> class NoSuchModel(http.server.BaseHTTPRequestHandler):
        ...     def do_POST(self):
        ...         self.send_error(404, "model not found")
        >>> with http.server.HTTPServer(("127.0.0.1", 0), NoSuchModel) as server:
        ...     threading.Thread(target=server.handle_request).start()
        ...     url = f"http://127.0.0.1:{server.server_port}/v1"
        ...     chat = OpenAIChat("gpt-9", base_url=url, api_key="")
        ...     try:
        ...         Agent(chat, store=False).run_sync("hi")
        ...     except PlannerFailed as err:
        ...         print(type(err.__cause__).__name__, err.__cause__.status_code)
        ModelNotFound 404
    """
