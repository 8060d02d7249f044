"""OpenAIChat against a real chat-completions server on 127.0.0.1 (no mocks of httpx)."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from chat_server import ChatServer, Reply, answer, calls, error

from planloop import (
    Agent,
    DefinitionError,
    ModelAuthError,
    ModelError,
    ModelNotFound,
    OutputParserError,
    ParsingFailed,
    PlanAndExecute,
    PlannerFailed,
    SQLiteStore,
    load_agent_executor,
    load_chat_planner,
    tool,
)
from planloop.engine.redact import default_redactor
from planloop.engine.trace import ModelCalled, Usage
from planloop.models import ChatMessage, OpenAIChat, from_env
from planloop.models._http import retry_after
from planloop.models.openai import NO_MODEL
from planloop.nodes.planners.plan_and_execute import PLAN_SCHEMA
from planloop.testing import check_trace

HI = [ChatMessage(role="user", content="hi")]


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLANLOOP_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def client(server: ChatServer, **options: Any) -> OpenAIChat:
    options.setdefault("api_key", "")
    options.setdefault("backoff", 0.01)
    return OpenAIChat("test-model", base_url=server.url, **options)


@tool
def population(city: str) -> int:
    """Population of a city.

    Args:
        city: the city's name.
    """
    return {"Oslo": 709_000, "Bergen": 291_000}[city]


@tool
def area(city: str) -> int:
    """Area of a city in km².

    Args:
        city: the city's name.
    """
    return {"Oslo": 454, "Bergen": 465}[city]


# --- answers, tool calls, structured output ------------------------------------------


def test_a_plain_answer_with_usage_through_the_sync_path() -> None:
    with ChatServer([answer("Hello!", usage=(12, 3))]) as server:
        response = client(server).chat_sync(HI)
    assert response.message == ChatMessage(role="assistant", content="Hello!")
    assert response.usage == Usage(input_tokens=12, output_tokens=3)
    [seen] = server.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.body == {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
    assert "authorization" not in seen.headers


def test_an_agent_runs_several_tool_calls_of_one_message_then_answers() -> None:
    script = [
        calls(
            ("population", {"city": "Oslo"}, "call_a"),
            ("area", {"city": "Oslo"}, "call_b"),
            content="Let me look both up.",
        ),
        answer("Oslo: 709000 people on 454 km²", usage=(40, 9)),
    ]
    with ChatServer(script) as server:
        model = client(server, api_key="sk-test-agent-0001")
        result = Agent(model, [population, area]).run_sync("How dense is Oslo?")
    assert result.output == "Oslo: 709000 people on 454 km²"
    assert [obs for _, obs in result.intermediate_steps] == [709_000, 454]
    check_trace(result.trace)
    called = [e for e in result.trace.events if isinstance(e, ModelCalled)]
    assert [(e.model, e.usage, e.error) for e in called] == [
        ("test-model", Usage(input_tokens=20, output_tokens=8), None),
        ("test-model", Usage(input_tokens=40, output_tokens=9), None),
    ]
    first, second = server.requests
    assert first.headers["authorization"] == "Bearer sk-test-agent-0001"
    assert first.body["messages"] == [{"role": "user", "content": "How dense is Oslo?"}]
    offered = {t["function"]["name"]: t for t in first.body["tools"]}
    assert sorted(offered) == ["area", "population"]
    assert offered["population"]["type"] == "function"
    function = offered["population"]["function"]
    assert function["description"].startswith("Population of a city.")
    assert function["parameters"]["properties"]["city"]["type"] == "string"
    assert function["parameters"]["required"] == ["city"]
    assert second.body["tools"] == first.body["tools"]
    assert second.body["messages"] == [
        {"role": "user", "content": "How dense is Oslo?"},
        {
            "role": "assistant",
            "content": "Let me look both up.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "population", "arguments": '{"city": "Oslo"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "area", "arguments": '{"city": "Oslo"}'},
                },
            ],
        },
        {"role": "tool", "content": "709000", "tool_call_id": "call_a"},
        {"role": "tool", "content": "454", "tool_call_id": "call_b"},
    ]


async def test_structured_output_asks_for_the_json_schema() -> None:
    schema = {
        "title": "plan steps",
        "type": "object",
        "properties": {"steps": {"type": "array", "items": {"type": "string"}}},
        "required": ["steps"],
    }
    with ChatServer([answer('{"steps": ["look up", "answer"]}')]) as server:
        model = client(server, temperature=0, extra_body={"seed": 7})
        response = await model.chat(HI, response_schema=schema, stop=["\nObservation:"])
    assert json.loads(response.message.content) == {"steps": ["look up", "answer"]}
    [seen] = server.bodies
    assert seen["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "plan_steps", "schema": schema},
    }
    assert (seen["stop"], seen["temperature"], seen["seed"]) == (["\nObservation:"], 0, 7)


def test_plan_and_execute_gets_its_plan_as_structured_output() -> None:
    script = [
        answer('{"steps": ["Find the population of Oslo", "Say it"]}'),
        calls(("population", {"city": "Oslo"}, "c1")),
        answer("Oslo has 709000 people."),
        answer("709000."),
    ]
    with ChatServer(script) as server:
        model = client(server)
        pe = PlanAndExecute(load_chat_planner(model), load_agent_executor(model, [population]))
        result = pe.run_sync("How many people live in Oslo?")
    assert result.output == "709000."
    plan_request = server.bodies[0]
    assert plan_request["response_format"]["type"] == "json_schema"
    assert plan_request["response_format"]["json_schema"]["schema"] == PLAN_SCHEMA
    assert "response_format" not in server.bodies[1]
    assert sorted(result.trace.children) == ["step_1", "step_2"]


# --- retries ---------------------------------------------------------------------------


def test_a_slow_answer_times_out_and_the_retry_succeeds() -> None:
    # 0.5 s is ample for an immediate answer on a loaded machine, and 2 s never in time.
    with ChatServer([answer("too late", delay=2.0), answer("in time")]) as server:
        response = client(server, timeout=0.5).chat_sync(HI)
    assert response.message.content == "in time"
    assert len(server.requests) == 2


def test_timeouts_on_every_attempt_give_a_clear_error() -> None:
    with (
        ChatServer([answer("late", delay=2.0), answer("late", delay=2.0)]) as server,
        pytest.raises(ModelError) as info,
    ):
        client(server, timeout=0.5, max_retries=1).chat_sync(HI)
    assert str(info.value) == (
        f"the model server at {server.url} did not answer within 0.5 s, 2 attempts; "
        "raise timeout= (a local model can take minutes to load and answer), "
        "or check that the server is not overloaded"
    )
    assert (info.value.status_code, info.value.attempts) == (None, 2)
    assert len(server.requests) == 2


def test_timeout_bounds_the_whole_answer_not_each_read() -> None:
    # One byte every 0.25 s: each read is well within the 1 s timeout, while the whole
    # answer (a few hundred bytes) would take over a minute.
    with ChatServer([answer("slow", trickle=0.25)]) as server:
        model = client(server, timeout=1, max_retries=0)
        started = time.monotonic()
        with pytest.raises(ModelError) as info:
            model.chat_sync(HI)
        waited = time.monotonic() - started
        # the client hung up on the trickling connection (it is not left open)
        assert server.wait_closed(*server.peers)
    assert waited < 5, f"the call ran {waited:.1f} s with timeout=1"
    assert str(info.value) == (
        f"the model server at {server.url} did not answer within 1 s, 1 attempt; "
        "raise timeout= (a local model can take minutes to load and answer), "
        "or check that the server is not overloaded"
    )
    assert (info.value.status_code, info.value.attempts) == (None, 1)


def test_a_trickling_answer_is_retried_after_its_deadline() -> None:
    script = [answer("slow", trickle=0.25), answer("in time")]
    with ChatServer(script) as server:
        model = client(server, timeout=1, max_retries=1)
        response = asyncio.run(model.chat(HI))
    assert response.message.content == "in time"
    assert len(server.requests) == 2
    assert server.peers[0] != server.peers[1]  # a new connection: the stalled one was dropped


def test_429_waits_as_long_as_retry_after_says() -> None:
    script = [error(429, "slow down", headers={"Retry-After": "1"}), answer("ok")]
    with ChatServer(script) as server:
        response = client(server).chat_sync(HI)
    assert response.message.content == "ok"
    first, second = server.requests
    assert second.t - first.t >= 0.95  # the client's own backoff (0.01 s) would be far shorter


def test_retry_after_is_capped_by_max_wait() -> None:
    script = [error(429, "come back in an hour", headers={"Retry-After": "3600"}), answer("ok")]
    with ChatServer(script) as server:
        response = client(server, max_wait=0.05).chat_sync(HI)
    assert response.message.content == "ok"
    first, second = server.requests
    assert second.t - first.t < 60


def test_retry_after_reads_seconds_dates_and_milliseconds() -> None:
    now = 1445412480.0  # 2015-10-21 07:28:00 UTC
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=now) == 10.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:27:00 GMT"}, now=now) == 0.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "-4"}) == 0.0
    assert retry_after({"retry-after": "later"}) is None
    assert retry_after({}) is None


def test_5xx_answers_are_retried_until_one_succeeds() -> None:
    script = [error(500, "boom"), error(503, "busy"), answer("fine now")]
    with ChatServer(script) as server:
        response = client(server, max_retries=2).chat_sync(HI)
    assert response.message.content == "fine now"
    assert len(server.requests) == 3


def test_5xx_answers_on_every_attempt_give_up_with_the_last_one() -> None:
    script = [error(500, "boom"), error(502, "bad gateway"), error(500, "boom again")]
    with ChatServer(script) as server, pytest.raises(ModelError) as info:
        client(server, max_retries=2).chat_sync(HI)
    assert str(info.value) == (
        f"the model server at {server.url} failed with HTTP 500, 3 attempts: boom again; "
        "the server is failing; check its logs, or try again later"
    )
    assert (info.value.status_code, info.value.attempts) == (500, 3)
    assert len(server.requests) == 3


def test_a_dropped_connection_is_retried() -> None:
    with ChatServer([Reply(drop=True), answer("reconnected")]) as server:
        response = client(server).chat_sync(HI)
    assert response.message.content == "reconnected"
    assert len(server.requests) == 2


def test_dropped_connections_on_every_attempt_say_so() -> None:
    with (
        ChatServer([Reply(drop=True), Reply(drop=True)]) as server,
        pytest.raises(ModelError) as info,
    ):
        client(server, max_retries=1).chat_sync(HI)
    assert str(info.value).startswith(
        f"the model server at {server.url} dropped the connection without an answer, 2 attempts:"
    )
    assert str(info.value).endswith("; the server may have crashed or restarted; check its logs")


def test_a_refused_connection_names_the_url_and_what_to_check() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = OpenAIChat("m", base_url=f"http://127.0.0.1:{port}/v1", api_key="", max_retries=0)
    with pytest.raises(ModelError) as info:
        model.chat_sync(HI)
    message = str(info.value)
    assert message.startswith(f"cannot connect to the model server at http://127.0.0.1:{port}/v1")
    assert message.endswith(
        "is the server running, and is the base URL right? set OPENAI_BASE_URL or pass base_url="
    )


# --- connections -------------------------------------------------------------------------


@contextmanager
def no_unclosed_warnings() -> Iterator[None]:
    """Fails if a socket, transport or event loop is left for the collector to close."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def asks(name: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=name)]


