"""planloop.compat.langchain.AgentExecutor against langchain_classic's, same agents and scripts.

Each test builds the same agent, scripted model and tools twice, runs them
through LangChain's ``AgentExecutor`` and through ours, and compares outputs,
intermediate steps, stream chunks and callback events exactly (async
multi-action runs, whose tools run concurrently, by their events as a multiset).
Then what only ours has: the planloop trace of each run, and its diagram.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)

from langchain_classic.agents import AgentExecutor as LCExecutor  # noqa: E402
from langchain_classic.agents import AgentExecutorIterator as LCIterator  # noqa: E402
from langchain_classic.agents import (  # noqa: E402
    StructuredChatAgent,
    ZeroShotAgent,
    create_react_agent,
    create_tool_calling_agent,
)
from langchain_classic.memory import ConversationBufferMemory  # noqa: E402
from langchain_core.agents import AgentAction, AgentFinish  # noqa: E402
from langchain_core.exceptions import OutputParserException  # noqa: E402
from langchain_core.language_models import FakeListLLM  # noqa: E402
from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.prompts import (  # noqa: E402
    ChatPromptTemplate,
    MessagesPlaceholder,
    PromptTemplate,
)
from langchain_core.runnables import RunnableLambda  # noqa: E402
from langchain_core.tools import BaseTool, StructuredTool, ToolException, tool  # noqa: E402

from planloop.compat.langchain import AgentExecutor, AgentExecutorIterator  # noqa: E402
from planloop.engine.states import StopReason  # noqa: E402
from planloop.engine.trace import Trace  # noqa: E402
from tests.compat._lc_helpers import (  # noqa: E402
    Recorder,
    ScriptedMultiAgent,
    ScriptedSingleAgent,
    ToolCallingFakeModel,
    kinds,
    norm,
)

# --- tools --------------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def echo(text: str) -> str:
    """Say it back."""
    return f"echo:{text}"


@tool
def slow(text: str) -> str:
    """Take a while."""
    time.sleep(0.3)
    return f"slow:{text}"


@tool(return_direct=True)
def shout(text: str) -> str:
    """Answer loudly and end the run."""
    return text.upper()


def _broken(text: str) -> str:
    raise ToolException(f"broken on {text}")


def _crash(text: str) -> str:
    raise KeyError(f"crashed on {text}")


def broken() -> BaseTool:
    return tool("broken", description="Always fails.")(_broken).model_copy(
        update={"handle_tool_error": True}
    )


def crash() -> BaseTool:
    return tool("crash", description="Raises.")(_crash)


TOOLS: list[BaseTool] = [add, echo, shout]
SINGLE: list[BaseTool] = [echo, shout]

# --- agents -------------------------------------------------------------------


def scripted(*decisions: Any) -> RunnableLambda[Any, Any]:
    """A bare runnable agent: decision number ``len(intermediate_steps)``."""

    def decide(inputs: dict[str, Any]) -> Any:
        d = decisions[min(len(inputs["intermediate_steps"]), len(decisions) - 1)]
        if isinstance(d, Exception):
            raise d
        return d

    return RunnableLambda(decide)


def act(tool_name: str, tool_input: Any, log: str = "") -> AgentAction:
    return AgentAction(tool_name, tool_input, log or f"use {tool_name}")


def done(text: str) -> AgentFinish:
    return AgentFinish({"output": text}, f"final: {text}")


REACT_ECHO = "Thought: t\nAction: echo\nAction Input: hi"
REACT_PROMPT = PromptTemplate.from_template(
    "Tools: {tools}\nNames: {tool_names}\nQuestion: {input}\n{agent_scratchpad}"
)


def react(responses: list[str], tools: list[BaseTool] = TOOLS) -> Any:
    return create_react_agent(FakeListLLM(responses=responses), tools, REACT_PROMPT)


TOOL_PROMPT = ChatPromptTemplate.from_messages(
    [("human", "{input}"), MessagesPlaceholder("agent_scratchpad")]
)


def tool_calling(messages: list[AIMessage], tools: list[BaseTool] = TOOLS) -> Any:
    return create_tool_calling_agent(ToolCallingFakeModel(responses=messages), tools, TOOL_PROMPT)


def calls(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[{"name": n, "args": a, "id": f"call_{i}"} for i, (n, a) in enumerate(calls)],
    )


# --- running both -------------------------------------------------------------

Make = Callable[[type[Any]], Any]


def run_both(
    make: Make, call: Callable[[Any, dict[str, Any]], Any]
) -> tuple[tuple[Any, Recorder, Any], tuple[Any, Recorder, Any]]:
    """``call(executor, config)`` with LangChain's executor, then with ours."""
    out = []
    for cls in (LCExecutor, AgentExecutor):
        recorder = Recorder()
        executor = make(cls)
        try:
            result: Any = call(executor, {"callbacks": [recorder]})
        except Exception as exc:  # noqa: BLE001 - the same error is part of the contract
            result = ("raised", type(exc).__name__, str(exc))
        out.append((norm(result), recorder, executor))
    return out[0], out[1]


