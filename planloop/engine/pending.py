"""What a paused run waits for: the plan about to run, or the questions of its approval steps.

A pause is recorded as a :class:`~planloop.engine.trace.RunPaused` event whose
``pending`` holds plain JSON (see :meth:`planloop.engine._run.Run.pause`);
:class:`Pending` is that record read into typed fields, for a run's result, the
command line and the picture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from planloop.engine.redact import default_redactor
from planloop.engine.trace import RunPaused, Trace

__all__ = ["Pending", "PendingStep"]

_SHOWN = 300
"""Longest value text :meth:`Pending.describe` shows; a longer one ends in ``...``."""


class PendingStep(BaseModel):
    """One step that waits for a decision.

    Attributes:
        id: the step's id in its plan.
        tool: the tool it runs (``approval`` for an approval step).
        args: its arguments, as recorded (read from a store, secrets are redacted).
        depends_on: the steps it waits for.
        question: an approval step's question; ``None`` for other steps.

    Example:
        >>> PendingStep(id="call_1", tool="send_email", args={"to": "boss@example.org"}).tool
        'send_email'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    question: str | None = None


class Pending(BaseModel):
    """What a paused run waits for a decision on (``RunResult.pending``).

    Attributes:
        reason: ``interrupt`` (paused before entering ``state``, by
            ``interrupt_before``) or ``approval`` (an approval step was reached).
        state: the state the run would enter (``interrupt``) or is in (``approval``).
        event: the name of the event that would enter ``state`` (``Planned`` for a
            plan); ``None`` at an approval.
        steps: the plan that waits to run, or the approval steps with their questions.
        payload: the waiting event as recorded, for events that carry no plan
            (an ``Answered`` output, say); empty otherwise.

    Example:
        >>> from planloop import Workflow
        >>> wf = Workflow("ship", store=False)
        >>> gate = wf.approval("Deploy to production?", id="go")
        >>> pending = wf.run_sync().pending
        >>> pending.reason, [(s.id, s.question) for s in pending.steps]
        ('approval', [('go', 'Deploy to production?')])
        >>> print(*pending.describe(), sep="\\n")
        waiting for approval in act:
          go: Deploy to production?
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: Literal["interrupt", "approval"]
    state: str
    event: str | None = None
    steps: tuple[PendingStep, ...] = ()
    payload: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, trace: Trace) -> Pending | None:
        """What the run of ``trace`` waits for, or ``None`` when it is not paused.

        It works on a trace read from a store too (where secrets are redacted).
        """
        last = trace.events[-1] if trace.events else None
        return cls.from_record(last) if isinstance(last, RunPaused) else None

    @classmethod
    def from_record(cls, paused: RunPaused) -> Pending:
        """The typed form of a ``run_paused`` record."""
        record = paused.pending
        questions = record.get("approval")
        if paused.reason == "approval" and isinstance(questions, Mapping):
            steps = tuple(
                PendingStep(id=str(step_id), tool="approval", question=str(question))
                for step_id, question in questions.items()
            )
            return cls(reason="approval", state=paused.state, steps=steps)
        payload = record.get("payload")
        payload = dict(payload) if isinstance(payload, Mapping) else {}
        plan = payload.pop("plan", None)
        event = record.get("event")
        return cls(
            reason=paused.reason,
            state=paused.state,
            event=str(event) if event is not None else None,
            steps=_plan_steps(plan),
            payload=payload,
        )

    def describe(self) -> list[str]:
        """Lines saying what waits, for people; secrets redacted by planloop's redactor.

        Example:
            >>> pending = Pending(reason="interrupt", state="act", event="Planned", steps=[
            ...     PendingStep(id="c1", tool="send", args={"to": "a@b.org", "api_key": "sk-1"})])
            >>> print(*pending.describe(), sep="\\n")
            waiting before act: a plan of 1 step
              c1: send(to='a@b.org', api_key='[redacted]')
        """
        redactor = default_redactor()
        if self.reason == "approval":
            lines = [f"waiting for approval in {self.state}:"]
            lines.extend(f"  {s.id}: {_text(s.question)}" for s in self.steps)
            return lines
        if self.event == "Planned" or self.steps:
            count = len(self.steps)
            lines = [f"waiting before {self.state}: a plan of {count} step{'s' * (count != 1)}"]
            for step in self.steps:
                args = redactor.redact(step.args)
                shown = ", ".join(f"{k}={_text(v, quoted=True)}" for k, v in args.items())
                after = f" (after {', '.join(step.depends_on)})" if step.depends_on else ""
                lines.append(f"  {step.id}: {step.tool}({shown}){after}")
            return lines
        lines = [f"waiting before {self.state}: {self.event or 'an event'}"]
        payload = redactor.redact(self.payload)
        lines.extend(f"  {k}: {_text(v)}" for k, v in payload.items())
        return lines


def _plan_steps(plan: Any) -> tuple[PendingStep, ...]:
    # The plan as recorded (its JSON dump); a trace from elsewhere may hold anything.
    if not isinstance(plan, Mapping) or not isinstance(plan.get("steps"), list):
        return ()
    steps = []
    for step in plan["steps"]:
        if not isinstance(step, Mapping):
            continue
        args = step.get("args")
        steps.append(
            PendingStep(
                id=str(step.get("id")),
                tool=str(step.get("tool")),
                args=dict(args) if isinstance(args, Mapping) else {},
                depends_on=tuple(str(d) for d in step.get("depends_on") or ()),
            )
        )
    return tuple(steps)


def _text(value: Any, *, quoted: bool = False) -> str:
    """``value`` on one line (a string as it is unless ``quoted``), cut at ``_SHOWN``."""
    text = repr(value) if quoted or not isinstance(value, str) else value
    text = default_redactor().scrub(" ".join(text.split()))
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
