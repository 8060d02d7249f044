"""The loop configuration a replay runs with.

Built from the recorded run alone: its machine and limits, a planner that plays
back the decisions recorded out of ``plan``, a :class:`ReplayTool` for each
tool name the trace shows, and a handler for each state that had its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import cast

from planloop.engine._recorded import TOOL_HINT
from planloop.engine._replay_script import ReplayTool, Script
from planloop.engine.loop import LoopConfig, StateHandler
from planloop.engine.plan import Plan
from planloop.engine.planner import Answer, RunContext
from planloop.engine.states import LoopState, StopReason
from planloop.engine.tooling import ToolLike
from planloop.errors import OutputParserError, RunError

__all__ = ["replay_config"]


def replay_config(script: Script) -> LoopConfig:
    """A loop configuration that replays ``script``'s run: its machine, limits and decisions."""
    limits = script.started.limits
    stop_reason = script.ended.stop_reason
    if stop_reason is not StopReason.max_execution_time and not script.deadline_struck:
        limits = limits.model_copy(update={"max_execution_time": None})
    handlers: dict[str, StateHandler] = {
        state: script.handler(state)
        for state in script.spec.states
        if state not in script.spec.terminal and not script.builtin_handler_suffices(state)
    }
    stopping = script.failed_step_that_stopped()
    tools = _Tools({n: ReplayTool(n, script) for n in script.tool_names})
    if stopping is not None and TOOL_HINT not in (script.ended.error or ""):
        # It ran a Python callable of the plan (a workflow step), not one of the
        # runnable's tools, and the loop words that failure without the hint.
        tools.unlisted.add(stopping.tool)
    return LoopConfig(
        planner=_ReplayPlanner(script),
        tools=tools,
        spec=script.spec,
        limits=limits,
        early_stopping_method="generate",
        handle_parsing_errors=_feedback,
        handlers=handlers,
        on_tool_error="stop" if stopping is not None else "observe",
        max_plan_steps=None,
        name=script.started.name,
    )


class _Rejected(OutputParserError):
    """A recorded ``Rejected`` transition, played back through ``handle_parsing_errors``."""


def _feedback(exc: OutputParserError) -> str:
    return exc.observation or ""


class _ReplayPlanner:
    """Plays back the decisions recorded out of the ``plan`` state."""

    def __init__(self, script: Script) -> None:
        self.script = script

    async def plan(self, ctx: RunContext) -> Plan | Answer:
        script = self.script
        recorded = script.next_transition(LoopState.plan)
        await script.replay_model_calls(ctx)
        name, payload = recorded.event, recorded.payload
        if name == "Planned":
            return script.plan_from(payload)
        if name == "Answered":
            return Answer(payload.get("output"))
        if name == "Rejected":
            raise _Rejected(
                str(payload.get("error", "")),
                llm_output=str(payload.get("llm_output", "")),
                observation=str(payload.get("feedback", "")),
            )
        return cast(Answer, await script.end_here(recorded))

    async def final_answer(self, ctx: RunContext) -> Answer:
        script = self.script
        await script.replay_model_calls(ctx)
        if script.ended.stop_reason is StopReason.error:  # the final answer failed
            raise RunError(script.ended.error or "the recorded final answer failed")
        return Answer(script.ended.output)


class _Tools(Mapping[str, ToolLike]):
    """The replay's tools; ``unlisted`` ones run but are not among the runnable's tools."""

    def __init__(self, tools: dict[str, ToolLike]) -> None:
        self.tools = tools
        self.unlisted: set[str] = set()

    def __getitem__(self, name: str) -> ToolLike:
        return self.tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tools and name not in self.unlisted

    def __iter__(self) -> Iterator[str]:
        return (n for n in self.tools if n not in self.unlisted)

    def __len__(self) -> int:
        return sum(1 for n in self.tools if n not in self.unlisted)
