"""The HTTP side of the OpenAI-compatible client: the connections (one
``httpx.AsyncClient`` per event loop, kept open between calls), one JSON POST with
retries, and what each failure means for the person reading the error.

Retried: 408, 429 and 5xx answers, timeouts and transport failures (refused or dropped
connections), with exponential backoff and jitter, or the server's ``Retry-After``
when it sends one; every wait is capped. Other 4xx answers fail at once. The timeout
bounds each attempt as a whole, not only each read of it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import httpx

from planloop.engine.retry import RetryPolicy
from planloop.errors import ModelAuthError, ModelError, ModelNotFound

__all__ = ["Endpoint", "LoopClients", "new_client", "post_json", "retry_after", "server_message"]

_SNIPPET = 300


@dataclass(frozen=True, repr=False)
class Endpoint:
    """Where requests go and how hard to try; ``repr`` never shows the key."""

    base_url: str
    model: str
    api_key: str | None
    timeout: float
    max_retries: int
    backoff: float
    max_wait: float

    @property
    def where(self) -> str:
        return f"the model server at {self.base_url}"

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def scrub(self, text: str) -> str:
        return text.replace(self.api_key, "[redacted]") if self.api_key else text

    def error(
        self,
        cls: type[ModelError],
        message: str,
        *,
        hint: str = "",
        status_code: int | None = None,
        attempts: int = 1,
    ) -> ModelError:
        return cls(
            self.scrub(message),
            model=self.model,
            base_url=self.base_url,
            status_code=status_code,
            hint=hint,
            attempts=attempts,
        )


def new_client(endpoint: Endpoint) -> httpx.AsyncClient:
    """A client that sends ``endpoint``'s headers (and Content-Type) with its timeout."""
    headers = {**endpoint.headers(), "Content-Type": "application/json"}
    return httpx.AsyncClient(timeout=endpoint.timeout, headers=headers)


