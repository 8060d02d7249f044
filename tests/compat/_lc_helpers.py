"""Shared helpers for differential tests against LangChain: recorders, scripts, normalizers.

``Recorder`` keeps every callback event (with run ids turned into small
numbers in the order they appear, so two runs can be compared); ``norm`` turns
LangChain objects into plain data without the ids that differ between runs;
the scripted agents and models answer the same way on every fresh instance.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

warnings.filterwarnings("ignore", category=DeprecationWarning)

from langchain_classic.agents import (  # noqa: E402
    BaseMultiActionAgent,
    BaseSingleActionAgent,
)
from langchain_core.agents import AgentAction, AgentFinish, AgentStep  # noqa: E402
from langchain_core.callbacks import BaseCallbackHandler  # noqa: E402
from langchain_core.language_models import FakeMessagesListChatModel  # noqa: E402
from langchain_core.messages import BaseMessage  # noqa: E402
from pydantic import BaseModel  # noqa: E402

__all__ = [
    "Recorder",
    "ScriptedMultiAgent",
    "ScriptedSingleAgent",
    "ToolCallingFakeModel",
    "kinds",
    "norm",
]

Decision = AgentAction | list[AgentAction] | AgentFinish | Exception


class Recorder(BaseCallbackHandler):
    """Every callback event as ``(event, name, run, parent)`` with run ids numbered."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int | None, int | None]] = []
        self.texts: list[str] = []
        self.run_ids: list[UUID] = []
        self._numbers: dict[UUID, int] = {}

    def _n(self, run_id: UUID | None) -> int | None:
        if run_id is None:
            return None
        if run_id not in self._numbers:
            self._numbers[run_id] = len(self._numbers)
            self.run_ids.append(run_id)
        return self._numbers[run_id]

    def _add(self, event: str, name: str, kwargs: dict[str, Any]) -> None:
        self.events.append(
            (event, name, self._n(kwargs.get("run_id")), self._n(kwargs.get("parent_run_id")))
        )

    def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
        name = kw.get("name") or (serialized or {}).get("id", ["?"])[-1]
        self._add("chain_start", str(name), kw)

    def on_chain_end(self, outputs: Any, **kw: Any) -> None:
        self._add("chain_end", "", kw)

    def on_chain_error(self, error: BaseException, **kw: Any) -> None:
        self._add("chain_error", type(error).__name__, kw)

    def on_agent_action(self, action: AgentAction, **kw: Any) -> None:
        self._add("agent_action", action.tool, kw)

    def on_agent_finish(self, finish: AgentFinish, **kw: Any) -> None:
        self._add("agent_finish", str(finish.return_values.get("output", "")), kw)

    def on_tool_start(self, serialized: Any, input_str: str, **kw: Any) -> None:
        self._add("tool_start", str((serialized or {}).get("name", "")), kw)

    def on_tool_end(self, output: Any, **kw: Any) -> None:
        self._add("tool_end", str(output), kw)

    def on_tool_error(self, error: BaseException, **kw: Any) -> None:
        self._add("tool_error", type(error).__name__, kw)

    def on_llm_start(self, serialized: Any, prompts: list[str], **kw: Any) -> None:
        self._add("llm_start", "", kw)

    def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
        self._add("chat_model_start", "", kw)

    def on_llm_end(self, response: Any, **kw: Any) -> None:
        self._add("llm_end", "", kw)

    def on_text(self, text: str, **kw: Any) -> None:
        self.texts.append(text)
        self._add("text", text, kw)


def kinds(recorder: Recorder) -> list[str]:
    """The event names only, in order."""
    return [e[0] for e in recorder.events]


def norm(value: Any) -> Any:
    """Plain data for comparing two runs: ids of messages and runs left out."""
    if isinstance(value, BaseMessage):
        data = {k: norm(getattr(value, k)) for k in type(value).model_fields if k != "id"}
        return {"__type": type(value).__name__, **data}
    if isinstance(value, AgentStep):
        return {"__type": "AgentStep", "action": norm(value.action), "obs": norm(value.observation)}
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return {"__type": type(value).__name__, **{k: norm(getattr(value, k)) for k in fields}}
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list | tuple):
        return [norm(v) for v in value]
    if isinstance(value, UUID):
        return "<uuid>"
    return value


class ScriptedSingleAgent(BaseSingleActionAgent):
    """Answers from a script, one decision per call; an exception in it is raised."""

    script: list[Any]
    calls: int = 0
    seen: list[int] = []  # noqa: RUF012 - a pydantic field (copied per instance)

    @property
    def input_keys(self) -> list[str]:
        return ["input"]

    def _next(self, intermediate_steps: Sequence[tuple[AgentAction, Any]]) -> Any:
        self.seen = [*self.seen, len(intermediate_steps)]
        decision = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(decision, Exception):
            raise decision
        if callable(decision):
            return decision(intermediate_steps)
        return decision

    def plan(self, intermediate_steps: Any, callbacks: Any = None, **kwargs: Any) -> Any:
        return self._next(intermediate_steps)

    async def aplan(self, intermediate_steps: Any, callbacks: Any = None, **kwargs: Any) -> Any:
        return self._next(intermediate_steps)


class ScriptedMultiAgent(BaseMultiActionAgent):
    """:class:`ScriptedSingleAgent` for several actions per step."""

    script: list[Any]
    calls: int = 0

    @property
    def input_keys(self) -> list[str]:
        return ["input"]

    def _next(self, intermediate_steps: Any) -> Any:
        decision = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(decision, Exception):
            raise decision
        return decision

    def plan(self, intermediate_steps: Any, callbacks: Any = None, **kwargs: Any) -> Any:
        return self._next(intermediate_steps)

    async def aplan(self, intermediate_steps: Any, callbacks: Any = None, **kwargs: Any) -> Any:
        return self._next(intermediate_steps)


class ToolCallingFakeModel(FakeMessagesListChatModel):
    """``FakeMessagesListChatModel`` that accepts ``bind_tools`` (the tools are ignored)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


Factory = Callable[[type[Any]], Any]