def invoke(ex: Any, config: dict[str, Any]) -> Any:
    return ex.invoke({"input": "question"}, config)


def stream(ex: Any, config: dict[str, Any]) -> Any:
    return list(ex.stream({"input": "question"}, config))


def ainvoke(ex: Any, config: dict[str, Any]) -> Any:
    return asyncio.run(ex.ainvoke({"input": "question"}, config))


def astream(ex: Any, config: dict[str, Any]) -> Any:
    async def go() -> list[Any]:
        return [c async for c in ex.astream({"input": "question"}, config)]

    return asyncio.run(go())


def iterate(ex: Any, config: dict[str, Any]) -> Any:
    it = ex.iter({"input": "question"}, callbacks=config["callbacks"])
    out = []
    for chunk in it:
        out.append((chunk, it.iterations, len(it.intermediate_steps)))
    return out


SYNC = [invoke, stream, iterate]
ASYNC = [ainvoke, astream]


def assert_same(make: Make, call: Callable[[Any, dict[str, Any]], Any], *, ordered: bool = True):
    (theirs, their_rec, _), (ours, our_rec, executor) = run_both(make, call)
    assert ours == theirs
    if ordered:
        assert our_rec.events == their_rec.events
    else:
        assert Counter(e[:2] for e in our_rec.events) == Counter(e[:2] for e in their_rec.events)
    assert our_rec.texts == their_rec.texts
    assert kinds(our_rec).count("chain_start") == kinds(their_rec).count("chain_start")
    return ours, our_rec, executor


# --- scenarios ----------------------------------------------------------------