def test_calls_in_one_loop_share_a_connection_that_the_loops_shutdown_closes() -> None:
    with no_unclosed_warnings(), ChatServer([answer(str(i)) for i in range(5)]) as server:
        model = client(server)

        async def ask(n: int) -> list[str]:
            return [(await model.chat(HI)).message.content for _ in range(n)]

        assert asyncio.run(ask(3)) == ["0", "1", "2"]
        first = server.peers[0]
        assert server.peers == [first] * 3
        assert server.wait_closed(first)  # closed by the client as asyncio.run ended
        assert asyncio.run(ask(2)) == ["3", "4"]
        second = server.peers[3]
        assert server.peers[3:] == [second] * 2
        assert second != first
        assert server.wait_closed(second)
        assert server.opened == [first, second]


def test_chat_sync_from_sync_code_several_times_closes_each_connection() -> None:
    with no_unclosed_warnings(), ChatServer([answer("a"), answer("b"), answer("c")]) as server:
        model = client(server)
        assert [model.chat_sync(HI).message.content for _ in range(3)] == ["a", "b", "c"]
        assert len(set(server.peers)) == 3  # each on a loop of its own (run_sync)
        assert server.wait_closed(*server.peers)


async def test_chat_sync_inside_a_running_loop_closes_its_helper_loops_connection() -> None:
    with ChatServer([answer("a"), answer("b")]) as server:
        model = client(server)
        assert model.chat_sync(HI).message.content == "a"  # on a helper thread's loop
        assert model.chat_sync(HI).message.content == "b"
        assert len(set(server.peers)) == 2
        assert server.wait_closed(*server.peers)


