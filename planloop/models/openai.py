"""``OpenAIChat``: chat completions from any OpenAI-compatible server, over httpx.

Only this module (and :mod:`planloop.models._http`) imports httpx;
``planloop.models`` loads it on first use of :class:`OpenAIChat` or :func:`from_env`.
An :class:`OpenAIChat` keeps one ``httpx.AsyncClient`` per event loop, so the calls of a
run share their connections (one TCP and TLS handshake, not one per call).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from planloop.engine._sync import run_sync
from planloop.engine.redact import register_secret
from planloop.engine.tooling import ToolSpec
from planloop.engine.trace import Usage
from planloop.errors import DefinitionError, ModelError, OutputParserError
from planloop.models._http import Endpoint, LoopClients, post_json
from planloop.models.messages import ChatMessage, ModelResponse, ToolCall, as_messages

__all__ = ["DEFAULT_BASE_URL", "OpenAIChat", "from_env"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
"""Where requests go when neither ``base_url=`` nor ``OPENAI_BASE_URL`` says otherwise."""

NO_MODEL = (
    "no chat model is configured: set PLANLOOP_MODEL to a model name (for example "
    "PLANLOOP_MODEL=gpt-4o-mini with OPENAI_API_KEY set, or PLANLOOP_MODEL=llama3.2 with "
    "OPENAI_BASE_URL=http://localhost:11434/v1 for Ollama), or pass model="
)

_SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]")


class OpenAIChat:
    """A :class:`~planloop.models.ChatModel` for any server that speaks OpenAI's chat
    completions API: native tool calls (several in one message), JSON-schema
    structured output, and token usage, which lands in the run's trace.

    ============  ================================  =========================
    server        base URL                          API key
    ============  ================================  =========================
    OpenAI        ``https://api.openai.com/v1``     required
    Ollama        ``http://localhost:11434/v1``     none (any value works)
    vLLM          ``http://localhost:8000/v1``      only with ``--api-key``
    llama.cpp     ``http://localhost:8080/v1``      only with ``--api-key``
    LM Studio     ``http://localhost:1234/v1``      none
    ============  ================================  =========================

    Args:
        model: the model's name on that server (``gpt-4o-mini``, ``llama3.2``, ...).
        base_url: the server's API root; ``None`` reads ``OPENAI_BASE_URL``, else OpenAI.
        api_key: sent as a bearer token; ``None`` reads ``OPENAI_API_KEY`` (so that key
            goes to whatever server the base URL names), ``""`` sends none. The key is
            registered with :func:`~planloop.register_secret`, so it never reaches a
            store or a diagram, and ``repr`` does not show it.
        timeout: seconds each attempt of a request may take in all: connecting,
            sending, and reading the whole answer (not only each read: a server that
            trickles its answer slowly times out too). The timeout is per attempt, and a
            timeout is retried, so a call takes at most ``(max_retries + 1) * timeout``
            seconds plus the waits between attempts (each at most ``max_wait``).
        max_retries: how many times a request is sent again after a 408, 429 or 5xx
            answer, a timeout or a refused or dropped connection.
        backoff: seconds before the first retry; each next wait doubles, with jitter.
            A ``Retry-After`` from the server (seconds or a date) is used instead.
        max_wait: no wait between tries is longer than this (``Retry-After`` included).
        temperature: sampling temperature; ``None`` leaves the server's default.
        extra_body: more fields for every request body (``max_tokens``, ``seed``, ...).

    Raises:
        DefinitionError: an option is invalid (every problem is listed).

    Connections: each event loop the model is called in gets one ``httpx.AsyncClient``,
    opened by the first call in that loop and kept (with its connections alive) for the
    later ones, so an agent's calls in one run reuse one connection. It is closed when
    the loop shuts down as ``asyncio.run`` shuts it down (which every ``run_sync`` and
    :meth:`chat_sync` does), or at once by :meth:`aclose` or the end of
    ``async with OpenAIChat(...) as model:``. A call after that opens a new one.
    Each :meth:`chat_sync` from sync code runs on a loop of its own, so on a connection of
    its own; ``Agent.run_sync`` runs the whole run on one loop.

    Failures raise :class:`~planloop.ModelError` (:class:`~planloop.ModelAuthError` for
    401/403, :class:`~planloop.ModelNotFound` for 404), after the retries where they
    apply. Tool-call arguments that are not JSON raise
    :class:`~planloop.OutputParserError`, so an agent with ``handle_parsing_errors=True``
    sends the problem back to the model to repair.

    Example:
        >>> OpenAIChat("llama3.2", base_url="http://localhost:11434/v1", api_key="")
        OpenAIChat(model='llama3.2', base_url='http://localhost:11434/v1')
        >>> OpenAIChat("gpt-4o-mini", base_url=DEFAULT_BASE_URL, api_key="sk-example-0001")
        OpenAIChat(model='gpt-4o-mini', base_url='https://api.openai.com/v1', api_key='[redacted]')
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        max_wait: float = 30.0,
        temperature: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if base_url is None:
            base_url = os.environ.get("OPENAI_BASE_URL", "").strip() or DEFAULT_BASE_URL
        if api_key is None:
            api_key = os.environ.get("OPENAI_API_KEY", "").strip()
        problems: list[str] = []
        if not isinstance(model, str) or not model.strip():
            problems.append(f"model={model!r}; give the model's name, e.g. 'gpt-4o-mini'")
        if not base_url.startswith(("http://", "https://")):
            problems.append(
                f"base_url={base_url!r}; it must start with http:// or https://, "
                "e.g. 'http://localhost:11434/v1'"
            )
        if not (isinstance(timeout, int | float) and timeout > 0):
            problems.append(f"timeout={timeout!r}; use seconds > 0")
        if not (isinstance(max_retries, int) and max_retries >= 0):
            problems.append(f"max_retries={max_retries!r}; use a whole number >= 0")
        for label, value in (("backoff", backoff), ("max_wait", max_wait)):
            if not (isinstance(value, int | float) and value >= 0):
                problems.append(f"{label}={value!r}; use seconds >= 0")
        if problems:
            raise DefinitionError("invalid OpenAIChat options: " + "; ".join(problems))
        if len(api_key) >= 4:
            register_secret(api_key)
        self._endpoint = Endpoint(
            base_url=base_url.rstrip("/"),
            model=model,
            api_key=api_key or None,
            timeout=float(timeout),
            max_retries=max_retries,
            backoff=float(backoff),
            max_wait=float(max_wait),
        )
        self.temperature = temperature
        self.extra_body: dict[str, Any] = dict(extra_body or {})
        self._clients = LoopClients(self._endpoint)

    @classmethod
    def from_env(cls, *, model: str | None = None, base_url: str | None = None) -> OpenAIChat:
        """The model ``PLANLOOP_MODEL`` names (or ``model=``), at ``OPENAI_BASE_URL``.

        Raises:
            DefinitionError: no model is named; the message says what to set.

        Example:
            >>> OpenAIChat.from_env(
            ...     model="qwen2.5", base_url="http://localhost:8000/v1"
            ... )  # doctest: +ELLIPSIS
            OpenAIChat(model='qwen2.5', base_url='http://localhost:8000/v1'...)
        """
        chat = from_env(model=model, base_url=base_url)
        if chat is None:
            raise DefinitionError(NO_MODEL)
        return chat

    @property
    def name(self) -> str:
        """The model's name, as recorded in the trace."""
        return self._endpoint.model

    @property
    def model(self) -> str:
        return self._endpoint.model

    @property
    def base_url(self) -> str:
        return self._endpoint.base_url

    @property
    def timeout(self) -> float:
        return self._endpoint.timeout

    @property
    def max_retries(self) -> int:
        return self._endpoint.max_retries

    def __repr__(self) -> str:
        key = ", api_key='[redacted]'" if self._endpoint.api_key else ""
        return f"OpenAIChat(model={self.model!r}, base_url={self.base_url!r}{key})"

    async def aclose(self) -> None:
        """Close the connections of the running event loop's client.

        The next call in this loop opens a new client; calling this again, or with no
        client open, does nothing. Clients of other loops (other threads) are closed by
        their own loop's shutdown, or by :meth:`aclose` called in that loop.
        """
        await self._clients.aclose()

    async def __aenter__(self) -> OpenAIChat:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def chat(
        self,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] | None = None,
    ) -> ModelResponse:
        """One chat completion: ``POST {base_url}/chat/completions``, with this loop's
        client (its kept-alive connection). ``messages`` are :class:`ChatMessage`
        objects or OpenAI-style dicts (see :func:`~planloop.models.as_messages`).

        Raises:
            InvalidMessage: a message is not a chat message (nothing is sent).
            ModelError: the server failed (after retries), refused the request, or
                answered with something that is not a chat completion.
            OutputParserError: a tool call's arguments are not a JSON object.
        """
        body = self._body(as_messages(messages), tools, response_schema, stop)
        client = await self._clients.get()
        data = await post_json(client, self._endpoint, "/chat/completions", body)
        return self._response(data)

    def chat_sync(
        self,
        messages: Sequence[ChatMessage | Mapping[str, Any]],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] | None = None,
    ) -> ModelResponse:
        """:meth:`chat` from sync code, also where an event loop is already running.

        Each call runs on a new event loop (see :func:`~planloop.engine._sync.run_sync`),
        so it opens a connection, and closes it as that loop shuts down.
        """
        return run_sync(
            self.chat(messages, tools=tools, response_schema=response_schema, stop=stop)
        )

    # --- the request -------------------------------------------------------------

    def _body(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None,
        response_schema: Mapping[str, Any] | None,
        stop: Sequence[str] | None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_message_json(m) for m in messages],
        }
        if tools:
            body["tools"] = [_tool_json(t) for t in tools]
        if response_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": _schema_name(response_schema), "schema": response_schema},
            }
        if stop:
            body["stop"] = list(stop)
        if self.temperature is not None:
            body["temperature"] = self.temperature
        body.update(self.extra_body)
        return body

    # --- the answer --------------------------------------------------------------

    def _response(self, data: Any) -> ModelResponse:
        endpoint = self._endpoint
        choices = data.get("choices") if isinstance(data, dict) else None
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        if not isinstance(first, dict) or not isinstance(message, dict):
            raise endpoint.error(
                ModelError,
                f"{endpoint.where} answered without a chat completion "
                f"(no choices[0].message): {_snippet(data)}",
                hint=(
                    "check that the base URL is the server's OpenAI-compatible API root "
                    "and that the model supports chat"
                ),
                status_code=200,
            )
        content = _text(message.get("content")) or _text(message.get("refusal"))
        raw_calls = message.get("tool_calls") or []
        if not isinstance(raw_calls, list):
            raw_calls = [raw_calls]
        calls: list[ToolCall] = []
        problems: list[str] = []
        said: list[str] = []
        for i, raw in enumerate(raw_calls, 1):
            function = raw.get("function") if isinstance(raw, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(function, dict) or not isinstance(name, str) or not name:
                text = _snippet(raw)
                problems.append(f"tool call {i} has no function name: {text}")
                said.append(text)
                continue
            arguments = function.get("arguments")
            said.append(f"{name}({_text(arguments) or json.dumps(arguments)})")
            args, problem = _arguments(arguments)
            if problem is not None:
                problems.append(f"tool {name!r}: {problem}")
                continue
            call_id = raw.get("id") if isinstance(raw, dict) else None
            calls.append(ToolCall(name, args, id=call_id if isinstance(call_id, str) else None))
        if problems:
            if first.get("finish_reason") == "length":
                problems.append(
                    "the answer was cut off at the token limit (finish_reason 'length')"
                )
            raise OutputParserError(
                f"model {self.model!r} made tool calls that cannot be read: " + "; ".join(problems),
                llm_output="\n".join([content, *said]).strip(),
                observation=(
                    "These tool calls could not be read:\n"
                    + "\n".join(f"- {p}" for p in problems)
                    + "\nCall the tools again, each with its arguments as one JSON object."
                ),
                usage=_usage(data.get("usage")),
            )
        return ModelResponse(
            message=ChatMessage(role="assistant", content=content, tool_calls=tuple(calls)),
            usage=_usage(data.get("usage")),
        )


def from_env(*, model: str | None = None, base_url: str | None = None) -> OpenAIChat | None:
    """The chat model the environment configures, or ``None`` when it names none.

    ``PLANLOOP_MODEL`` (or ``model=``) names the model, ``OPENAI_BASE_URL`` (or
    ``base_url=``) the server (OpenAI when unset) and ``OPENAI_API_KEY`` the key.

    Example:
        >>> from_env(model="llama3.2", base_url="http://localhost:11434/v1")  # doctest: +ELLIPSIS
        OpenAIChat(model='llama3.2', base_url='http://localhost:11434/v1'...)
    """
    name = (model or os.environ.get("PLANLOOP_MODEL", "")).strip()
    if not name:
        return None
    return OpenAIChat(name, base_url=base_url)


def _message_json(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id or f"call_{i}",
                "type": "function",
                "function": {
                    "name": call.name,
                    "arguments": json.dumps(call.args, ensure_ascii=False, default=str),
                },
            }
            for i, call in enumerate(message.tool_calls, 1)
        ]
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id or ""
    return out


def _tool_json(spec: ToolSpec) -> dict[str, Any]:
    parameters = spec.parameters or {"type": "object", "properties": {}}
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": parameters},
    }


def _schema_name(schema: Mapping[str, Any]) -> str:
    title = schema.get("title")
    name = _SCHEMA_NAME.sub("_", title)[:64] if isinstance(title, str) else ""
    return name or "response"


def _arguments(raw: Any) -> tuple[dict[str, Any], str | None]:
    """A tool call's arguments as a dict, or why they are not one."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}, None
    if isinstance(raw, dict):
        return raw, None
    if not isinstance(raw, str):
        return {}, f"arguments are {type(raw).__name__}, not a JSON object: {_snippet(raw)}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return {}, f"arguments are not valid JSON ({exc}): {raw}"
    if not isinstance(value, dict):
        return {}, f"arguments are JSON but not an object: {raw}"
    return value, None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(p.get("text", "") for p in value if isinstance(p, dict))
    return str(value)


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if not isinstance(prompt, int) and not isinstance(completion, int):
        return None
    return Usage(
        input_tokens=prompt if isinstance(prompt, int) else 0,
        output_tokens=completion if isinstance(completion, int) else 0,
    )


def _snippet(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:300] + "…"
