"""ReAct in plain text: Thought / Action / Action Input / Observation / Final Answer."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from planloop.engine.plan import Plan, Step
from planloop.engine.planner import Answer, RunContext
from planloop.engine.steps import Action
from planloop.engine.tooling import ToolLike
from planloop.errors import OutputParserError
from planloop.models.messages import ChatMessage, ChatModel
from planloop.nodes.planners._calls import observation_text

__all__ = [
    "FINAL_ANSWER_ACTION",
    "MISSING_ACTION_AFTER_THOUGHT",
    "MISSING_ACTION_INPUT_AFTER_ACTION",
    "REACT_PROMPT",
    "ReActPlanner",
    "parse_react",
]

FINAL_ANSWER_ACTION = "Final Answer:"
MISSING_ACTION_AFTER_THOUGHT = "Invalid Format: Missing 'Action:' after 'Thought:'"
MISSING_ACTION_INPUT_AFTER_ACTION = "Invalid Format: Missing 'Action Input:' after 'Action:'"
BOTH_ANSWER_AND_ACTION = "Parsing LLM output produced both a final answer and a parse-able action:"

REACT_PROMPT = """Answer the following questions as best you can. \
You have access to the following tools:

{tools}

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [{tool_names}]
Action Input: the input to the action (a JSON object for several arguments)
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can repeat N times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!

Question: {input}
Thought:{agent_scratchpad}"""

_ACTION = re.compile(
    r"Action\s*\d*\s*:[\s]*(.*?)[\s]*Action\s*\d*\s*Input\s*\d*\s*:[\s]*(.*)", re.DOTALL
)
_ACTION_ONLY = re.compile(r"Action\s*\d*\s*:[\s]*(.*?)", re.DOTALL)
_INPUT_ONLY = re.compile(r"[\s]*Action\s*\d*\s*Input\s*\d*\s*:[\s]*(.*)", re.DOTALL)


def parse_react(text: str) -> tuple[str, str] | str:
    """``(tool, raw input)`` for an action, the answer text for a final answer.

    Raises:
        OutputParserError: the text is neither; ``observation`` says what is missing.

    Example:
        >>> parse_react("Thought: look it up\\nAction: search\\nAction Input: planloop")
        ('search', 'planloop')
        >>> parse_react("Thought: done\\nFinal Answer: 42")
        '42'
    """
    has_answer = FINAL_ANSWER_ACTION in text
    match = _ACTION.search(text)
    if match:
        if has_answer:
            raise OutputParserError(
                f"{BOTH_ANSWER_AND_ACTION} {text}",
                llm_output=text,
                observation=(
                    "Invalid Format: give either an Action with an Action Input, "
                    "or a Final Answer, not both"
                ),
            )
        raw = match.group(2).strip(" ").strip('"')
        return match.group(1).strip(), raw
    if has_answer:
        return text.split(FINAL_ANSWER_ACTION)[-1].strip()
    if not _ACTION_ONLY.search(text):
        raise OutputParserError(
            f"Could not parse LLM output: `{text}`",
            llm_output=text,
            observation=MISSING_ACTION_AFTER_THOUGHT,
        )
    if not _INPUT_ONLY.search(text):
        raise OutputParserError(
            f"Could not parse LLM output: `{text}`",
            llm_output=text,
            observation=MISSING_ACTION_INPUT_AFTER_ACTION,
        )
    raise OutputParserError(f"Could not parse LLM output: `{text}`", llm_output=text)


def tool_args(raw: str, tool: ToolLike | None) -> dict[str, Any]:
    """Arguments from an Action Input: a JSON object as it is, else the tool's one argument."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            if isinstance(value, dict):
                return value
    names = list(tool.spec.parameters.get("properties", {})) if tool is not None else []
    return {names[0] if names else "input": text}


class ReActPlanner:
    """The text ReAct agent: one action per model call, parsed from plain text.

    Args:
        model: the chat model (the Agent's model when not given).
        prompt: a template with ``{tools}``, ``{tool_names}``, ``{input}`` and
            ``{agent_scratchpad}``.

    Example:
        >>> from planloop import Agent, tool
        >>> from planloop.testing import ScriptedModel
        >>> @tool
        ... def length(text: str) -> int:
        ...     '''Count the characters of a text.'''
        ...     return len(text)
        >>> model = ScriptedModel([
        ...     "Thought: count it\\nAction: length\\nAction Input: planloop",
        ...     "Thought: I now know the final answer\\nFinal Answer: 8",
        ... ])
        >>> Agent(model, [length], planner="react").run_sync("How long is 'planloop'?").output
        '8'
    """

    stop = ("\nObservation:",)

    def __init__(self, model: ChatModel | None = None, *, prompt: str = REACT_PROMPT) -> None:
        self.model = model
        self.prompt = prompt

    def with_model(self, model: ChatModel) -> ReActPlanner:
        return ReActPlanner(model, prompt=self.prompt)

    def _text(self, ctx: RunContext, *, final: bool = False) -> str:
        tools = ctx.tools.values()
        scratchpad = scratchpad_text(ctx.intermediate_steps)
        if final:
            scratchpad += "\n\nI now need to return a final answer based on the previous steps:"
        return self.prompt.format(
            tools="\n".join(f"{t.name}: {t.spec.description}" for t in tools),
            tool_names=", ".join(t.name for t in tools),
            input=ctx.input,
            agent_scratchpad=scratchpad,
        )

    async def _call(self, ctx: RunContext, text: str) -> str:
        model = self.model
        if model is None:
            from planloop.errors import DefinitionError

            raise DefinitionError(
                "ReActPlanner has no model; pass one to it or to Agent(model, ...)"
            )
        messages = [ChatMessage(role="user", content=text)]
        response = await ctx.record_model_call(
            model.name, model.chat(messages, stop=self.stop), messages=1
        )
        return response.message.content

    async def plan(self, ctx: RunContext) -> Plan | Answer:
        text = await self._call(ctx, self._text(ctx))
        parsed = parse_react(text)
        if isinstance(parsed, str):
            return Answer(parsed, log=text)
        name, raw = parsed
        step = Step(id="action", tool=name, args=tool_args(raw, ctx.tools.get(name)))
        return Plan([step], log=text)

    async def final_answer(self, ctx: RunContext) -> Answer:
        text = await self._call(ctx, self._text(ctx, final=True))
        try:
            parsed = parse_react(text)
        except OutputParserError:
            return Answer(text, log=text)
        return Answer(parsed if isinstance(parsed, str) else text, log=text)


def scratchpad_text(steps: Sequence[tuple[Action, Any]]) -> str:
    """The ReAct scratchpad: each step's log, then its observation."""
    parts = []
    for action, obs in steps:
        parts.append(f"{action.log}\nObservation: {observation_text(obs)}\nThought: ")
    return "".join(parts)