def test_an_agent_run_makes_all_its_model_calls_over_one_connection() -> None:
    script = [calls(("population", {"city": "Oslo"}, "c1")), answer("709000")]
    with no_unclosed_warnings(), ChatServer(script) as server:
        result = Agent(client(server), [population]).run_sync("How many live in Oslo?")
        assert result.output == "709000"
        [peer] = set(server.peers)
        assert server.wait_closed(peer)


async def test_async_with_and_aclose_close_the_client_and_a_later_call_opens_a_new_one() -> None:
    with ChatServer([answer(str(i)) for i in range(4)]) as server:
        async with client(server) as model:
            await model.chat(HI)
            await model.chat(HI)
            [peer] = set(server.peers)
            assert server.open_connections() == [peer]
        assert await asyncio.to_thread(server.wait_closed, peer)
        assert (await model.chat(HI)).message.content == "2"
        later = server.peers[-1]
        assert later != peer
        assert server.open_connections() == [later]
        await model.aclose()
        assert await asyncio.to_thread(server.wait_closed, later)
        await model.aclose()  # nothing open: nothing to do
        assert (await model.chat(HI)).message.content == "3"  # and it still works after
        await model.aclose()
        assert await asyncio.to_thread(server.wait_closed, *server.peers)


def test_two_threads_with_their_own_loops_each_get_their_own_connection() -> None:
    both_connected = threading.Barrier(2, timeout=10)
    with no_unclosed_warnings(), ChatServer([answer("x")] * 4) as server:
        model = client(server)

        async def twice(name: str) -> None:
            await model.chat(asks(name))
            await asyncio.to_thread(both_connected.wait)  # both loops hold a client now
            await model.chat(asks(name))

        with ThreadPoolExecutor(2) as pool:
            for done in [pool.submit(asyncio.run, twice(name)) for name in ("a", "b")]:
                done.result()
        by_thread: dict[str, set[tuple[str, int]]] = {}
        for seen in server.requests:
            by_thread.setdefault(seen.body["messages"][0]["content"], set()).add(seen.peer)
        [a], [b] = by_thread["a"], by_thread["b"]
        assert a != b
        assert server.wait_closed(a, b)


