"""The demo behind ``planloop demo``: a rule-based planner over real tools, or a chat model.

By default the planner is plain Python, not a language model: it finds the city
names in the question, plans lookups that run in parallel, computes densities from
the looked-up values through references, compares them, and answers from what the
tools returned. Everything runs offline.

Given a chat model (``planloop demo --model NAME``, or ``PLANLOOP_MODEL``), the same
tools are offered to the model through native tool calls instead.
"""

from __future__ import annotations

import ast
import asyncio
import json
import operator
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from planloop.agent import Agent
from planloop.engine.plan import Plan, Step, ref
from planloop.engine.planner import Answer, RunContext
from planloop.engine.result import RunResult
from planloop.errors import RunError
from planloop.models.messages import ChatModel
from planloop.nodes.planners import FunctionPlanner, ToolCallingPlanner
from planloop.nodes.tool import Tool, tool

__all__ = [
    "DEFAULT_QUESTION",
    "MODEL_SYSTEM_PROMPT",
    "build_agent",
    "calculator",
    "cities",
    "model_note",
    "run_demo",
    "stop_note",
]

DEFAULT_QUESTION = "Which city is more densely populated, Oslo or Stockholm, and by how much?"
PLANNER_NOTE = "planner: rule-based Python (not an LLM); runs offline"
MODEL_SYSTEM_PROMPT = (
    "You answer questions about cities from a small dataset, using the tools: "
    "lookup_city gives a city's population and area, density computes people per km² "
    "from them, compare compares two numbers. Call tools that do not depend on each "
    "other in the same message. Answer briefly, from what the tools returned."
)


def cities() -> dict[str, dict[str, Any]]:
    """The small dataset shipped with planloop: a few Nordic and Baltic capitals."""
    text = resources.files("planloop.data").joinpath("cities.json").read_text("utf-8")
    data: dict[str, dict[str, Any]] = json.loads(text)
    return data


