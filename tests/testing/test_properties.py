"""The loop invariants of ARCHITECTURE §8 as property tests over generated model scripts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planloop import Agent, Continued, Event, MachineSpec, RunError, RunResult, Stopped, tool
from planloop.engine.tooling import ToolSpec
from planloop.models import ChatMessage, ModelResponse
from planloop.testing import (
    MachineEvents,
    ScriptedModel,
    check_trace,
    limits,
    model_responses,
    model_scripts,
)

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def echo(text: str) -> str:
    """Echo a text."""
    return text


@tool(return_direct=True)
def finish_with(text: str) -> str:
    """End the run with this text."""
    return text


@tool
async def pause(seconds: float) -> float:
    """Sleep briefly (never more than 30 ms)."""
    await asyncio.sleep(min(abs(seconds), 0.03))
    return seconds


@tool
def fail(text: str) -> str:
    """Always raises."""
    raise ValueError(text)


TOOLS = [add, echo, finish_with, pause, fail]


def run(agent: Agent, text: str = "go") -> RunResult:
    try:
        return agent.run_sync(text)
    except RunError as exc:  # a stopped-with-error run still has its result
        result = exc.result
    assert result is not None
    return result


@PROPERTY
@given(script=model_scripts(tools=TOOLS), options=limits())
def test_invariants_hold_for_tool_calling_scripts(
    script: list[Any], options: dict[str, Any]
) -> None:
    model = ScriptedModel(script)
    result = run(Agent(model, TOOLS, **options))
    check_trace(result.trace)
    assert result.trace.stop_reason == result.stop_reason
    assert len(model.requests) <= len(script) + 1


@PROPERTY
@given(script=model_scripts(tools=TOOLS, planner="react"), options=limits())
def test_invariants_hold_for_react_scripts(script: list[Any], options: dict[str, Any]) -> None:
    result = run(Agent(ScriptedModel(script), TOOLS, planner="react", **options))
    check_trace(result.trace)


class Replay:
    """A stateless model: the answer depends only on how far the conversation got."""

    name = "replay"

    def __init__(self, script: Sequence[Any]) -> None:
        self.script = list(script)

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] | None = None,
    ) -> ModelResponse:
        turn = sum(1 for m in messages if m.role == "assistant")
        if tools is None:  # the "generate" call: always a plain answer
            return ModelResponse(message=ChatMessage(role="assistant", content=f"final {turn}"))
        return await ScriptedModel(self.script[turn:] or ["end"]).chat(messages)


@PROPERTY
@given(
    script=model_scripts(tools=[add, echo, finish_with], errors=False),
    options=limits().filter(lambda o: o["max_execution_time"] in (None, 5.0)),
)
def test_runs_are_isolated(script: list[Any], options: dict[str, Any]) -> None:
    agent = Agent(Replay(script), [add, echo, finish_with], **options)

    def summary(r: RunResult) -> tuple[Any, ...]:
        return (
            r.output,
            r.status,
            r.stop_reason,
            [str(s) for s in r.trace.states],
            [(a.tool, a.tool_input, o) for a, o in r.intermediate_steps],
        )

    first = run(agent)
    second = run(agent)

    async def together() -> list[RunResult]:
        return list(await asyncio.gather(agent.run("go"), agent.run("go")))

    assert summary(first) == summary(second)
    assert [summary(r) for r in asyncio.run(together())] == [summary(first)] * 2
    assert first.run_id != second.run_id


@settings(max_examples=50, deadline=None)
@given(st.lists(model_responses(tools=TOOLS), max_size=4))
def test_json_round_trip_keeps_every_event(script: list[Any]) -> None:
    from planloop import Trace

    trace = run(Agent(ScriptedModel(script), TOOLS, handle_parsing_errors=True)).trace
    again = Trace.from_json(trace.to_json())
    assert again == trace
    assert again.states == trace.states


class Reflected(Event):
    pass


class ReflectMachine(MachineEvents):
    spec = MachineSpec.default().with_transitions(
        {
            Continued: {"observe": "reflect"},
            Reflected: {"reflect": "plan"},
            Stopped: {"reflect": "stopped"},
        },
        states=["reflect"],
    )
    event_strategy = st.one_of(MachineEvents.event_strategy, st.just(Reflected()))


TestDefaultMachine = MachineEvents.TestCase
TestDefaultMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
TestReflectMachine = ReflectMachine.TestCase
TestReflectMachine.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