def test_a_loop_closed_without_shutting_down_is_not_kept_alive_by_the_model() -> None:
    with ChatServer([answer("a"), answer("b")]) as server:
        model = client(server)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(model.chat(HI))
        loop.close()  # no shutdown_asyncgens(): this loop's client can no longer be closed
        gone = weakref.ref(loop)
        del loop
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # the abandoned socket's
            assert asyncio.run(model.chat(HI)).message.content == "b"
            gc.collect()
        assert gone() is None
        assert server.wait_closed(*server.peers)


def test_a_retry_goes_over_the_kept_connection_unless_it_was_dropped() -> None:
    script = [error(503, "busy"), answer("one"), Reply(drop=True), answer("two")]
    with no_unclosed_warnings(), ChatServer(script) as server:
        model = client(server)

        async def ask() -> list[str]:
            return [(await model.chat(HI)).message.content for _ in range(2)]

        assert asyncio.run(ask()) == ["one", "two"]
        kept, _, _, fresh = server.peers
        assert server.peers[:3] == [kept] * 3  # the 503, its retry and the next call
        assert fresh != kept  # the retry after the drop
        assert server.wait_closed(kept, fresh)


# --- errors that are not retried ---------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "key", "cls", "expected"),
    [
        (
            401,
            "sk-wrong-key-0001",
            ModelAuthError,
            "{where} refused the API key (HTTP 401): Incorrect API key provided: sk-wr***01; "
            "check OPENAI_API_KEY (or api_key=): it must be a valid key for this server",
        ),
        (
            401,
            "",
            ModelAuthError,
            "{where} needs an API key (HTTP 401) and none was sent: Incorrect API key "
            "provided: sk-wr***01; set OPENAI_API_KEY or pass api_key=",
        ),
        (
            404,
            "",
            ModelNotFound,
            "{where} has no model 'test-model', or no chat completions endpoint (HTTP 404): "
            "Incorrect API key provided: sk-wr***01; check the model name (PLANLOOP_MODEL or "
            "model=; with Ollama, `ollama pull` it first) and that the base URL is the "
            "server's OpenAI-compatible root, usually ending in /v1",
        ),
        (
            400,
            "",
            ModelError,
            "{where} rejected the request for model 'test-model' (HTTP 400): Incorrect API "
            "key provided: sk-wr***01",
        ),
    ],
)
def test_client_errors_fail_at_once_and_say_how_to_fix_them(
    status: int, key: str, cls: type[ModelError], expected: str
) -> None:
    with (
        ChatServer([error(status, "Incorrect API key provided: sk-wr***01")]) as server,
        pytest.raises(ModelError) as info,
    ):
        client(server, api_key=key).chat_sync(HI)
    assert type(info.value) is cls
    assert str(info.value) == expected.format(where=f"the model server at {server.url}")
    assert info.value.status_code == status
    assert len(server.requests) == 1