_OPS: dict[type[ast.AST], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


def calculator(expression: str) -> float:
    """Evaluate an arithmetic expression (+, -, *, /, ** and parentheses).

    Args:
        expression: for example ``"(2 + 3) * 4"``.
    """

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return float(_OPS[type(node.op)](walk(node.left), walk(node.right)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(f"unsupported expression part: {ast.dump(node)[:40]}")

    return walk(ast.parse(expression, mode="eval").body)


@tool
async def lookup_city(name: str) -> dict[str, Any]:
    """Look a city up in the bundled dataset.

    Args:
        name: the city's name, e.g. "Oslo".
    """
    await asyncio.sleep(0.05)  # stands in for a network call, so parallelism shows
    data = cities()
    if name not in data:
        raise KeyError(f"{name!r} is not in the dataset; known: {', '.join(sorted(data))}")
    return {"name": name, **data[name]}


@tool
def density(population: int, area_km2: float) -> float:
    """People per square kilometre.

    Args:
        population: number of inhabitants.
        area_km2: area in square kilometres.
    """
    return round(population / area_km2, 1)


@tool
def compare(a: float, b: float) -> dict[str, Any]:
    """Which of two values is larger, how many times, and by how much.

    Args:
        a: the first value.
        b: the second value.
    """
    high, low = (a, b) if a >= b else (b, a)
    return {
        "larger": "a" if a >= b else "b",
        "times": round(calculator(f"{high} / {low}"), 2),
        "difference": round(high - low, 1),
    }


def _slug(name: str) -> str:
    return name.lower().replace(" ", "_")


def _plan(ctx: RunContext) -> Plan | Answer:
    names = [n for n in cities() if n.lower() in str(ctx.input).lower()]
    if not names:
        known = ", ".join(sorted(cities()))
        return Answer(f"I know these cities: {known}. Ask about one or two of them.")
    if not ctx.intermediate_steps:
        steps: list[Step] = []
        for name in names[:2]:
            s = _slug(name)
            steps.append(Step(id=f"lookup_{s}", tool="lookup_city", args={"name": name}))
            steps.append(
                Step(
                    id=f"density_{s}",
                    tool="density",
                    args={
                        "population": ref(f"lookup_{s}", "population"),
                        "area_km2": ref(f"lookup_{s}", "area_km2"),
                    },
                )
            )
        if len(names) >= 2:
            a, b = (_slug(n) for n in names[:2])
            steps.append(
                Step(
                    id="compare",
                    tool="compare",
                    args={"a": ref(f"density_{a}"), "b": ref(f"density_{b}")},
                )
            )
        return Plan(steps, log="look the cities up in parallel, then compute and compare")
    found = {a.step_id: obs for a, obs in ctx.intermediate_steps}
    lines = [f"{n}: {found[f'density_{_slug(n)}']} people/km²" for n in names[:2]]
    if "compare" in found and isinstance(found["compare"], dict):
        first, second = names[:2]
        cmp = found["compare"]
        denser, other = (first, second) if cmp["larger"] == "a" else (second, first)
        lines.append(f"{denser} is denser, {cmp['times']}× {other}")
    return Answer("; ".join(lines))


def build_agent(model: ChatModel | None = None) -> Agent:
    """The demo agent: three real tools, and a rule-based planner or ``model``.

    With a model, a tool's error (an unknown city) and output the planner cannot
    read go back to the model as observations, so it can correct itself.
    """
    tools: list[Tool] = [lookup_city, density, compare]
    if model is None:
        return Agent(
            None, tools, planner=FunctionPlanner(_plan), name="demo", max_execution_time=30
        )
    return Agent(
        model,
        tools,
        planner=ToolCallingPlanner(model, system_prompt=MODEL_SYSTEM_PROMPT),
        name="demo",
        max_iterations=8,
        max_execution_time=300,
        handle_parsing_errors=True,
        on_tool_error="observe",
    )


def model_note(model: ChatModel) -> str:
    """The line that says which model the demo plans with, and where it is served."""
    base_url = getattr(model, "base_url", None)
    where = f" at {base_url}" if base_url else ""
    return f"planner: chat model {model.name}{where} (native tool calls)"


def run_demo(
    question: str = DEFAULT_QUESTION,
    *,
    out_dir: Path = Path("planloop-demo"),
    echo: Callable[[str], None] = print,
    model: ChatModel | None = None,
) -> tuple[RunResult, Path]:
    """Run the demo, print what happens, write the run's trace and diagram.

    Without ``model`` everything runs offline. A run that fails (a model server
    that refuses the key, say) still writes its trace and diagram; the error is
    printed and the returned result is the partial one.
    """
    from planloop.visualize import render

    echo(PLANNER_NOTE if model is None else model_note(model))
    echo(f"question: {question}")
    agent = build_agent(model)
    try:
        result = agent.run_sync(question, on_event=lambda e: _show(e, echo))
    except RunError as exc:
        if exc.result is None:
            raise
        result = exc.result
        echo(f"error: {exc}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{result.run_id}.json").write_text(result.trace.to_json(indent=2), "utf-8")
    svg = render(result.trace, out_dir / f"{result.run_id}.svg")
    why = stop_note(result)
    if why is not None:
        echo(why)
    echo(f"answer: {result.output}")
    echo(f"diagram: {svg}")
    return result, svg


def stop_note(result: RunResult) -> str | None:
    """Why a stopped run stopped, in one line; ``None`` for a run that did not stop.

    Example:
        >>> from planloop import Agent, FunctionPlanner, tool
        >>> from planloop.models import ToolCall
        >>> @tool
        ... def ping() -> str:
        ...     '''Ping.'''
        ...     return "pong"
        >>> looping = FunctionPlanner(lambda ctx: ToolCall("ping", {}))
        >>> result = Agent(None, [ping], planner=looping, max_iterations=2).run_sync("x")
        >>> stop_note(result)
        'stopped: max_iterations (the run reached its limit of 2 iterations)'
    """
    reason = result.stop_reason
    if reason is None:
        return None
    started = result.trace.started
    limits = started.limits if started is not None else None
    detail = ""
    if reason == "max_iterations" and limits is not None and limits.max_iterations is not None:
        detail = f"the run reached its limit of {limits.max_iterations} iterations"
    elif reason == "max_execution_time" and limits is not None:
        detail = f"the run reached its time limit of {limits.max_execution_time} s"
    elif reason == "budget":
        detail = "the run used up its model-call or token budget"
    elif reason == "cancelled":
        detail = "the run was cancelled"
    ended = result.trace.ended
    if ended is not None and ended.error:
        detail = ended.error
    return f"stopped: {reason.value}" + (f" ({detail})" if detail else "")


def _show(event: Any, echo: Callable[[str], None]) -> None:
    kind = event.kind
    if kind == "transitioned":
        extra = ""
        if event.event == "Planned":
            extra = f" ({len(event.payload['plan']['steps'])} steps)"
        echo(f"[{event.t * 1000:7.1f} ms] {event.source} --{event.event}--> {event.target}{extra}")
    elif kind == "step_started":
        args = ", ".join(f"{k}={v!r}" for k, v in event.args.items())
        echo(f"[{event.t * 1000:7.1f} ms]   start  {event.step_id}: {event.tool}({args})")
    elif kind == "model_called":
        tokens = f", {event.usage.total_tokens} tokens" if event.usage is not None else ""
        failed = f", failed: {event.error}" if event.error else ""
        took = f"{event.duration:.2f} s{tokens}{failed}"
        echo(f"[{event.t * 1000:7.1f} ms]   model  {event.model}: {took}")
    elif kind == "step_finished":
        r = event.result
        shown = r.output if r.error is None else r.error
        echo(f"[{event.t * 1000:7.1f} ms]   {r.status.value:<9} {r.step_id} -> {shown}")
