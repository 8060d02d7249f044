"""Approval steps: a step of a plan that waits for a person.

When an act reaches an approval step (its dependencies succeeded), the steps
that do not wait for it run to the end, then the run pauses (status
``paused``) with the question. ``resume(run_id, Approve())`` makes the step
succeed (its output is ``True``) and the act goes on;
``resume(run_id, Reject(message=...))`` makes it fail with the message, and its
dependents are skipped.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Approval", "approval_ids"]


class Approval:
    """What an approval step runs: nothing; the loop pauses there for a decision.

    Example:
        >>> from planloop import Step
        >>> gate = Approval("Deploy to production?")
        >>> Step(id="ok", tool=gate).tool_name
        'approval'
    """

    __name__ = "approval"

    def __init__(self, question: str) -> None:
        self.question = question

    def __call__(self, **_: Any) -> Any:
        raise RuntimeError("an approval step is decided by a person through resume(), never called")

    def __repr__(self) -> str:
        return f"Approval({self.question!r})"


def approval_ids(steps: Any) -> dict[str, str]:
    """The approval steps among ``steps``: their ids and questions."""
    return {s.id: s.tool.question for s in steps if isinstance(s.tool, Approval)}
