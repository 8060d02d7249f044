"""The default planner: native tool calls; N calls in one message are N parallel steps."""

from __future__ import annotations

from collections.abc import Mapping

from planloop.engine.plan import Plan
from planloop.engine.planner import Answer, RunContext
from planloop.engine.tooling import ToolLike, ToolSpec
from planloop.models.messages import ChatMessage, ChatModel, Conversation
from planloop.nodes.planners._calls import (
    next_call_number,
    plan_from_calls,
    tool_call_history,
)

__all__ = ["FINAL_ANSWER_PROMPT", "ToolCallingPlanner"]

FINAL_ANSWER_PROMPT = (
    "You have run out of steps. Using only what the steps above found, "
    "give your final answer now, without calling any tool."
)


class ToolCallingPlanner:
    """Ask a chat model with tools; answer with its text, or plan its tool calls.

    Args:
        model: the chat model (the Agent's model when not given).
        system_prompt: an optional first system message.

    Example:
        >>> from planloop import Agent, tool
        >>> from planloop.models import ToolCall
        >>> from planloop.testing import ScriptedModel
        >>> @tool
        ... def double(x: int) -> int:
        ...     '''Double a number.'''
        ...     return 2 * x
        >>> model = ScriptedModel([[ToolCall("double", {"x": 2}), ToolCall("double", {"x": 5})],
        ...                        "4 and 10"])
        >>> result = Agent(model, [double]).run_sync("double 2 and 5")
        >>> result.output, [obs for _, obs in result.intermediate_steps]
        ('4 and 10', [4, 10])
    """

    def __init__(self, model: ChatModel | None = None, *, system_prompt: str | None = None) -> None:
        self.model = model
        self.system_prompt = system_prompt

    def with_model(self, model: ChatModel) -> ToolCallingPlanner:
        return ToolCallingPlanner(model, system_prompt=self.system_prompt)

    def _messages(self, ctx: RunContext) -> Conversation:
        # The conversation only grows while every step is visible, so it is kept
        # per run and extended with the new steps: a long run costs the same per
        # iteration as a short one. Trimming rebuilds it from the visible steps.
        steps = ctx.intermediate_steps
        whole = steps is ctx.all_steps
        key = ("tool_calling.messages", self)
        cached = ctx.state.get(key) if whole else None
        if cached is None:
            messages = Conversation()
            if self.system_prompt:
                messages.append(ChatMessage(role="system", content=self.system_prompt))
            messages.append(ChatMessage(role="user", content=str(ctx.input)))
            done = 0
        else:
            done, messages = cached
        if len(steps) > done:
            messages.extend(tool_call_history(steps[done:]))
        if whole:
            ctx.state[key] = (len(steps), messages)
        return messages

    async def plan(self, ctx: RunContext) -> Plan | Answer:
        model = _need(self.model)
        messages = self._messages(ctx)
        response = await ctx.record_model_call(
            model.name, model.chat(messages, tools=_specs(ctx.tools)), messages=len(messages)
        )
        message = response.message
        if message.tool_calls:
            first = next_call_number(ctx)
            return plan_from_calls(message.tool_calls, log=message.content, first=first)
        content = message.content
        return Answer(content, log=content)

    async def final_answer(self, ctx: RunContext) -> Answer:
        model = _need(self.model)
        messages = [*self._messages(ctx), ChatMessage(role="user", content=FINAL_ANSWER_PROMPT)]
        ctx.state.pop(("tool_calling.messages", self), None)
        response = await ctx.record_model_call(
            model.name, model.chat(messages), messages=len(messages)
        )
        return Answer(response.message.content, log=response.message.content)


def _specs(tools: Mapping[str, ToolLike]) -> list[ToolSpec] | None:
    # A fresh list per call: a model may keep what it was given.
    return [t.spec for t in tools.values()] or None


def _need(model: ChatModel | None) -> ChatModel:
    if model is None:
        from planloop.errors import DefinitionError

        raise DefinitionError(
            "this planner has no model; pass one to the planner or to Agent(model, ...)"
        )
    return model