SCENARIOS: dict[str, Make] = {
    "answer at once": lambda cls: cls(agent=scripted(done("hi")), tools=TOOLS),
    "one tool then answer": lambda cls: cls(
        agent=scripted(act("add", {"a": 1, "b": 2}), done("3")),
        tools=TOOLS,
        return_intermediate_steps=True,
    ),
    "unknown tool": lambda cls: cls(
        agent=scripted(act("nope", "x"), done("ok")), tools=TOOLS, return_intermediate_steps=True
    ),
    "tool error handled": lambda cls: cls(
        agent=scripted(act("broken", "x"), done("ok")),
        tools=[*TOOLS, broken()],
        return_intermediate_steps=True,
    ),
    "tool raises": lambda cls: cls(agent=scripted(act("crash", "x"), done("ok")), tools=[crash()]),
    "return_direct": lambda cls: cls(
        agent=scripted(act("shout", "loud"), done("never")),
        tools=TOOLS,
        return_intermediate_steps=True,
    ),
    "max_iterations force": lambda cls: cls(
        agent=scripted(act("echo", "again")), tools=TOOLS, max_iterations=3
    ),
    "max_iterations None": lambda cls: cls(
        agent=scripted(act("echo", "a"), act("echo", "b"), done("end")),
        tools=TOOLS,
        max_iterations=None,
    ),
    "max_iterations 0": lambda cls: cls(agent=scripted(done("x")), tools=TOOLS, max_iterations=0),
    "generate unsupported": lambda cls: cls(
        agent=scripted(act("echo", "again")),
        tools=TOOLS,
        max_iterations=1,
        early_stopping_method="generate",
    ),
    "generate (ZeroShotAgent)": lambda cls: cls(
        agent=ZeroShotAgent.from_llm_and_tools(
            FakeListLLM(
                responses=["Thought: t\nAction: echo\nAction Input: hi"] * 2
                + ["Final Answer: gave up"]
            ),
            SINGLE,
        ),
        tools=SINGLE,
        max_iterations=2,
        early_stopping_method="generate",
        return_intermediate_steps=True,
    ),
    "react": lambda cls: cls(
        agent=react(["Thought: t\nAction: echo\nAction Input: hi", "Final Answer: said hi"]),
        tools=TOOLS,
        return_intermediate_steps=True,
    ),
    "react parse error True": lambda cls: cls(
        agent=react(["mumble", "Final Answer: fine"]),
        tools=TOOLS,
        handle_parsing_errors=True,
        return_intermediate_steps=True,
    ),
    "react parse error str": lambda cls: cls(
        agent=react(["mumble", "Final Answer: fine"]),
        tools=TOOLS,
        handle_parsing_errors="Try again, with an Action.",
        return_intermediate_steps=True,
    ),
    "react parse error callable": lambda cls: cls(
        agent=react(["mumble", "Final Answer: fine"]),
        tools=TOOLS,
        handle_parsing_errors=lambda e: f"bad: {str(e)[:20]}",
        return_intermediate_steps=True,
    ),
    "react parse error False": lambda cls: cls(
        agent=react(["mumble", "Final Answer: fine"]), tools=TOOLS
    ),
    "parse error not sent to llm": lambda cls: cls(
        agent=scripted(OutputParserException("unreadable"), done("x")),
        tools=TOOLS,
        handle_parsing_errors=True,
        return_intermediate_steps=True,
    ),
    "tool calling, two calls in one step": lambda cls: cls(
        agent=tool_calling(
            [calls(("add", {"a": 2, "b": 3}), ("echo", {"text": "hey"})), AIMessage("both done")]
        ),
        tools=TOOLS,
        return_intermediate_steps=True,
    ),
    "multi-action agent": lambda cls: cls(
        agent=ScriptedMultiAgent(
            script=[[act("echo", "a"), act("echo", "b"), act("add", {"a": 1, "b": 1})], done("3")]
        ),
        tools=TOOLS,
        return_intermediate_steps=True,
    ),
    "single-action agent": lambda cls: cls(
        agent=ScriptedSingleAgent(script=[act("echo", "a"), act("echo", "b"), done("two")]),
        tools=TOOLS,
        return_intermediate_steps=True,
    ),
    "structured chat agent": lambda cls: cls.from_agent_and_tools(
        agent=StructuredChatAgent.from_llm_and_tools(
            FakeListLLM(
                responses=[
                    'Action:\n```\n{"action": "echo", "action_input": {"text": "yo"}}\n```',
                    'Action:\n```\n{"action": "Final Answer", "action_input": "yo back"}\n```',
                ]
            ),
            TOOLS,
        ),
        tools=TOOLS,
        verbose=False,
        return_intermediate_steps=True,
    ),
}

MULTI = {"tool calling, two calls in one step", "multi-action agent"}