def test_the_servers_words_are_read_from_each_servers_error_shape() -> None:
    script = [
        Reply({"detail": "max_tokens is too large"}, status=400),  # vLLM
        Reply({"error": "model 'x' not found"}, status=400),  # Ollama, llama.cpp
        Reply("<h1>Bad   Request</h1>", status=400),
    ]
    said = []
    with ChatServer(script) as server:
        for _ in script:
            with pytest.raises(ModelError) as info:
                client(server).chat_sync(HI)
            said.append(str(info.value).split("(HTTP 400): ")[1])
    assert said == ["max_tokens is too large", "model 'x' not found", "<h1>Bad Request</h1>"]


# --- answers that are not chat completions -----------------------------------------------


def test_a_body_that_is_not_json_says_so_and_stops_the_run() -> None:
    with (
        ChatServer([Reply("<html>proxy login</html>")]) as server,
        pytest.raises(PlannerFailed) as info,
    ):
        Agent(client(server), [population]).run_sync("hi")
    cause = info.value.__cause__
    assert isinstance(cause, ModelError)
    assert str(cause) == (
        f"the model server at {server.url} answered HTTP 200 with a body that is not JSON: "
        "'<html>proxy login</html>'; check that the base URL is the server's "
        "OpenAI-compatible API root (usually ending in /v1)"
    )
    assert str(info.value) == f"the planner raised ModelError: {cause}"


