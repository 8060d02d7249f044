"""The enums of the loop: states, run status, stop reasons, step status."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["LoopState", "RunStatus", "StepStatus", "StopReason"]


class LoopState(StrEnum):
    """The five states of the built-in agent loop.

    Members compare equal to their values: ``LoopState.plan == "plan"``.
    """

    plan = "plan"
    act = "act"
    observe = "observe"
    finish = "finish"
    stopped = "stopped"


class StopReason(StrEnum):
    """Why a run ended in the ``stopped`` state."""

    max_iterations = "max_iterations"
    max_execution_time = "max_execution_time"
    budget = "budget"
    cancelled = "cancelled"
    error = "error"


class RunStatus(StrEnum):
    """How a run ended: ``finished`` (reached ``finish``) or ``stopped``; or
    ``paused``: waiting for a decision (``interrupt_before``, an approval step),
    to be resumed from its checkpoint."""

    finished = "finished"
    stopped = "stopped"
    paused = "paused"


class StepStatus(StrEnum):
    """The status of one step of a plan. The last four are terminal."""

    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether a step in this status is done for good."""
        return self not in (StepStatus.pending, StepStatus.running)
