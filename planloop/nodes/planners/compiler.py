"""Compiler-style planning (LLMCompiler): a DAG of tool calls, then a join.

The model writes every tool call it needs at once, numbered, with arguments
that refer to earlier results (``$1`` / ``${1}``, or ``{"$ref": "1"}`` in JSON).
Independent calls run in parallel. Then a join asks the model to answer
(``Action: Finish(answer)``) or to plan again (``Action: Replan(reason)``), up
to ``max_replans`` times. A tool that raises becomes an observation for the
join: it never stalls the scheduler.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from typing import Any

from planloop.engine.plan import Plan, Step
from planloop.engine.planner import Answer, RunContext
from planloop.errors import InvalidPlan, OutputParserError
from planloop.models.messages import ChatMessage, ChatModel
from planloop.nodes.planners._calls import observation_text

__all__ = ["CompilerPlanner", "parse_compiler_plan", "parse_join"]

PLAN_PROMPT = """Given a user query, create a plan to solve it with the utmost parallelizability.
Each step is one call to one of these tools:

{tools}

Write the plan as a numbered list, one call per line, like:
1. tool_name(arg="value", other=2)
2. tool_name(arg=$1)
Use $N (or ${{N}}) as an argument value to pass the output of step N. Steps that do not
depend on each other run in parallel. End the plan with a line `N. join()`.
{context}
Question: {input}"""

JOIN_PROMPT = """Question: {input}

Results of the plan:
{results}

