"""The nodes of a run's picture: steps, rejected outputs, folded stretches, the legend.

Also the run's one-line summary (status, iterations, duration), which the
title, a sub-agent's cluster and a collapsed sub-agent's step all show.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from planloop.engine.states import RunStatus, StepStatus
from planloop.engine.steps import StepResult
from planloop.engine.trace import Trace
from planloop.visualize._timeline import Act, Folded, Rejection, StepView, paused
from planloop.visualize.extract import args_text, duration_text, preview
from planloop.visualize.ir import Cluster, Node, Style

__all__ = [
    "folded_node",
    "hidden_steps_node",
    "legend",
    "rejection_node",
    "run_summary",
    "step_node",
    "step_status",
]


def run_summary(trace: Trace, timings: bool) -> str:
    """``finished · 3 iterations · 12 ms``; a paused run names what it waits for."""
    ended = trace.ended
    parts = []
    pause = paused(trace)
    if pause is not None:
        questions = pause.pending.get("approval")
        if isinstance(questions, dict) and questions:
            asked = "; ".join(str(q) for q in questions.values())
            parts.append(f"paused for approval: {preview(asked, 60)}")
        else:
            parts.append(f"paused before {pause.state}")
    elif ended is None:
        parts.append("not ended")
    elif ended.status is RunStatus.stopped and ended.stop_reason is not None:
        parts.append(f"stopped: {ended.stop_reason.value}")
    else:
        parts.append(str(ended.status.value))
    iterations = ended.iterations if ended is not None else trace.iterations
    parts.append(f"{iterations} iteration" + ("" if iterations == 1 else "s"))
    if timings and trace.events:
        parts.append(duration_text(trace.duration))
    return " · ".join(parts)


def step_node(node_id: str, step: StepView, child: Trace | None, timings: bool, st: Style) -> Node:
    """A step: id and tool, status, attempts, duration, and a preview of its output or error."""
    result = step.result
    status = result.status if result is not None else None
    fill, color = _status_colors(status, st)
    head = f"{step.step_id} · {step.tool}" if step.tool else step.step_id
    facts = [step_status(step)]
    if result is not None and result.attempts > 1:
        facts.append(f"{result.attempts} attempts")
    if timings and result is not None and result.duration is not None:
        facts.append(duration_text(result.duration))
    lines = [head, " · ".join(facts)]
    if step.args:
        lines.append(preview(args_text(step.args), st.preview_chars))
    if result is not None:
        if status is StepStatus.succeeded:
            lines.append("= " + preview(result.output, st.preview_chars))
        elif result.error:
            lines.append(preview(result.error, st.preview_chars))
    if child is not None and not st.sub_agents:
        lines.append(f"sub-agent: {run_summary(child, timings)}")
    fatal = result is not None and result.fatal
    return Node(
        node_id,
        "\n".join(lines),
        fill=fill,
        color=color,
        font_color=st.ink,
        style=("rounded", "bold") if fatal else ("rounded",) if result else ("rounded", "dashed"),
        penwidth=2.5 if fatal else None,
        tooltip=_whole(result, step),
    )


def _whole(result: StepResult | None, step: StepView) -> str | None:
    """The text a step's label shortens, whole, for its tooltip: its error or its arguments."""
    if result is not None and result.status is not StepStatus.succeeded and result.error:
        return result.error
    if step.args:
        return args_text(step.args)
    return None


def step_status(step: StepView) -> str:
    """``succeeded``, ``failed`` ... or, for a step with no result, ``running``,
    ``waiting`` (for a decision) or ``not run``."""
    if step.result is not None:
        return step.result.status.value
    if step.started:
        return "running"
    return "waiting" if step.waiting else "not run"


