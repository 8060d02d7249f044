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
    """Base class of every loop event; subclass it to add your own."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class Planned(Event):
    """``plan -> act``: the planner produced a plan of one or more steps."""

    plan: Plan


class Answered(Event):
    """``plan -> finish``: the planner produced the final answer."""

    output: Any


class Rejected(Event):
    """``plan -> observe``: the planner's output was unusable.

    ``feedback`` becomes the observation the planner sees on its next pass.
    """

    error: str
    feedback: str
    llm_output: str = ""


class Acted(Event):
    """``act -> observe``: every step of the plan reached a terminal status."""

    results: tuple[StepResult, ...]


class Continued(Event):
    """``observe -> plan``: ask the planner again."""


class ReturnedDirect(Event):
    """``observe -> finish``: a ``return_direct`` tool ended the run."""

    output: Any


class Stopped(Event):
    """``plan | act | observe -> stopped``: a limit, a cancellation or an error."""

    reason: StopReason
    output: Any = None
