"""The picture of one run: its loop, its acts, rejected outputs, sub-agents.

Node ids come from positions (``s_plan``, ``a2_0``, ``r1``; a sub-agent's
nodes carry the id of the step that ran it as a prefix), never from run ids,
timestamps or addresses, so two equal runs give equal diagrams with
``timings=False``.

Long runs are folded: the first and last ``Style.fold`` acts or rejections
are drawn, and one note counts what lies between, so a run of 1,000
iterations stays a readable page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from planloop.engine.plan import Plan
from planloop.engine.result import RunResult
from planloop.engine.spec import SpecSummary
from planloop.engine.states import RunStatus, StepStatus
from planloop.engine.steps import StepResult
from planloop.engine.trace import (
    RunEnded,
    RunPaused,
    StepFinished,
    StepStarted,
    Trace,
    Transitioned,
)
from planloop.visualize.extract import (
    duration_text,
    preview,
    start_node,
    state_ids,
    state_node,
    tool_name,
)
from planloop.visualize.ir import Cluster, Diagram, Edge, Node, Style

__all__ = ["trace_to_ir"]

_REJECTED = "Rejected"


def trace_to_ir(
    trace: Trace | RunResult, *, timings: bool = True, style: Style | None = None
) -> Diagram:
    """The picture of one run.

    It shows the loop's states with how often each was entered, the
    transitions taken with their counts (transitions never taken are faint
    and dashed), a start marker, the final state in green (finished) or red
    (stopped, with the reason), one cluster per act with its steps (status
    colour, duration, attempts, a preview of the output or error,
    dependency edges), a note per rejected planner output, and the runs of
    sub-agents as clusters nested in the step that ran them
    (``Style(sub_agents=False)`` collapses them into a line on that step).
    Runs with more than ``2 * Style.fold + 1`` acts and rejections are folded.

    Args:
        trace: the run's trace (or its result).
        timings: show durations; turn off for output that must be identical
            between equal runs (golden files).
        style: fonts, colours, folding and sub-agent options.

    Example:
        >>> from planloop import Agent, FunctionPlanner, Answer
        >>> run = Agent(None, [], planner=FunctionPlanner(lambda ctx: Answer("hi"))).run_sync("x")
        >>> d = trace_to_ir(run.trace, timings=False)
        >>> [n.label for n in d.nodes if n.id in ("s_plan", "s_finish", "s_act")]
        ['plan ×1', 'act', 'finish\\n= hi']
    """
    st = style or Style()
    if isinstance(trace, RunResult):
        trace = trace.trace
    summary = trace.machine
    path = [str(s) for s in trace.states]
    ended = trace.ended

    states: list[str] = [str(s) for s in summary.states] if summary else []
    for name in path:
        if name not in states:
            states.append(name)
    terminal = {str(s) for s in summary.terminal} if summary else set()
    ids = state_ids(states)
    visits = Counter(path)
    final = path[-1] if path else None
    paused = _paused(trace)

    nodes: list[Node] = []
    edges: list[Edge] = []
    if summary is not None:
        nodes.append(start_node(st))
        edges.append(Edge("start", ids[str(summary.initial)], color=st.ink, penwidth=1.5))
    for name in states:
        nodes.append(
            _visited_state(
                ids[name], name, visits[name], name in terminal, final, ended, st, paused
            )
        )
    edges.extend(_transition_edges(summary, trace.transitions, ids, st))

    body = _Body()
    items = _draw_timeline(trace, "", timings, st, body)
    nodes.extend(body.nodes)
    edges.extend(body.edges)
    clusters = list(body.clusters)
    if st.legend and any(isinstance(e, _Act) for e in _timeline(trace)):
        legend, legend_nodes = _legend(st)
        clusters.append(legend)
        nodes.extend(legend_nodes)
        edges.extend(Edge(s, legend_nodes[0].id, style=("invis",)) for s in items[-1].sinks)

    return Diagram(
        title=_trace_title(trace, timings),
        direction=st.direction,
        nodes=tuple(nodes),
        edges=tuple(edges),
        clusters=tuple(clusters),
    )


# --- what a trace holds, per act ------------------------------------------------


@dataclass
class _Step:
    step_id: str
    tool: str = ""
    started: bool = False
    result: StepResult | None = None
    depends_on: tuple[str, ...] = ()


@dataclass
class _Act:
    number: int
    steps: dict[str, _Step] = field(default_factory=dict)
    plan: Plan | None = None
    first_t: float | None = None
    last_t: float | None = None


@dataclass
class _Rejection:
    number: int
    event: Transitioned


def _timeline(trace: Trace) -> list[_Act | _Rejection]:
    """Acts and rejected planner outputs, in the order they happened."""
    acts: dict[int, _Act] = {}
    entries: list[_Act | _Rejection] = []
    rejected = 0
    pending_plan: Plan | None = None
    for event in trace.events:
        if isinstance(event, Transitioned):
            if event.event == _REJECTED:
                rejected += 1
                entries.append(_Rejection(rejected, event))
            elif "plan" in event.payload:
                pending_plan = _plan_from_payload(event.payload["plan"])
        elif isinstance(event, StepStarted | StepFinished):
            act = acts.get(event.act)
            if act is None:
                act = acts[event.act] = _Act(event.act, plan=pending_plan)
                entries.append(act)
                pending_plan = None
            act.first_t = event.t if act.first_t is None else min(act.first_t, event.t)
            act.last_t = event.t if act.last_t is None else max(act.last_t, event.t)
            if isinstance(event, StepStarted):
                step = act.steps.setdefault(event.step_id, _Step(event.step_id))
                step.tool = step.tool or event.tool
                step.started = True
                step.depends_on = step.depends_on or event.depends_on
            else:
                result = event.result
                step = act.steps.setdefault(result.step_id, _Step(result.step_id))
                step.tool = result.tool or step.tool
                step.result = result
                step.depends_on = event.depends_on or step.depends_on
    return entries


def _plan_from_payload(data: Any) -> Plan | None:
    # The payload is the plan dumped as JSON; a trace from elsewhere may hold
    # something else, and then the steps are simply shown in the order they ran.
    if not isinstance(data, dict):
        return None
    try:
        return Plan.model_validate(data)
    except ValueError:
        return None


def _ordered_steps(act: _Act) -> list[_Step]:
    # Steps end in whatever order they finish; the plan's order is stable.
    if act.plan is None:
        return list(act.steps.values())
    ordered: list[_Step] = []
    for step in act.plan.steps:
        found = act.steps.get(step.id)
        if found is None:
            found = _Step(step.id, tool_name(step), depends_on=act.plan.dependencies(step))
        if not found.depends_on:
            found.depends_on = act.plan.dependencies(step)
        if found not in ordered:
            ordered.append(found)
    ordered.extend(s for s in act.steps.values() if s not in ordered)
    return ordered


# --- drawing the timeline ---------------------------------------------------------


@dataclass
class _Body:
    """What the timeline of a run (or a sub-agent's run) adds to the picture."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)


@dataclass(frozen=True)
class _Item:
    """One entry of the timeline as drawn: an act's cluster, a note."""

    id: str
    sources: tuple[str, ...]
    sinks: tuple[str, ...]


def _draw_timeline(trace: Trace, prefix: str, timings: bool, st: Style, body: _Body) -> list[_Item]:
    """Draw the acts and rejections of ``trace`` into ``body``, folded if long.

    Returns the items in order; empty for a run that never acted nor had an
    output rejected.
    """
    entries = _timeline(trace)
    keep: list[_Act | _Rejection | _Folded] = list(entries)
    fold = st.fold
    if fold is not None and len(entries) > 2 * fold + 1:
        keep = [*entries[:fold], _Folded(entries[fold:-fold]), *entries[-fold:]]
    items: list[_Item] = []
    for entry in keep:
        if isinstance(entry, _Act):
            items.append(_draw_act(trace, entry, prefix, timings, st, body))
        elif isinstance(entry, _Rejection):
            note = _rejection_node(entry, prefix, st)
            body.nodes.append(note)
            items.append(_Item(note.id, (note.id,), (note.id,)))
        else:
            note = _folded_node(entry, prefix, st)
            body.nodes.append(note)
            items.append(_Item(note.id, (note.id,), (note.id,)))
    body.edges.extend(_chain(items, st))
    return items


def _draw_act(trace: Trace, act: _Act, prefix: str, timings: bool, st: Style, body: _Body) -> _Item:
    steps = _ordered_steps(act)
    base = f"{prefix}a{act.number}"
    ids = {s.step_id: f"{base}_{i}" for i, s in reversed(list(enumerate(steps)))}
    children = trace.children
    nodes: list[Node] = []
    inner: list[Edge] = []
    nested: list[Cluster] = []
    for i, step in enumerate(steps):
        node_id = f"{base}_{i}"
        child = children.get(step.step_id)
        if child is not None and ids[step.step_id] != node_id:
            child = None  # a repeated id: the sub-agent belongs to the first one
        nodes.append(_step_node(node_id, step, child, timings, st))
        for dep in step.depends_on:
            if dep in ids:
                inner.append(Edge(ids[dep], node_id, color=st.ink))
        if child is not None and st.sub_agents:
            nested.append(_draw_child(child, node_id, step.step_id, timings, st, body))
    label = f"act {act.number}"
    if timings and act.first_t is not None and act.last_t is not None:
        label += f" · {duration_text(act.last_t - act.first_t)}"
    body.clusters.append(
        Cluster(
            f"{prefix}act{act.number}",
            label,
            nodes=tuple(n.id for n in nodes),
            clusters=tuple(nested),
            fill=st.cluster_fill,
            color=st.cluster_color,
            font_color=st.ink,
        )
    )
    body.nodes.extend(nodes)
    body.edges.extend(inner)
    has_in = {e.target for e in inner}
    has_out = {e.source for e in inner}
    return _Item(
        f"{prefix}act{act.number}",
        tuple(n.id for n in nodes if n.id not in has_in),
        tuple(n.id for n in nodes if n.id not in has_out),
    )


def _draw_child(
    child: Trace, step_node: str, step_id: str, timings: bool, st: Style, body: _Body
) -> Cluster:
    """A sub-agent's run as a cluster of its own acts, hung below the step that ran it."""
    prefix = f"{step_node}_"
    inner = _Body()
    items = _draw_timeline(child, prefix, timings, st, inner)
    clustered = {n for c in inner.clusters for inside in c.walk() for n in inside.nodes}
    own = [n.id for n in inner.nodes if n.id not in clustered]
    if not items:  # the sub-agent answered without acting: one note says so
        ended = child.ended
        text = preview(ended.output, st.preview_chars) if ended is not None else "not ended"
        note = Node(
            f"{prefix}answer",
            f"answered directly\n= {text}",
            shape="note",
            fill=st.note_fill,
            color=st.note_color,
            font_color=st.ink,
        )
        inner.nodes.append(note)
        own.append(note.id)
        items = [_Item(note.id, (note.id,), (note.id,))]
    body.nodes.extend(inner.nodes)
    body.edges.extend(inner.edges)
    body.edges.append(
        Edge(step_node, items[0].sources[0], style=("dashed",), color=st.faint, penwidth=1.0)
    )
    return Cluster(
        f"{prefix}sub",
        f"sub-agent of {step_id} · {_run_summary(child, timings)}",
        nodes=tuple(own),
        clusters=tuple(inner.clusters),
        style=("rounded", "dashed"),
        color=st.cluster_color,
        font_color=st.ink,
    )


def _chain(timeline: Sequence[_Item], st: Style) -> list[Edge]:
    # Acts and rejections run down the page in the order they happened: a faint
    # arrow from each to the next, and invisible edges from every last step to
    # every first step so a wide act never overlaps the next one.
    edges: list[Edge] = []
    for before, after in pairwise(timeline):
        edges.append(Edge(before.id, after.id, color=st.faint, penwidth=1.0))
        edges.extend(
            Edge(sink, source, style=("invis",))
            for sink in before.sinks
            for source in after.sources
            if (sink, source) != (before.id, after.id)
        )
    return edges


@dataclass
class _Folded:
    """The acts and rejections a long run's picture leaves out, counted."""

    entries: Sequence[_Act | _Rejection]


def _folded_node(folded: _Folded, prefix: str, st: Style) -> Node:
    acts = [e for e in folded.entries if isinstance(e, _Act)]
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


# --- nodes --------------------------------------------------------------------------


def _paused(trace: Trace) -> RunPaused | None:
    """The pause a run is waiting in (its last event), if it is paused."""
    last = trace.events[-1] if trace.events else None
    return last if isinstance(last, RunPaused) else None


def _trace_title(trace: Trace, timings: bool) -> str:
    started = trace.started
    name = started.name if started is not None and started.name else "run"
    return f"{name} · {_run_summary(trace, timings)}"


def _run_summary(trace: Trace, timings: bool) -> str:
    ended = trace.ended
    parts = []
    paused = _paused(trace)
    if paused is not None:
        questions = paused.pending.get("approval")
        if isinstance(questions, dict) and questions:
            asked = "; ".join(str(q) for q in questions.values())
            parts.append(f"paused for approval: {preview(asked, 60)}")
        else:
            parts.append(f"paused before {paused.state}")
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


def _visited_state(
    node_id: str,
    name: str,
    count: int,
    terminal: bool,
    final: str | None,
    ended: RunEnded | None,
    st: Style,
    paused: RunPaused | None = None,
) -> Node:
    if name == final and ended is not None:
        ok = ended.status is RunStatus.finished
        lines = [name]
        if ended.stop_reason is not None:
            lines.append(ended.stop_reason.value)
        if ended.error:
            lines.append(preview(ended.error, st.preview_chars))
        elif ok and ended.output is not None:
            lines.append("= " + preview(ended.output, st.preview_chars))
        return Node(
            node_id,
            "\n".join(lines),
            fill=st.finished_fill if ok else st.stopped_fill,
            color=st.finished_color if ok else st.stopped_color,
            font_color=st.ink,
            style=("rounded", "bold"),
            penwidth=2.5,
        )
    if count == 0:
        return Node(
            node_id,
            name,
            color=st.faint,
            font_color=st.faint,
            style=("rounded", "dashed"),
        )
    node = state_node(node_id, name if terminal else f"{name} ×{count}", terminal, st)
    if name == final:
        return Node(
            node.id,
            node.label + ("\n(paused)" if paused is not None else "\n(run not ended)"),
            fill=node.fill,
            color=st.current_color,
            font_color=node.font_color,
            style=("rounded", "bold"),
            penwidth=2.5,
        )
    return node


def _transition_edges(
    summary: SpecSummary | None,
    transitions: Sequence[Transitioned],
    ids: Mapping[str, str],
    st: Style,
) -> list[Edge]:
    taken = Counter((t.source, t.event, t.target) for t in transitions)
    rules: list[tuple[str, str, str]] = []
    if summary is not None:
        rules.extend((str(r.source), r.event, str(r.target)) for r in summary.transitions)
    for t in transitions:
        key = (t.source, t.event, t.target)
        if key not in rules:
            rules.append(key)
    order = {s: i for i, s in enumerate(ids)}
    edges: list[Edge] = []
    for source, event, target in rules:
        count = taken[(source, event, target)]
        forward = order[target] > order[source]
        if count:
            edges.append(
                Edge(
                    ids[source],
                    ids[target],
                    f"{event} ×{count}",
                    color=st.ink,
                    font_color=st.ink,
                    penwidth=1.5,
                    constraint=forward,
                )
            )
        else:
            edges.append(
                Edge(
                    ids[source],
                    ids[target],
                    event,
                    style=("dashed",),
                    color=st.faint,
                    font_color=st.faint,
                    constraint=forward,
                )
            )
    return edges


def _step_node(node_id: str, step: _Step, child: Trace | None, timings: bool, st: Style) -> Node:
    result = step.result
    status = result.status if result is not None else None
    fill, color = _status_colors(status, st)
    head = f"{step.step_id} · {step.tool}" if step.tool else step.step_id
    facts = [status.value if status is not None else ("running" if step.started else "not run")]
    if result is not None and result.attempts > 1:
        facts.append(f"{result.attempts} attempts")
    if timings and result is not None and result.duration is not None:
        facts.append(duration_text(result.duration))
    lines = [head, " · ".join(facts)]
    if result is not None:
        if status is StepStatus.succeeded:
            lines.append("= " + preview(result.output, st.preview_chars))
        elif result.error:
            lines.append(preview(result.error, st.preview_chars))
    if child is not None and not st.sub_agents:
        lines.append(f"sub-agent: {_run_summary(child, timings)}")
    fatal = result is not None and result.fatal
    return Node(
        node_id,
        "\n".join(lines),
        fill=fill,
        color=color,
        font_color=st.ink,
        style=("rounded", "bold") if fatal else ("rounded",) if result else ("rounded", "dashed"),
        penwidth=2.5 if fatal else None,
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


def _rejection_node(rejection: _Rejection, prefix: str, st: Style) -> Node:
    payload = rejection.event.payload
    error = str(payload.get("error") or "output rejected")
    lines = [f"rejected #{rejection.number}: {preview(error, st.preview_chars)}"]
    feedback = str(payload.get("feedback") or "").strip()
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
    )


def _legend(st: Style) -> tuple[Cluster, list[Node]]:
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
