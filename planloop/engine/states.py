"""The enums of the loop: states, run status, stop reasons, step status."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["LoopState", "RunStatus", "StepStatus", "StopReason"]


class LoopState(StrEnum):
    """The five states of the built-in agent loop.

    Members compare equal to their values: ``LoopState.plan == "plan"``.

    Example:
        >>> [str(state) for state in LoopState]
        ['plan', 'act', 'observe', 'finish', 'stopped']
        >>> LoopState("observe") == "observe"
        True
    """

    plan = "plan"
    act = "act"
    observe = "observe"
    finish = "finish"
    stopped = "stopped"


class StopReason(StrEnum):
    """Why a run ended in the ``stopped`` state.

    Example:
        >>> from planloop import Agent, Answer, FunctionPlanner
        >>> planner = FunctionPlanner(lambda ctx: Answer("never asked"))
        >>> result = Agent(None, planner=planner, max_iterations=0, store=False).run_sync("?")
        >>> result.stop_reason
        <StopReason.max_iterations: 'max_iterations'>
        >>> [reason.value for reason in StopReason]
        ['max_iterations', 'max_execution_time', 'budget', 'cancelled', 'error']
    """

    max_iterations = "max_iterations"
    max_execution_time = "max_execution_time"
    budget = "budget"
    cancelled = "cancelled"
    error = "error"


class RunStatus(StrEnum):
    """How a run ended: ``finished`` (reached ``finish``) or ``stopped``; or
    ``paused``: waiting for a decision (``interrupt_before``, an approval step),
    to be resumed from its checkpoint.

    Example:
        >>> from planloop import Agent, Answer, FunctionPlanner
        >>> agent = Agent(None, planner=FunctionPlanner(lambda ctx: Answer("hi")), store=False)
        >>> agent.run_sync("hello").status
        <RunStatus.finished: 'finished'>
        >>> [status.value for status in RunStatus]
        ['finished', 'stopped', 'paused']
    """

    finished = "finished"
    stopped = "stopped"
    paused = "paused"


class StepStatus(StrEnum):
    """The status of one step of a plan. The last four are terminal.

    Example:
        >>> from planloop import Workflow
        >>> wf = Workflow("one step", store=False)
        >>> _ = wf.step(lambda: 42, id="answer")
        >>> wf.run_sync().steps[0].status
        <StepStatus.succeeded: 'succeeded'>
        >>> [status.value for status in StepStatus if status.terminal]
        ['succeeded', 'failed', 'skipped', 'cancelled']
    """

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