def test_an_answer_without_choices_says_so() -> None:
    with (
        ChatServer([Reply({"object": "chat.completion", "choices": []})]) as server,
        pytest.raises(ModelError) as info,
    ):
        client(server).chat_sync(HI)
    assert str(info.value) == (
        f"the model server at {server.url} answered without a chat completion "
        '(no choices[0].message): {"object": "chat.completion", "choices": []}; check that '
        "the base URL is the server's OpenAI-compatible API root and that the model "
        "supports chat"
    )


BAD_ARGS = '{"city": "Oslo"'


def test_tool_arguments_that_are_not_json_are_a_parse_error_naming_the_tool() -> None:
    with (
        ChatServer([calls(("population", BAD_ARGS, "call_1"))]) as server,
        pytest.raises(ParsingFailed) as info,
    ):
        Agent(client(server), [population]).run_sync("How many live in Oslo?")
    assert str(info.value.__cause__) == (
        "model 'test-model' made tool calls that cannot be read: tool 'population': "
        "arguments are not valid JSON (Expecting ',' delimiter: line 1 column 16 (char 15)): "
        '{"city": "Oslo"'
    )


def test_with_handle_parsing_errors_the_model_repairs_its_tool_call() -> None:
    script = [
        calls(("population", BAD_ARGS, "call_1"), ("area", {"city": "Oslo"}, "call_2")),
        calls(("population", {"city": "Oslo"}, "call_3")),
        answer("709000"),
    ]
    with ChatServer(script) as server:
        agent = Agent(client(server), [population, area], handle_parsing_errors=True)
        result = agent.run_sync("How many live in Oslo?")
    assert result.output == "709000"
    check_trace(result.trace)
    errors = [e.error for e in result.trace.events if isinstance(e, ModelCalled)]
    assert errors[0] is not None and "tool 'population'" in errors[0]
    assert errors[1:] == [None, None]
    repair = server.bodies[1]["messages"]
    assert repair == [
        {"role": "user", "content": "How many live in Oslo?"},
        {
            "role": "assistant",
            "content": 'population({"city": "Oslo")\narea({"city": "Oslo"})',
        },
        {
            "role": "user",
            "content": "These tool calls could not be read:\n- tool 'population': arguments "
            "are not valid JSON (Expecting ',' delimiter: line 1 column 16 (char 15)): "
            '{"city": "Oslo"\nCall the tools again, each with its arguments as one JSON object.',
        },
    ]


def test_tool_arguments_cut_off_at_the_token_limit_say_so() -> None:
    reply = calls(("population", '{"city": "Os', "c1"))
    reply.body["choices"][0]["finish_reason"] = "length"
    with ChatServer([reply]) as server, pytest.raises(OutputParserError) as info:
        client(server).chat_sync(HI)
    assert str(info.value) == (
        "model 'test-model' made tool calls that cannot be read: tool 'population': arguments "
        "are not valid JSON (Unterminated string starting at: line 1 column 10 (char 9)): "
        '{"city": "Os; the answer was cut off at the token limit (finish_reason \'length\')'
    )
    assert info.value.observation is not None
    assert "- the answer was cut off at the token limit" in info.value.observation


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [("", {}), (None, {}), ({"city": "Oslo"}, {"city": "Oslo"}), ('{"city": "Bergen"}', None)],
)
def test_tool_arguments_in_each_shape_servers_send(arguments: Any, expected: Any) -> None:
    reply = calls(("population", "{}", "c1"))
    reply.body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = arguments
    with ChatServer([reply]) as server:
        [call] = client(server).chat_sync(HI).message.tool_calls
    assert call.args == (expected if expected is not None else {"city": "Bergen"})
    assert call.id == "c1"


def test_tool_arguments_that_are_json_but_not_an_object_are_a_parse_error() -> None:
    with (
        ChatServer([calls(("population", '["Oslo"]', "c1"))]) as server,
        pytest.raises(OutputParserError) as info,
    ):
        client(server).chat_sync(HI)
    assert str(info.value).endswith(
        "tool 'population': arguments are JSON but not an object: [\"Oslo\"]"
    )
    assert info.value.llm_output == 'population(["Oslo"])'


