"""A chat-completions server on 127.0.0.1 for the tests.

It answers each request with the next :class:`Reply` of its script (a 500 saying so
when the script is used up) and records every request it received, with the time it
arrived by its own clock, so tests can check waits without timing the client, and the
client's address and port, so tests can tell which connection it came over. It speaks
HTTP/1.1 and keeps connections open until the client closes them (as hosted servers
do); it records each connection it saw closed. A reply with ``trickle`` sends its whole
answer (status line, headers and body) one byte at a time, ``trickle`` seconds apart, as
a stalled server or proxy does: every read gets a byte well within a per-read timeout.
"""

from __future__ import annotations

import contextlib
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

    ``drop=True`` closes the connection without answering; ``trickle`` > 0 sends the
    answer one byte every ``trickle`` seconds (until the client goes away).
    """

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    trickle: float = 0.0


@dataclass
class Seen:
    """A request as the server received it; ``peer`` is the client's (host, port),
    the same for every request over one connection."""

    t: float
    path: str
    headers: dict[str, str]
    body: Any
    peer: tuple[str, int]


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
        self.opened: list[tuple[str, int]] = []
        self.closed: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
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

    @property
    def peers(self) -> list[tuple[str, int]]:
        """The connection each request came over, in order."""
        return [r.peer for r in self.requests]

    def wait_closed(self, *peers: tuple[str, int], timeout: float = 5.0) -> bool:
        """Whether the connections from ``peers`` are all closed within ``timeout`` s
        (by the client: this server closes one only when told to drop it)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.closed.issuperset(peers), timeout)

    def open_connections(self) -> list[tuple[str, int]]:
        with self._lock:
            return [peer for peer in self.opened if peer not in self.closed]

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
            protocol_version = "HTTP/1.1"  # keep-alive: one connection, many requests

            def setup(self) -> None:
                super().setup()
                with server._changed:
                    server.opened.append(self.client_address)

            def handle(self) -> None:
                # the client may go away mid-request (a timeout test)
                with contextlib.suppress(ConnectionError):
                    super().handle()

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with server._changed:
                        server.closed.add(self.client_address)
                        server._changed.notify_all()

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
                    peer=self.client_address,
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
                kind = "text/html" if isinstance(reply.body, str) else "application/json"
                head = {"Content-Type": kind, "Content-Length": str(len(data)), **reply.headers}
                try:
                    if reply.trickle:
                        self._trickle(reply, head, data)
                        return
                    self.send_response(reply.status)
                    for name, value in head.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (a timeout test)
                    self.close_connection = True

            def _trickle(self, reply: Reply, head: dict[str, str], data: bytes) -> None:
                lines = [f"HTTP/1.1 {reply.status} OK", *(f"{k}: {v}" for k, v in head.items())]
                raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + data
                self.close_connection = True
                for i in range(len(raw)):
                    self.wfile.write(raw[i : i + 1])
                    self.wfile.flush()
                    time.sleep(reply.trickle)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