Reply with a thought, then either `Action: Finish(<the final answer>)` or, if the results
are not enough, `Action: Replan(<what is missing>)`."""

_LINE = re.compile(r"^\s*(\d+)\s*[.)]\s*([A-Za-z_][\w.\-]*)\s*\((.*)\)\s*$")
_REF = re.compile(r"\$\{?(\d+)\}?")


def _unquoted_refs(args: str) -> str:
    """Turn ``$N`` outside string literals into ``{"$ref": "N"}`` so Python can parse it."""
    out: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(args):
        ch = args[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(args):
                out.append(args[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            out.append(ch)
        elif ch == "$":
            match = _REF.match(args, i)
            if match:
                out.append(f'{{"$ref": "{match.group(1)}"}}')
                i = match.end()
                continue
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _value(node: ast.expr) -> Any:
    value = ast.literal_eval(node)
    return _string_refs(value)


def _string_refs(value: Any) -> Any:
    if isinstance(value, str):
        match = _REF.fullmatch(value.strip())
        return {"$ref": match.group(1)} if match else value
    if isinstance(value, list):
        return [_string_refs(v) for v in value]
    if isinstance(value, dict):
        return {k: _string_refs(v) for k, v in value.items()}
    return value


def parse_compiler_plan(text: str) -> Plan:
    """Read a numbered plan of tool calls (text) or a JSON list of steps.

    References must be whole argument values (``x=$1``); ``$1`` inside a longer
    string is left as text.

    Example:
        >>> plan = parse_compiler_plan('1. search(query="a")\\n2. search(query="b")\\n'
        ...                            '3. add(a=$1, b=${2})\\n4. join()')
        >>> [(s.id, s.tool, s.args) for s in plan.steps][-1]
        ('3', 'add', {'a': {'$ref': '1'}, 'b': {'$ref': '2'}})
    """
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
            steps = [
                Step(
                    id=str(item["id"]),
                    tool=str(item["tool"]),
                    args=dict(item.get("args", {})),
                    depends_on=tuple(str(d) for d in item.get("depends_on", ())),
                )
                for item in data
            ]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise OutputParserError(
                f"the JSON plan is not a list of steps: {exc}",
                llm_output=text,
                observation='Give a JSON list like [{"id": "1", "tool": "...", "args": {...}}]',
            ) from None
        return Plan(steps, log=text)
    steps = []
    problems = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        number, name, args = match.groups()
        if name == "join":
            break
        try:
            call = ast.parse(f"f({_unquoted_refs(args)})", mode="eval").body
            assert isinstance(call, ast.Call)
            if call.args:
                raise ValueError("use keyword arguments (name=value)")
            kwargs = {kw.arg: _value(kw.value) for kw in call.keywords if kw.arg}
        except (SyntaxError, ValueError, AssertionError) as exc:
            problems.append(f"step {number}: cannot read the arguments {args!r}: {exc}")
            continue
        steps.append(Step(id=number, tool=name, args=kwargs))
    if problems or not steps:
        detail = "; ".join(problems) if problems else "no numbered tool calls found"
        raise OutputParserError(
            f"could not read the plan: {detail}",
            llm_output=text,
            observation=f"Could not read the plan ({detail}). Write one call per line: "
            '1. tool(arg="value")',
        )
    return Plan(steps, log=text)


def parse_join(text: str) -> tuple[str, str]:
    """``("finish", answer)`` or ``("replan", reason)`` from the join's reply.

    Example:
        >>> parse_join("Thought: enough\\nAction: Finish(It is 4.)")
        ('finish', 'It is 4.')
    """
    match = re.search(r"Action:\s*(Finish|Replan)\s*\((.*)\)\s*$", text, re.S | re.I)
    if match:
        return match.group(1).lower(), match.group(2).strip()
    raise OutputParserError(
        f"the join reply has no Action: {text[:200]!r}",
        llm_output=text,
        observation="End the reply with `Action: Finish(answer)` or `Action: Replan(reason)`.",
    )


class CompilerPlanner:
    """Plans a DAG of tool calls, runs it in parallel, then joins: answer or replan.

    Tool errors become observations for the join (the Agent defaults to
    ``on_tool_error="observe"`` with this planner).

    Args:
        model: the chat model (the Agent's model when not given).
        max_replans: how many times the join may ask for a new plan.

    Example:
        >>> from planloop import Agent, tool
        >>> from planloop.testing import ScriptedModel
        >>> @tool
        ... def square(x: int) -> int:
        ...     '''Square a number.'''
        ...     return x * x
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two numbers.'''
        ...     return a + b
        >>> model = ScriptedModel([
        ...     "1. square(x=3)\\n2. square(x=4)\\n3. add(a=$1, b=$2)\\n4. join()",
        ...     "Thought: done\\nAction: Finish(25)",
        ... ])
        >>> Agent(model, [square, add], planner=CompilerPlanner()).run_sync("3²+4²?").output
        '25'
    """

    on_tool_error = "observe"

    def __init__(self, model: ChatModel | None = None, *, max_replans: int = 2) -> None:
        self.model = model
        self.max_replans = max_replans

    def with_model(self, model: ChatModel) -> CompilerPlanner:
        return CompilerPlanner(model, max_replans=self.max_replans)

    async def _ask(self, ctx: RunContext, text: str) -> str:
        if self.model is None:
            from planloop.errors import DefinitionError

            raise DefinitionError(
                "CompilerPlanner has no model; pass one to it or to Agent(model, ...)"
            )
        messages = [ChatMessage(role="user", content=text)]
        response = await ctx.record_model_call(
            self.model.name, self.model.chat(messages), messages=1
        )
        return response.message.content

    async def plan(self, ctx: RunContext) -> Plan | Answer:
        state = ctx.state.setdefault("compiler", {"replans": 0, "reason": "", "seen": 0})
        new = ctx.all_steps[state["seen"] :]
        state["seen"] = len(ctx.all_steps)
        context = ""
        if new and any(a.tool != "_Exception" for a, _ in new):
            verdict, text = parse_join(await self._ask(ctx, self._join_prompt(ctx, new)))
            if verdict == "finish":
                return Answer(text)
            if state["replans"] >= self.max_replans:
                return Answer(
                    f"Could not finish after {self.max_replans} replans; last reason: {text}"
                )
            state["replans"] += 1
            context = f"\nA previous plan was not enough: {text}\n{_results(new)}\n"
        elif new:
            context = f"\nYour previous plan could not be used: {observation_text(new[-1][1])}\n"
        text = await self._ask(ctx, self._plan_prompt(ctx, context))
        plan = parse_compiler_plan(text)
        problems = plan.problems(ctx.tools)
        if problems:
            raise InvalidPlan(problems)
        return plan

    def _plan_prompt(self, ctx: RunContext, context: str) -> str:
        tools = "\n".join(f"- {t.name}: {t.spec.description}" for t in ctx.tools.values())
        return PLAN_PROMPT.format(tools=tools, context=context, input=ctx.input)

    def _join_prompt(self, ctx: RunContext, new: Sequence[tuple[Any, Any]]) -> str:
        return JOIN_PROMPT.format(input=ctx.input, results=_results(new))

    async def final_answer(self, ctx: RunContext) -> Answer:
        text = await self._ask(
            ctx,
            JOIN_PROMPT.format(input=ctx.input, results=_results(ctx.all_steps))
            + "\nYou must finish now.",
        )
        try:
            _, answer = parse_join(text)
        except OutputParserError:
            answer = text
        return Answer(answer)


def _results(steps: Sequence[tuple[Any, Any]]) -> str:
    return "\n".join(
        f"{a.step_id}. {a.tool}({a.tool_input}) -> {observation_text(o)}"
        for a, o in steps
        if a.tool != "_Exception"
    )
