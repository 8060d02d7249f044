"""The result of one run."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from pydantic import BaseModel, ConfigDict

from planloop.engine.states import RunStatus, StopReason
from planloop.engine.steps import Action, StepResult
from planloop.engine.trace import Trace

__all__ = ["RunResult"]


class RunResult(BaseModel):
    """What a run produced.

    Attributes:
        output: the final answer, or the stopped output.
        status: ``finished`` or ``stopped``.
        stop_reason: set if and only if the run stopped.
        iterations: passes through ``observe``.
        intermediate_steps: ``(action, observation)`` pairs in execution order.
        steps: every step result, in the order the steps ended.
        trace: the full typed record of the run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    run_id: str
    output: Any
    status: RunStatus
    stop_reason: StopReason | None = None
    iterations: int = 0
    intermediate_steps: list[tuple[Action, Any]]
    steps: list[StepResult]
    trace: Trace

    def __repr__(self) -> str:
        output = repr(self.output)
        if len(output) > 80:
            output = output[:77] + "..."
        reason = f", stop_reason={self.stop_reason.value!r}" if self.stop_reason else ""
        return (
            f"RunResult(run_id={self.run_id!r}, status={self.status.value!r}{reason}, "
            f"iterations={self.iterations}, steps={len(self.steps)}, output={output})"
        )

    def _repr_svg_(self) -> str | None:
        from planloop.engine._display import svg_of

        return svg_of(self.trace)

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, str]:
        from planloop.engine._display import mimebundle_of

        return mimebundle_of(self.trace, repr(self), include, exclude)