class LoopClients:
    """One :func:`new_client` per running event loop, opened on first use in that loop
    and reused by every later call in it, so its connections are kept alive.

    An ``httpx.AsyncClient`` belongs to the loop it first ran in, so each loop (each
    thread running one, each ``asyncio.run``) gets its own. When the loop shuts down the
    way ``asyncio.run`` shuts one down (``loop.shutdown_asyncgens()``), its client is
    closed: a suspended async generator holds it, and closing the generator runs
    ``await client.aclose()``. :meth:`aclose` closes the running loop's client now; the
    next :meth:`get` in that loop opens a new one.

    A loop that is closed without ``shutdown_asyncgens()`` cannot close its client any
    more; its entry is dropped at the next :meth:`get` (from any loop), and the open
    sockets are left to the garbage collector (with its ``ResourceWarning``).
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._lock = threading.Lock()
        # loop -> (its client, the suspended generator that closes it). The generator
        # refers to its loop (the loop's finalizer hook), so an entry is removed by hand
        # when its client closes or its loop is found closed, not only by the weak key.
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop,
            tuple[httpx.AsyncClient, AsyncGenerator[None, None]],
        ] = weakref.WeakKeyDictionary()

    async def get(self) -> httpx.AsyncClient:
        """The running loop's client, opened now if it has none (or its one is closed)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            for other in [k for k in self._by_loop if k.is_closed()]:
                del self._by_loop[other]
            held = self._by_loop.get(loop)
            if held is not None and not held[0].is_closed:
                return held[0]
            client = new_client(self._endpoint)
            closer = self._close_at_shutdown(client)
            self._by_loop[loop] = (client, closer)
        # The first step registers the generator with the running loop (its asyncgen
        # hooks), so the loop's shutdown_asyncgens() closes it; it runs to the ``yield``
        # without suspending, so no other task of this loop sees the entry half made.
        await anext(closer)
        return client

    async def aclose(self) -> None:
        """Close the running loop's client, if it has one; other loops keep theirs."""
        loop = asyncio.get_running_loop()
        with self._lock:
            held = self._by_loop.pop(loop, None)
        if held is not None:
            await held[1].aclose()

    async def _close_at_shutdown(self, client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                for loop, held in list(self._by_loop.items()):
                    if held[0] is client:
                        del self._by_loop[loop]
            await client.aclose()


async def post_json(
    client: httpx.AsyncClient, endpoint: Endpoint, path: str, body: Mapping[str, Any]
) -> Any:
    """POST ``body`` to ``base_url + path`` with ``client`` (made by :func:`new_client`
    for ``endpoint``); the decoded JSON answer, or :class:`ModelError`.

    The client is the caller's: it stays open, and a retry goes out on it too (over a
    connection it keeps alive, or a new one when the last one failed or timed out).

    Each attempt (connecting, sending, waiting and reading the whole answer) has at most
    ``endpoint.timeout`` seconds; one that takes longer is dropped, and retried like any
    timeout. So a call takes at most ``max_retries + 1`` timeouts plus the waits between
    them (each at most ``max_wait``).
    """
    url = endpoint.base_url.rstrip("/") + path
    policy = RetryPolicy(
        attempts=endpoint.max_retries + 1,
        initial_interval=endpoint.backoff,
        max_interval=endpoint.max_wait,
        jitter=0.25,
    )
    content = json.dumps(body, ensure_ascii=False, default=str).encode()
    attempt = 0
    while True:
        attempt += 1
        try:
            # httpx's timeouts bound each connect, write and read; a server that sends a
            # byte now and then passes every one of them, so the attempt as a whole has
            # the same bound too.
            async with asyncio.timeout(endpoint.timeout):
                response = await client.post(url, content=content)
        except (httpx.TimeoutException, TimeoutError) as exc:
            failure = _timeout(endpoint, attempt)
            failure.__cause__ = exc
            wait = policy.wait(attempt)
        except httpx.TransportError as exc:
            failure = _transport(endpoint, exc, attempt)
            failure.__cause__ = exc
            wait = policy.wait(attempt)
        else:
            status = response.status_code
            if status < 400:
                return _decode(endpoint, response)
            failure = _status_error(endpoint, response, attempt)
            if not _retried(status):
                raise failure
            after = retry_after(response.headers)
            wait = policy.wait(attempt) if after is None else after
        if attempt > endpoint.max_retries:
            raise failure
        await asyncio.sleep(min(wait, endpoint.max_wait))


def _retried(status: int) -> bool:
    return status in (408, 429) or status >= 500


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked to wait (``Retry-After``: seconds or an HTTP date), if any.

    OpenAI's ``retry-after-ms`` wins when present. A date in the past gives 0.

    Example:
        >>> retry_after({"retry-after": "2"})
        2.0
        >>> retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0)
        10.0
        >>> retry_after({"retry-after": "soon"}) is None
        True
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = _number(lowered.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return max(0.0, number) if math.isfinite(number) else None


def server_message(response: httpx.Response) -> str:
    """The server's own words about a failed request, on one line and not too long.

    Reads OpenAI's ``{"error": {"message": ...}}``, ``{"error": "..."}`` (Ollama,
    llama.cpp), ``{"detail": ...}`` (vLLM) and ``{"message": ...}``; else the body text.
    """
    try:
        data = response.json()
    except ValueError:
        data = None
    found: Any = None
    if isinstance(data, dict):
        error = data.get("error")
        found = error.get("message") if isinstance(error, dict) else error
        found = found or data.get("detail") or data.get("message")
    if found is None:
        text = response.text
    elif isinstance(found, str):
        text = found
    else:
        text = json.dumps(found, ensure_ascii=False)
    return _short(text) or "(empty body)"


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "…"


def _attempts(n: int) -> str:
    return "1 attempt" if n == 1 else f"{n} attempts"


def _decode(endpoint: Endpoint, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise endpoint.error(
            ModelError,
            f"{endpoint.where} answered HTTP {response.status_code} with a body that is "
            f"not JSON: {_short(response.text)!r}",
            hint=(
                "check that the base URL is the server's OpenAI-compatible API root "
                "(usually ending in /v1)"
            ),
            status_code=response.status_code,
        ) from None


def _status_error(endpoint: Endpoint, response: httpx.Response, attempt: int) -> ModelError:
    status = response.status_code
    said = server_message(response)
    where, model = endpoint.where, endpoint.model
    cls: type[ModelError] = ModelError
    if status == 401:
        cls = ModelAuthError
        if endpoint.api_key:
            message = f"{where} refused the API key (HTTP 401): {said}"
            hint = "check OPENAI_API_KEY (or api_key=): it must be a valid key for this server"
        else:
            message = f"{where} needs an API key (HTTP 401) and none was sent: {said}"
            hint = "set OPENAI_API_KEY or pass api_key="
    elif status == 403:
        cls = ModelAuthError
        message = f"{where} refused access to model {model!r} (HTTP 403): {said}"
        hint = "the API key lacks permission for this model or endpoint; check the key and model"
    elif status == 404:
        cls = ModelNotFound
        message = (
            f"{where} has no model {model!r}, or no chat completions endpoint (HTTP 404): {said}"
        )
        hint = (
            "check the model name (PLANLOOP_MODEL or model=; with Ollama, `ollama pull` it "
            "first) and that the base URL is the server's OpenAI-compatible root, usually "
            "ending in /v1"
        )
    elif status == 429:
        message = f"{where} is rate limiting requests (HTTP 429), {_attempts(attempt)}: {said}"
        hint = "send fewer requests, raise max_retries=, or check the account's quota"
    elif status >= 500:
        message = f"{where} failed with HTTP {status}, {_attempts(attempt)}: {said}"
        hint = "the server is failing; check its logs, or try again later"
    else:
        message = f"{where} rejected the request for model {model!r} (HTTP {status}): {said}"
        hint = ""
    return endpoint.error(cls, message, hint=hint, status_code=status, attempts=attempt)


def _timeout(endpoint: Endpoint, attempt: int) -> ModelError:
    return endpoint.error(
        ModelError,
        f"{endpoint.where} did not answer within {endpoint.timeout:g} s, {_attempts(attempt)}",
        hint=(
            "raise timeout= (a local model can take minutes to load and answer), "
            "or check that the server is not overloaded"
        ),
        attempts=attempt,
    )


def _transport(endpoint: Endpoint, exc: httpx.TransportError, attempt: int) -> ModelError:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return endpoint.error(
            ModelError,
            f"cannot connect to the model server at {endpoint.base_url}, "
            f"{_attempts(attempt)}: {detail}",
            hint=(
                "is the server running, and is the base URL right? set OPENAI_BASE_URL "
                "or pass base_url="
            ),
            attempts=attempt,
        )
    return endpoint.error(
        ModelError,
        f"{endpoint.where} dropped the connection without an answer, "
        f"{_attempts(attempt)}: {detail}",
        hint="the server may have crashed or restarted; check its logs",
        attempts=attempt,
    )
