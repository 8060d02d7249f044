"""The typed events that move the loop from one state to the next.

Each event is a frozen pydantic model. Which state accepts which event, and
where it leads, is declared once in :class:`~planloop.MachineSpec`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from planloop.engine.plan import Plan
from planloop.engine.states import StopReason
from planloop.engine.steps import StepResult

__all__ = [
    "Acted",
    "Answered",
    "Continued",
    "Event",
    "Planned",
    "Rejected",
    "ReturnedDirect",
    "Stopped",
]


class Event(BaseModel):
    """Base class of every loop event; subclass it to add your own.

    Example:
        >>> class Reflected(Event):
        ...     note: str = ""
        >>> event = Reflected(note="look again")
        >>> try:
        ...     event.note = "changed"
        ... except ValueError as err:
        ...     print(err.errors()[0]["type"])
        frozen_instance
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class Planned(Event):
    """``plan -> act``: the planner produced a plan of one or more steps.

    Example:
        >>> from planloop import MachineSpec, Plan, Step
        >>> event = Planned(plan=Plan(steps=[Step(id="a", tool="add", args={"a": 1, "b": 2})]))
        >>> [step.id for step in event.plan.steps]
        ['a']
        >>> MachineSpec.default().next_state("plan", event)
        <LoopState.act: 'act'>
    """

    plan: Plan


class Answered(Event):
    """``plan -> finish``: the planner produced the final answer.

    Example:
        >>> from planloop import Agent, Answer, FunctionPlanner
        >>> agent = Agent(None, planner=FunctionPlanner(lambda ctx: Answer("42")), store=False)
        >>> last = agent.run_sync("?").trace.transitions[-1]
        >>> last.source, last.event, last.target, last.payload
        ('plan', 'Answered', 'finish', {'output': '42'})
    """

    output: Any


class Rejected(Event):
    """``plan -> observe``: the planner's output was unusable.

    ``feedback`` becomes the observation the planner sees on its next pass.

    Example:
        >>> from planloop import Agent
        >>> from planloop.testing import ScriptedModel
        >>> model = ScriptedModel(["I am not sure", "Final Answer: 4"])
        >>> agent = Agent(model, planner="react", handle_parsing_errors=True, store=False)
        >>> first = agent.run_sync("2 + 2?").trace.transitions[0]
        >>> first.event, first.target, first.payload["feedback"]
        ('Rejected', 'observe', "Invalid Format: Missing 'Action:' after 'Thought:'")
    """

    error: str
    feedback: str
    llm_output: str = ""


class Acted(Event):
    """``act -> observe``: every step of the plan reached a terminal status.

    Example:
        >>> from planloop import MachineSpec, StepResult
        >>> event = Acted(results=(StepResult(step_id="a", status="succeeded", output=3),))
        >>> event.results[0].status
        <StepStatus.succeeded: 'succeeded'>
        >>> MachineSpec.default().next_state("act", event)
        <LoopState.observe: 'observe'>
    """

    results: tuple[StepResult, ...]


class Continued(Event):
    """``observe -> plan``: ask the planner again.

    Example:
        >>> from planloop import Agent, tool
        >>> from planloop.models import ToolCall
        >>> from planloop.testing import ScriptedModel
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two numbers.'''
        ...     return a + b
        >>> model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2}), "3"])
        >>> [t.event for t in Agent(model, [add], store=False).run_sync("1 + 2?").trace.transitions]
        ['Planned', 'Acted', 'Continued', 'Answered']
    """


class ReturnedDirect(Event):
    """``observe -> finish``: a ``return_direct`` tool ended the run.

    Example:
        >>> from planloop import Agent, tool
        >>> from planloop.models import ToolCall
        >>> from planloop.testing import ScriptedModel
        >>> @tool(return_direct=True)
        ... def shout(text: str) -> str:
        ...     '''Repeat text loudly.'''
        ...     return text.upper()
        >>> model = ScriptedModel([ToolCall("shout", {"text": "hi"})])
        >>> result = Agent(model, [shout], store=False).run_sync("Say hi loudly")
        >>> result.output, [t.event for t in result.trace.transitions]
        ('HI', ['Planned', 'Acted', 'ReturnedDirect'])
    """

    output: Any


class Stopped(Event):
    """``plan | act | observe -> stopped``: a limit, a cancellation or an error.

    Example:
        >>> from planloop import Agent, Answer, FunctionPlanner
        >>> planner = FunctionPlanner(lambda ctx: Answer("never asked"))
        >>> result = Agent(None, planner=planner, max_iterations=0, store=False).run_sync("?")
        >>> only = result.trace.transitions[0]
        >>> only.source, only.event, only.target, only.payload["reason"]
        ('plan', 'Stopped', 'stopped', 'max_iterations')
    """

    reason: StopReason
    output: Any = None
