"""What a step produced, and the (action, observation) pairs a planner reads."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from planloop.engine.states import StepStatus

__all__ = ["Action", "StepResult"]


class StepResult(BaseModel):
    """How one step ended.

    Times are seconds since the run started. ``output`` is the tool's return
    value, or, for a failure the tool or the loop handled (unknown tool, bad
    arguments, ``handle_tool_error``), the observation shown to the planner.
    ``fatal`` marks a failure nothing handled: it stops the run with reason
    ``error``.

    Example:
        >>> from planloop import Workflow
        >>> wf = Workflow("one step", store=False)
        >>> _ = wf.step(lambda: 42, id="answer")
        >>> step = wf.run_sync().steps[0]
        >>> step.step_id, step.status, step.output, step.attempts
        ('answer', <StepStatus.succeeded: 'succeeded'>, 42, 1)
        >>> StepResult(step_id="fetch", status="failed", error="timed out").observation
        'Error: timed out'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str
    status: StepStatus
    output: Any = None
    error: str | None = None
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    tool: str = ""
    args: dict[str, Any] = Field(default_factory=dict)
    error_type: str | None = None
    fatal: bool = False

    @property
    def duration(self) -> float | None:
        """Seconds the step ran, or ``None`` if it never started."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    @property
    def observation(self) -> Any:
        """What the planner is shown for this step."""
        if self.status is StepStatus.succeeded or self.output is not None:
            return self.output
        if self.status is StepStatus.failed:
            return f"Error: {self.error}"
        if self.status is StepStatus.skipped:
            return f"Skipped: {self.error}" if self.error else "Skipped"
        return f"Cancelled: {self.error}" if self.error else "Cancelled"


class Action(BaseModel):
    """What the planner asked for: a tool and its input (LangChain's ``AgentAction``).

    ``log`` is what the planner said around the call; ``iteration`` groups the
    actions of one plan (several tool calls in one model message share it).

    Example:
        >>> from planloop import Agent, tool
        >>> from planloop.models import ToolCall
        >>> from planloop.testing import ScriptedModel
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two numbers.'''
        ...     return a + b
        >>> model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2}), "3"])
        >>> result = Agent(model, [add], store=False).run_sync("1 + 2?")
        >>> action, observation = result.intermediate_steps[0]
        >>> action.tool, action.tool_input, observation
        ('add', {'a': 1, 'b': 2}, 3)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tool: str
    tool_input: Any
    log: str = ""
    step_id: str = ""
    iteration: int = 0
