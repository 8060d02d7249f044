"""The sync side runs the agent, callbacks and tools on the caller's thread, as LangChain does.

Each scenario runs through LangChain's ``AgentExecutor`` and through ours: a
tool (and the agent) that reads a ``threading.local`` set by the caller sees
it, ``signal.signal`` works in a tool called from the main thread, a sync tool
may start an event loop of its own, and inside a running event loop (Jupyter)
the calls still happen on the caller's thread.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)

from langchain_classic.agents import AgentExecutor as LCExecutor  # noqa: E402
from langchain_core.agents import AgentAction, AgentFinish  # noqa: E402
from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402
from langchain_core.tools import BaseTool, tool  # noqa: E402

from planloop.compat.langchain import AgentExecutor  # noqa: E402

LOCAL = threading.local()


def _user() -> str:
    return getattr(LOCAL, "user", "<unset>")


@tool
def whoami(text: str) -> str:
    """The user the calling thread set, and whether it is the main thread."""
    return f"{_user()} main={threading.current_thread() is threading.main_thread()}"


@tool
def trap(text: str) -> str:
    """Installs a SIGUSR1 handler (only the main thread may)."""
    previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, previous)
    return "trapped"


@tool
def nested_loop(text: str) -> str:
    """Runs an event loop of its own, as a sync tool may when no loop is running."""

    async def twice() -> str:
        return text * 2

    return asyncio.run(twice())


class _Threads(BaseCallbackHandler):
    """The user each ``on_agent_action`` and ``on_tool_start`` callback sees."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def on_agent_action(self, action: AgentAction, **kw: Any) -> None:
        self.seen.append(("agent_action", _user()))

    def on_tool_start(self, serialized: Any, input_str: str, **kw: Any) -> None:
        self.seen.append(("tool_start", _user()))


def _agent(tool_name: str) -> RunnableLambda[Any, Any]:
    """Calls ``tool_name`` once, then answers with the agent's view of the user and the tool's."""

    def decide(inputs: dict[str, Any]) -> Any:
        steps = inputs["intermediate_steps"]
        if not steps:
            return AgentAction(tool_name, {"text": "x"}, "call")
        return AgentFinish({"output": f"agent={_user()} tool={steps[0][1]}"}, "done")

    return RunnableLambda(decide)


Call = Callable[[Any, list[Any]], Any]


def _invoke(ex: Any, callbacks: list[Any]) -> Any:
    return ex.invoke({"input": "q"}, {"callbacks": callbacks})["output"]


def _stream(ex: Any, callbacks: list[Any]) -> Any:
    chunks = ex.stream({"input": "q"}, {"callbacks": callbacks})
    return [c["output"] for c in chunks if "output" in c]


def _iterate(ex: Any, callbacks: list[Any]) -> Any:
    return [c["output"] for c in ex.iter({"input": "q"}, callbacks=callbacks) if "output" in c]


def _in_running_loop(ex: Any, callbacks: list[Any]) -> Any:
    async def inside() -> Any:
        return _invoke(ex, callbacks)

    return asyncio.run(inside())


LOCAL_OWNER = {LCExecutor: "langchain_classic", AgentExecutor: "planloop"}
"""What each executor's caller sets ``LOCAL.user`` to."""


def _both(tool_obj: BaseTool, call: Call) -> tuple[Any, Any]:
    """``call`` through LangChain's executor and ours, with ``LOCAL.user`` set by the caller."""
    out = []
    for cls in (LCExecutor, AgentExecutor):
        threads = _Threads()
        LOCAL.user = LOCAL_OWNER[cls]
        try:
            result = call(cls(agent=_agent(tool_obj.name), tools=[tool_obj]), [threads])
        finally:
            del LOCAL.user
        out.append((result, [(kind, user == LOCAL_OWNER[cls]) for kind, user in threads.seen]))
    return out[0], out[1]


@pytest.mark.parametrize("call", [_invoke, _stream, _iterate, _in_running_loop])
def test_a_thread_local_set_by_the_caller_is_seen_by_the_agent_callbacks_and_tools(
    call: Call,
) -> None:
    theirs, ours = _both(whoami, call)
    answer = ours[0] if isinstance(ours[0], str) else ours[0][-1]
    assert answer == "agent=planloop tool=planloop main=True"
    assert ours[1] == [("agent_action", True), ("tool_start", True)]
    their_answer = theirs[0] if isinstance(theirs[0], str) else theirs[0][-1]
    assert answer.replace("planloop", "langchain_classic") == their_answer
    assert ours[1] == theirs[1]


def test_signal_signal_works_in_a_tool_called_from_the_main_thread() -> None:
    theirs, ours = _both(trap, _invoke)
    assert ours[0] == "agent=planloop tool=trapped"
    assert theirs[0] == "agent=langchain_classic tool=trapped"


def test_a_sync_tool_may_run_an_event_loop_of_its_own() -> None:
    theirs, ours = _both(nested_loop, _invoke)
    assert ours[0] == "agent=planloop tool=xx"
    assert theirs[0] == "agent=langchain_classic tool=xx"


# --- PlanAndExecute -------------------------------------------------------------

_ANSWER = 'Action:\n```\n{{"action": "{tool}", "action_input": {input}}}\n```'


class _Seen(BaseCallbackHandler):
    """The user the planner's model call sees, and what ``whoami`` answered."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
        self.seen.append(f"planner {_user()}")

    def on_tool_end(self, output: Any, **kw: Any) -> None:
        self.seen.append(f"tool {output}")


@pytest.mark.parametrize("in_loop", [False, True], ids=["plain", "in a running loop"])
def test_plan_and_execute_calls_its_planner_and_steps_on_the_callers_thread(
    in_loop: bool,
) -> None:
    from langchain_core.language_models import FakeListChatModel, FakeListLLM
    from langchain_experimental import plan_and_execute as lcx

    import planloop.compat.langchain as ours

    seen = []
    for module, owner in ((lcx, "langchain_classic"), (ours, "planloop")):
        planner = module.load_chat_planner(FakeListChatModel(responses=["Plan:\n1. Ask\n"]))
        script = [
            _ANSWER.format(tool="whoami", input='{"text": "x"}'),
            _ANSWER.format(tool="Final Answer", input='"ok"'),
        ]
        executor = module.load_agent_executor(FakeListLLM(responses=script), [whoami])
        pe = module.PlanAndExecute(planner=planner, executor=executor)
        handler = _Seen()
        call = partial(pe.invoke, {"input": "who?"}, {"callbacks": [handler]})
        LOCAL.user = owner
        try:
            if in_loop:

                async def inside(call: Callable[[], Any] = call) -> Any:
                    return call()

                asyncio.run(inside())
            else:
                call()
        finally:
            del LOCAL.user
        seen.append([text.replace(owner, "<caller's>") for text in handler.seen])
    assert seen[1] == seen[0] == ["planner <caller's>", "tool <caller's> main=True"]