@pytest.mark.parametrize("call", SYNC, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sync_side_matches_langchain(name: str, call: Any) -> None:
    assert_same(SCENARIOS[name], call)


@pytest.mark.parametrize("call", ASYNC, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_async_side_matches_langchain(name: str, call: Any) -> None:
    assert_same(SCENARIOS[name], call, ordered=name not in MULTI)


# --- the details behind the scenarios ------------------------------------------


def test_outputs_and_texts_are_langchains() -> None:
    ours, _, _ = assert_same(SCENARIOS["unknown tool"], invoke)
    assert ours["intermediate_steps"][0][1] == (
        "nope is not a valid tool, try one of [add, echo, shout]."
    )
    ours, _, _ = assert_same(SCENARIOS["max_iterations force"], invoke)
    assert ours["output"] == "Agent stopped due to iteration limit or time limit."
    ours, _, _ = assert_same(SCENARIOS["react parse error False"], invoke)
    assert ours[:2] == ["raised", "ValueError"]
    assert "pass `handle_parsing_errors=True`" in ours[2]
    ours, _, _ = assert_same(SCENARIOS["tool raises"], invoke)
    assert ours == ["raised", "KeyError", "'crashed on x'"]
    ours, _, _ = assert_same(SCENARIOS["return_direct"], invoke)
    assert ours["output"] == "LOUD"
    ours, _, _ = assert_same(SCENARIOS["generate (ZeroShotAgent)"], invoke)
    assert ours["output"] == "gave up"
    ours, _, _ = assert_same(SCENARIOS["parse error not sent to llm"], invoke)
    assert ours["intermediate_steps"][0][1] == "Invalid or incomplete response"


def test_stream_gives_all_actions_of_a_step_before_its_observations() -> None:
    ours, _, _ = assert_same(SCENARIOS["multi-action agent"], stream)
    keys = [sorted(k for k in chunk if k != "messages") for chunk in ours]
    assert keys == [["actions"]] * 3 + [["steps"]] * 3 + [["intermediate_steps", "output"]]
    assert all("messages" in chunk for chunk in ours)


def test_callbacks_one_chain_run_agent_action_before_each_tool_one_finish() -> None:
    _, rec, _ = assert_same(SCENARIOS["multi-action agent"], invoke)
    events = kinds(rec)
    assert events.count("chain_start") == 1
    assert events.count("agent_finish") == 1
    assert events.count("text") == 0
    tool_runs = [i for i, e in enumerate(events) if e == "tool_start"]
    assert len(tool_runs) == 3
    assert all(events[i - 1] == "agent_action" for i in tool_runs)
    top = rec.events[0]
    assert top[:2] == ("chain_start", "AgentExecutor") and top[3] is None
    assert all(e[3] == top[2] for e in rec.events if e[0] == "tool_start")


def test_run_id_is_taken_from_config_and_names_the_trace() -> None:
    for call in (invoke, stream):
        run_id = uuid.uuid4()

        def with_id(
            ex: Any, config: dict[str, Any], run_id: uuid.UUID = run_id, call: Any = call
        ) -> Any:
            return call(ex, {**config, "run_id": run_id})

        (_, their_rec, _), (_, our_rec, executor) = run_both(SCENARIOS["answer at once"], with_id)
        assert their_rec.run_ids[0] == our_rec.run_ids[0] == run_id
        assert executor.last_trace.run_id == str(run_id)


def test_trim_intermediate_steps_int_and_callable() -> None:
    script = [act("echo", "a"), act("echo", "b"), act("echo", "c"), done("x")]
    for trim in (2, lambda steps: steps[:1]):
        seen = []
        for cls in (LCExecutor, AgentExecutor):
            agent = ScriptedSingleAgent(script=script)
            ex = cls(agent=agent, tools=TOOLS, trim_intermediate_steps=trim)
            out = ex.invoke({"input": "q"})
            seen.append((out, agent.seen))
        assert seen[0] == seen[1]
        assert seen[1][1] == ([0, 1, 2, 2] if trim == 2 else [0, 1, 1, 1])


def test_max_execution_time_sync_waits_for_the_slow_step_like_langchain() -> None:
    def make(cls: type[Any]) -> Any:
        return cls(
            agent=scripted(act("slow", "a"), act("slow", "b"), done("x")),
            tools=[slow],
            max_execution_time=0.1,
            return_intermediate_steps=True,
        )

    ours, _, _ = assert_same(make, invoke)
    assert ours["output"] == "Agent stopped due to iteration limit or time limit."
    assert [s[1] for s in ours["intermediate_steps"]] == ["slow:a"]


def test_max_execution_time_async_is_a_hard_deadline_like_langchain() -> None:
    def make(cls: type[Any]) -> Any:
        return cls(
            agent=scripted(act("slow", "a"), done("x")),
            tools=[slow],
            max_execution_time=0.1,
            return_intermediate_steps=True,
        )

    (theirs, _, _), (ours, _, executor) = run_both(make, ainvoke)
    assert ours == theirs
    assert ours["output"] == "Agent stopped due to iteration limit or time limit."
    assert ours["intermediate_steps"] == []
    assert executor.last_trace.ended.stop_reason is StopReason.max_execution_time


def test_memory_is_loaded_and_saved_like_langchain() -> None:
    def make(cls: type[Any]) -> Any:
        return cls(
            agent=RunnableLambda(lambda i: done(f"seen {len(i['chat_history'])}")),
            tools=TOOLS,
            memory=ConversationBufferMemory(memory_key="chat_history", return_messages=True),
        )

    def twice(ex: Any, config: dict[str, Any]) -> Any:
        first = ex.invoke({"input": "one"}, config)
        second = ex.invoke({"input": "two"}, config)
        return first, second, ex.memory.load_memory_variables({})

    (theirs, _, _), (ours, _, _) = run_both(make, twice)
    assert ours == theirs
    assert ours[1]["output"] == "seen 2"


def test_batch_and_legacy_entry_points() -> None:
    def make(cls: type[Any]) -> Any:
        script = [lambda steps: done(str(steps[-1][1])) if steps else act("add", {"a": 1, "b": 2})]
        return cls(agent=ScriptedSingleAgent(script=script), tools=TOOLS)

    def legacy(ex: Any, config: dict[str, Any]) -> Any:
        return [
            ex.batch([{"input": "a"}, {"input": "b"}], config),
            ex.run("plain", callbacks=config["callbacks"]),
            ex({"input": "called"}, callbacks=config["callbacks"]),
            asyncio.run(ex.arun("plain async", callbacks=config["callbacks"])),
            asyncio.run(ex.acall({"input": "acalled"}, callbacks=config["callbacks"])),
        ]

    (theirs, their_rec, _), (ours, our_rec, _) = run_both(make, legacy)
    assert ours == theirs
    assert Counter(kinds(our_rec)) == Counter(kinds(their_rec))
    assert ours[1] == "3"


def test_astream_log_matches_langchain() -> None:
    def log(ex: Any, config: dict[str, Any]) -> Any:
        async def go() -> list[Any]:
            ops = []
            async for patch in ex.astream_log({"input": "q"}, config):
                ops.extend((op["op"], op["path"]) for op in patch.ops)
            return ops

        return asyncio.run(go())

    (theirs, _, _), (ours, _, _) = run_both(SCENARIOS["one tool then answer"], log)
    assert ours == theirs
    assert ["add", "/streamed_output/-"] in ours


def test_iterator_properties_and_reset() -> None:
    make = SCENARIOS["single-action agent"]
    states = []
    for cls in (LCExecutor, AgentExecutor):
        ex = make(cls)
        it = ex.iter({"input": "q"})
        assert isinstance(it, LCIterator)
        seen = []
        for chunk in it:
            seen.append((norm(chunk), it.iterations, norm(it.intermediate_steps)))
            assert it.time_elapsed >= 0.0
        it.reset()
        states.append((seen, it.iterations, it.intermediate_steps, it.time_elapsed))
    assert states[0] == states[1]
    assert [s[1] for s in states[1][0]] == [1, 2, 3]
    assert isinstance(ex.iter({"input": "q"}), AgentExecutorIterator)


def test_stopping_a_sync_stream_stops_the_run() -> None:
    ran: list[str] = []

    @tool
    def note(text: str) -> str:
        """Note it."""
        ran.append(text)
        return text

    for cls in (LCExecutor, AgentExecutor):
        ran.clear()
        rec = Recorder()
        ex = cls(agent=scripted(act("note", "a"), act("note", "b"), done("x")), tools=[note])
        stream = ex.stream({"input": "q"}, {"callbacks": [rec]})
        assert "actions" in next(stream)
        assert ran == []  # nothing runs until the next chunk is asked for
        assert "steps" in next(stream)
        stream.close()
        assert ran == ["a"]
        assert kinds(rec)[-1] == "chain_error"


# --- what only ours has: the trace ----------------------------------------------


def test_last_trace_follows_the_run() -> None:
    ex = SCENARIOS["multi-action agent"](AgentExecutor)
    assert ex.last_trace is None
    ex.invoke({"input": "q"})
    trace = ex.last_trace
    assert isinstance(trace, Trace)
    assert [str(s) for s in trace.states] == ["plan", "act", "observe", "plan", "finish"]
    finished = [e for e in trace.events if e.kind == "step_finished"]
    assert [(e.result.step_id, e.result.output) for e in finished] == [
        ("echo", "echo:a"),
        ("echo#2", "echo:b"),
        ("add", 2),
    ]
    assert trace.ended.output == {"output": "3"}


def test_trace_of_a_stopped_and_a_failed_run() -> None:
    ex = SCENARIOS["max_iterations force"](AgentExecutor)
    ex.invoke({"input": "q"})
    assert ex.last_trace.ended.stop_reason is StopReason.max_iterations
    assert ex.last_trace.ended.iterations == 3
    ex = SCENARIOS["tool raises"](AgentExecutor)
    with pytest.raises(KeyError):
        ex.invoke({"input": "q"})
    assert ex.last_trace.ended.stop_reason is StopReason.error
    ex = SCENARIOS["react parse error True"](AgentExecutor)
    ex.invoke({"input": "q"})
    assert [str(s) for s in ex.last_trace.states] == ["plan", "observe", "plan", "finish"]


def test_trace_renders_with_planloops_renderer() -> None:
    from planloop.visualize import to_dot, to_svg

    ex = SCENARIOS["tool calling, two calls in one step"](AgentExecutor)
    asyncio.run(ex.ainvoke({"input": "q"}))
    dot = to_dot(ex.last_trace)
    assert "add" in dot and "echo" in dot
    try:
        svg = to_svg(ex.last_trace)
    except Exception as exc:  # noqa: BLE001 - no graphviz on this machine
        pytest.skip(f"graphviz not available: {exc}")
    assert svg.lstrip().startswith(("<?xml", "<svg"))


def test_fields_and_defaults_are_langchains() -> None:
    assert issubclass(AgentExecutor, LCExecutor)
    ours = AgentExecutor.model_fields
    theirs = LCExecutor.model_fields
    assert ours.keys() == theirs.keys()
    assert {k: v.default for k, v in ours.items()} == {k: v.default for k, v in theirs.items()}
    ex = AgentExecutor.from_agent_and_tools(agent=scripted(done("x")), tools=TOOLS)
    assert isinstance(ex, AgentExecutor)
    assert ex.lookup_tool("add") is add
    with pytest.raises(ValueError, match="Saving not supported"):
        ex.save("x.json")


class _Peak:
    """How many calls of a tool ran at the same time, at most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1

    def tool(self) -> BaseTool:
        def nap(text: str) -> str:
            self.enter()
            time.sleep(0.05)
            self.leave()
            return text

        async def anap(text: str) -> str:
            self.enter()
            await asyncio.sleep(0.05)
            self.leave()
            return text

        return StructuredTool.from_function(
            nap, coroutine=anap, name="nap", description="Sleep a little."
        )


def test_actions_of_a_step_run_in_order_on_the_sync_side_and_together_on_the_async_side() -> None:
    def measure(call: Callable[[Any, dict[str, Any]], Any]) -> list[int]:
        peaks = []
        for cls in (LCExecutor, AgentExecutor):
            peak = _Peak()
            agent = ScriptedMultiAgent(script=[[act("nap", "a"), act("nap", "b")], done("x")])
            call(cls(agent=agent, tools=[peak.tool()]), {"callbacks": []})
            peaks.append(peak.peak)
        return peaks

    assert measure(invoke) == [1, 1]
    assert measure(ainvoke) == [2, 2]


def test_sync_calls_work_inside_a_running_event_loop() -> None:
    async def in_loop(ex: Any, config: dict[str, Any]) -> Any:
        return ex.invoke({"input": "q"}, config), list(ex.stream({"input": "q"}, config))

    (theirs, their_rec, _), (ours, our_rec, _) = run_both(
        SCENARIOS["one tool then answer"], lambda ex, config: asyncio.run(in_loop(ex, config))
    )
    assert ours == theirs
    assert our_rec.events == their_rec.events


@pytest.mark.parametrize("name", ["multi-action agent", "react parse error True", "return_direct"])
def test_traces_pass_planloops_invariant_checks(name: str) -> None:
    from planloop.testing import check_trace

    ex = SCENARIOS[name](AgentExecutor)
    ex.invoke({"input": "q"})
    check_trace(ex.last_trace)
    ex = SCENARIOS[name](AgentExecutor)  # LangChain's _return changes the script's finish
    asyncio.run(ex.ainvoke({"input": "q"}))
    check_trace(ex.last_trace)
