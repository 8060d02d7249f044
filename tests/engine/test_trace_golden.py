"""Golden trace JSON of small scripted runs: what a run records, field by field.

A run keeps most of its records as rows until its trace is read (see
``planloop.engine.recorder``); these files hold it to recording exactly the same
events with the same content, however they are made.
Times (``t``, ``duration``, ``started_at``, ``ended_at``) are replaced by 0, since
they change from run to run. The files change only on purpose:

    ./dev python -m pytest tests/engine/test_trace_golden.py --update-golden

rewrites them from the current code; review the diff before committing it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import planloop
from planloop import Answer, FunctionPlanner, Plan, RunContext, Step, Trace, ref
from planloop.models import ToolCall
from planloop.testing import ScriptedModel

GOLDEN = Path(__file__).parent / "golden"
_TIMES = frozenset({"t", "duration", "started_at", "ended_at"})


async def noop(x: int) -> int:
    """Return x."""
    return x


async def add(a: int, b: int) -> int:
    """Add two numbers (async: steps that run together end in a fixed order)."""
    return a + b


def explode(x: int) -> int:
    """Always raises."""
    raise RuntimeError(f"exploded on {x}")


def shout(text: str) -> str:
    """Repeat text loudly."""
    return text.upper()


def tool_calls() -> Trace:
    """The benchmark's loop: one async tool call per iteration, then an answer."""
    model = ScriptedModel([ToolCall("noop", {"x": 1})] * 3 + ["done"])
    agent = planloop.Agent(model, [planloop.Tool(noop, name="noop")], store=False)
    return agent.run_sync("go", run_id="golden").trace


def mixed_calls() -> Trace:
    """Parallel calls, a handled tool error, an unknown tool, bad arguments, return_direct."""
    model = ScriptedModel(
        [
            [ToolCall("add", {"a": 1, "b": 2}, id="c1"), ToolCall("add", {"a": 3, "b": 4})],
            ToolCall("explode", {"x": 5}),
            ToolCall("missing", {}),
            ToolCall("add", {"a": "not a number", "b": 1}),
            ToolCall("add", {"a": 1.5, "b": [1, {"k": None}]}),
            ToolCall("shout", {"text": "hi"}),
        ]
    )
    tools = [
        planloop.Tool(add),
        planloop.Tool(explode, handle_tool_error=True),
        planloop.Tool(shout, return_direct=True),
    ]
    agent = planloop.Agent(
        model, tools, name="mixed", on_tool_error="observe", max_iterations=None, store=False
    )
    return agent.run_sync({"question": "mixed"}, run_id="golden").trace


def react_parse_error() -> Trace:
    model = ScriptedModel(
        [
            "I am not sure",
            'Thought: add\nAction: add\nAction Input: {"a": 2, "b": 2}',
            "Thought: done\nFinal Answer: 4",
        ]
    )
    agent = planloop.Agent(model, [add], planner="react", handle_parsing_errors=True, store=False)
    return agent.run_sync("2 + 2?", run_id="golden").trace


def stopped_max_iterations() -> Trace:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2})] * 5)
    agent = planloop.Agent(model, [add], max_iterations=2, store=False)
    return agent.run_sync("x", run_id="golden").trace


def plan_with_references() -> Trace:
    def plan(ctx: RunContext) -> Plan | Answer:
        if ctx.iteration:
            return Answer(ctx.last_results[-1].output)
        return Plan(
            [
                Step(id="a", tool="add", args={"a": 1, "b": 2}),
                Step(id="b", tool="add", args={"a": ref("a"), "b": 10}, timeout=5.0),
                Step(id="c", tool="add", args={"a": 0, "b": 0}, depends_on=("a",)),
                Step(id="d", tool="explode", args={"x": ref("b")}, depends_on=("c",)),
                Step(id="e", tool="add", args={"a": ref("d"), "b": 1}),
            ],
            log="three steps",
        )

    tools = [planloop.Tool(add), planloop.Tool(explode, handle_tool_error=True)]
    agent = planloop.Agent(None, tools, planner=FunctionPlanner(plan), store=False)
    return agent.run_sync("refs", run_id="golden").trace


RUNS: dict[str, Callable[[], Trace]] = {
    "tool_calls": tool_calls,
    "mixed_calls": mixed_calls,
    "react_parse_error": react_parse_error,
    "stopped_max_iterations": stopped_max_iterations,
    "plan_with_references": plan_with_references,
}


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: 0 if k in _TIMES else _timeless(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(RUNS))
def test_golden_trace_json(name: str, request: pytest.FixtureRequest) -> None:
    trace = RUNS[name]()
    assert Trace.from_json(trace.to_json()) == trace
    text = json.dumps(_timeless(json.loads(trace.to_json())), indent=1) + "\n"
    path = GOLDEN / f"{name}.json"
    if request.config.getoption("--update-golden"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}; run pytest with --update-golden"
    assert text == path.read_text(encoding="utf-8"), (
        f"{name}: the trace JSON changed; if on purpose, rerun with --update-golden "
        "and review the diff"
    )