# --- secrets and configuration ---------------------------------------------------------


def test_the_api_key_never_reaches_the_store_or_the_diagram(tmp_path: Path) -> None:
    key = "sk-test-never-stored-7f3a"

    @tool
    def echo(text: str) -> str:
        """Say it back."""
        return f"you said {text}"

    script = [calls(("echo", {"text": f"my key is {key}"}, "c1")), answer(f"the key is {key}")]
    with ChatServer(script) as server:
        model = client(server, api_key=key)
        store = SQLiteStore(tmp_path / "runs.db")
        result = Agent(model, [echo], store=store, diagram_dir=tmp_path).run_sync("leak it")
        store.close()
    assert server.requests[0].headers["authorization"] == f"Bearer {key}"
    assert key in result.output  # the run itself is not censored; what it leaves behind is
    assert key not in repr(model)
    assert "[redacted]" in repr(model)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert f"{result.run_id}.svg" in written and "runs.db" in written
    for path in tmp_path.iterdir():
        assert key.encode() not in path.read_bytes(), path.name
    assert "[redacted]" in (tmp_path / f"{result.run_id}.svg").read_text()


def test_from_env_is_none_until_a_model_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert from_env() is None
    with pytest.raises(DefinitionError) as info:
        OpenAIChat.from_env()
    assert str(info.value) == NO_MODEL
    monkeypatch.setenv("PLANLOOP_MODEL", "llama3.2")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1/")
    monkeypatch.setenv("OPENAI_API_KEY", "ollama-env-key-0001")
    model = from_env()
    assert model is not None
    assert (model.name, model.base_url) == ("llama3.2", "http://localhost:11434/v1")
    assert repr(model) == (
        "OpenAIChat(model='llama3.2', base_url='http://localhost:11434/v1', api_key='[redacted]')"
    )
    assert "ollama-env-key-0001" in default_redactor().values
    other = OpenAIChat.from_env(model="qwen2.5", base_url="http://localhost:8000/v1")
    assert (other.name, other.base_url) == ("qwen2.5", "http://localhost:8000/v1")


def test_without_a_base_url_the_client_goes_to_openai() -> None:
    assert OpenAIChat("gpt-4o-mini", api_key="").base_url == "https://api.openai.com/v1"


def test_invalid_options_are_all_listed() -> None:
    with pytest.raises(DefinitionError) as info:
        OpenAIChat("", base_url="localhost:11434", timeout=0, max_retries=-1, backoff=-1)
    assert str(info.value) == (
        "invalid OpenAIChat options: model=''; give the model's name, e.g. 'gpt-4o-mini'; "
        "base_url='localhost:11434'; it must start with http:// or https://, e.g. "
        "'http://localhost:11434/v1'; timeout=0; use seconds > 0; max_retries=-1; use a "
        "whole number >= 0; backoff=-1; use seconds >= 0"
    )


def test_the_usage_of_a_call_whose_tool_calls_cannot_be_read_is_recorded() -> None:
    script = [calls(("population", BAD_ARGS, "call_1"), usage=(30, 9)), answer("709000")]
    with ChatServer(script) as server:
        agent = Agent(client(server), [population], handle_parsing_errors=True, max_tokens=1000)
        result = agent.run_sync("How many live in Oslo?")
    called = [e for e in result.trace.events if isinstance(e, ModelCalled)]
    assert [c.usage for c in called] == [
        Usage(input_tokens=30, output_tokens=9),
        Usage(input_tokens=10, output_tokens=5),
    ]
    assert called[0].error is not None and "tool 'population'" in called[0].error
    check_trace(result.trace)


def test_the_parse_error_carries_the_usage_of_its_call() -> None:
    from planloop.errors import OutputParserError

    with (
        ChatServer([calls(("population", BAD_ARGS, "call_1"), usage=(7, 2))]) as server,
        pytest.raises(OutputParserError) as info,
    ):
        client(server).chat_sync(HI)
    assert info.value.usage == Usage(input_tokens=7, output_tokens=2)
