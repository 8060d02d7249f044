"""A chat-completions server on 127.0.0.1 for the tests.

It answers each request with the next :class:`Reply` of its script (a 500 saying so
when the script is used up) and records every request it received, with the time it
arrived by its own clock, so tests can check waits without timing the client.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["ChatServer", "Reply", "Seen", "answer", "calls", "error"]


@dataclass
class Reply:
    """One scripted answer: a JSON body (dict/list) or raw text, after ``delay`` seconds.

    ``drop=True`` closes the connection without answering.
    """

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


@dataclass
class Seen:
    """A request as the server received it."""

    t: float
    path: str
    headers: dict[str, str]
    body: Any


def _completion(message: dict[str, Any], usage: tuple[int, int] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if usage is not None:
        body["usage"] = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        }
    return body


def answer(text: str, *, usage: tuple[int, int] | None = (10, 5), **reply: Any) -> Reply:
    """A plain assistant answer."""
    return Reply(_completion({"role": "assistant", "content": text}, usage), **reply)


def calls(
    *tool_calls: tuple[str, Any, str],
    content: str | None = None,
    usage: tuple[int, int] | None = (20, 8),
) -> Reply:
    """An assistant message with tool calls ``(name, arguments, id)``; a dict of
    arguments is sent as JSON text, a string as it is."""
    message = {
        "role": "assistant",
        "content": content,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for name, args, call_id in tool_calls
        ],
    }
    return Reply(_completion(message, usage))


def error(status: int, message: str, **reply: Any) -> Reply:
    """An error answer shaped like OpenAI's."""
    return Reply({"error": {"message": message, "type": "test_error"}}, status=status, **reply)


class ChatServer:
    """``with ChatServer([...]) as server:`` serves ``server.url`` until the block ends."""

    def __init__(self, replies: Iterable[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            if not self.replies:
                return error(500, "the test server's script is used up")
            return self.replies.pop(0)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                seen = Seen(
                    t=time.monotonic(),
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = server._next(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                data = (
                    reply.body.encode()
                    if isinstance(reply.body, str)
                    else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    kind = "text/html" if isinstance(reply.body, str) else "application/json"
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (a timeout test)
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