def hidden_steps_node(
    node_id: str, act: Act, hidden: Sequence[StepView], total: int, st: Style
) -> Node:
    """A note in a folded act: how many steps it leaves out, by status, and where they all are."""
    statuses = Counter(step_status(s) for s in hidden)
    counts = ", ".join(f"{n:,} {status}" for status, n in sorted(statuses.items()))
    many = len(hidden)
    return Node(
        node_id,
        f"⋯ {many:,} more step{'' if many == 1 else 's'} not drawn\n{counts}",
        shape="note",
        fill=st.cluster_fill,
        color=st.cluster_color,
        font_color=st.ink,
        style=("dashed",),
        tooltip=(
            f"act {act.number} ran {total:,} steps; {many:,} are not drawn. "
            "Every step is in the trace (result.trace.to_json()); "
            "to_dot(result, style=Style(max_steps=None)) draws them all."
        ),
    )


def _status_colors(status: StepStatus | None, st: Style) -> tuple[str, str]:
    if status is StepStatus.succeeded:
        return st.succeeded_fill, st.succeeded_color
    if status is StepStatus.failed:
        return st.failed_fill, st.failed_color
    if status is StepStatus.skipped:
        return st.skipped_fill, st.skipped_color
    if status is StepStatus.cancelled:
        return st.cancelled_fill, st.cancelled_color
    return st.pending_fill, st.pending_color


def rejection_node(rejection: Rejection, prefix: str, st: Style) -> Node:
    """A note with the rejected output's error and the feedback the planner got."""
    payload = rejection.event.payload
    error = str(payload.get("error") or "output rejected")
    lines = [f"rejected #{rejection.number}: {preview(error, st.preview_chars)}"]
    feedback = whole = str(payload.get("feedback") or "").strip()
    if not whole.startswith(error):
        whole = f"{error}\n{whole}".strip()
    first, _, rest = feedback.partition("\n")
    if rest.strip() and first.startswith(error):
        # "invalid plan (1 problem):" repeats the error; the problems follow it.
        feedback = rest
    if feedback:
        lines.append(preview(feedback, st.preview_chars))
    return Node(
        f"{prefix}r{rejection.number}",
        "\n".join(lines),
        shape="note",
        fill=st.note_fill,
        color=st.note_color,
        font_color=st.ink,
        tooltip=whole,  # the label cuts the error and the feedback
    )


def folded_node(folded: Folded, prefix: str, st: Style) -> Node:
    """A note counting the acts, rejections and step statuses a folded stretch holds."""
    acts = [e for e in folded.entries if isinstance(e, Act)]
    rejections = len(folded.entries) - len(acts)
    parts = []
    if acts:
        parts.append(
            f"act {acts[0].number}"
            if len(acts) == 1
            else f"acts {acts[0].number}–{acts[-1].number}"
        )
    if rejections:
        parts.append(f"{rejections} rejected output" + ("" if rejections == 1 else "s"))
    lines = ["⋯ " + " and ".join(parts) + " not drawn"]
    statuses = Counter(
        s.result.status.value if s.result is not None else "not run"
        for act in acts
        for s in act.steps.values()
    )
    if statuses:
        total = sum(statuses.values())
        counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        lines.append(f"{total} step" + ("" if total == 1 else "s") + f": {counts}")
    return Node(
        f"{prefix}folded",
        "\n".join(lines),
        shape="note",
        fill=st.cluster_fill,
        color=st.cluster_color,
        font_color=st.ink,
        style=("dashed",),
    )


def legend(st: Style) -> tuple[Cluster, list[Node]]:
    """A cluster with one node per terminal step status, in its colours."""
    nodes = []
    for status in (
        StepStatus.succeeded,
        StepStatus.failed,
        StepStatus.skipped,
        StepStatus.cancelled,
    ):
        fill, color = _status_colors(status, st)
        nodes.append(
            Node(
                f"legend_{status.value}",
                status.value,
                fill=fill,
                color=color,
                font_color=st.ink,
                style=("rounded",),
            )
        )
    cluster = Cluster(
        "legend",
        "step status",
        nodes=tuple(n.id for n in nodes),
        color=st.faint,
        font_color=st.ink,
    )
    return cluster, nodes
