"""Extractors: machine specs, plans and traces as diagram IR.

Every extractor is deterministic: node ids come from positions and names
(``s_plan``, ``a2_0``, ``r1``), never from run ids, timestamps or addresses,
so two equal runs give equal diagrams (with ``timings=False``, since durations
are data that differs between runs).

Example:
    >>> from planloop import MachineSpec
    >>> d = spec_to_ir(MachineSpec.default())
    >>> [n.id for n in d.nodes]
    ['start', 's_plan', 's_act', 's_observe', 's_finish', 's_stopped']
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from planloop.engine.plan import Plan, Step
from planloop.engine.result import RunResult
from planloop.engine.spec import MachineSpec, SpecSummary, TransitionRule
from planloop.engine.states import RunStatus, StepStatus
from planloop.engine.steps import StepResult
from planloop.engine.trace import RunEnded, StepFinished, StepStarted, Trace, Transitioned
from planloop.visualize.ir import Cluster, Diagram, Edge, Node, Style

__all__ = ["duration_text", "plan_to_ir", "preview", "spec_to_ir", "trace_to_ir"]

_SAFE_ID = re.compile(r"[A-Za-z0-9_]+")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_SPACE = re.compile(r"\s+")
_REJECTED = "Rejected"


def preview(value: Any, limit: int = 40) -> str:
    """A one-line preview of ``value``, at most ``limit`` characters.

    Strings are shown as they are, other values by ``repr`` with memory
    addresses dropped (they differ between runs).

    >>> preview("two\\n  lines")
    'two lines'
    >>> preview({"rows": list(range(30))}, 20)
    "{'rows': [0, 1, 2,…"
    >>> preview(object())
    '<object object>'
    """
    text = value if isinstance(value, str) else _ADDRESS.sub("", repr(value))
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        return text[: max(limit - 1, 0)].rstrip() + "…"
    return text


def duration_text(seconds: float) -> str:
    """Milliseconds with a precision that suits the size.

    >>> [duration_text(s) for s in (0.000123, 0.0456, 0.789, 12.3456)]
    ['0.12 ms', '45.6 ms', '789 ms', '12,346 ms']
    """
    ms = max(seconds, 0.0) * 1000.0
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 100:
        return f"{ms:.1f} ms"
    return f"{ms:,.0f} ms"


# --- machine -------------------------------------------------------------------


def spec_to_ir(spec: MachineSpec | SpecSummary, *, style: Style | None = None) -> Diagram:
    """The states and transitions of a machine, with a start marker on the initial state.

    Terminal states have a bold outline; each transition is labelled with its event.

    >>> from planloop import MachineSpec
    >>> d = spec_to_ir(MachineSpec.default())
    >>> [(e.source, e.label, e.target) for e in d.edges][:3]
    [('start', '', 's_plan'), ('s_plan', 'Planned', 's_act'), ('s_plan', 'Answered', 's_finish')]
    """
    st = style or Style()
    summary = spec.summary if isinstance(spec, MachineSpec) else spec
    ids = _state_ids(summary.states)
    nodes = [_start_node(st)]
    edges = [Edge("start", ids[summary.initial], color=st.ink)]
    for name in summary.states:
        nodes.append(_state_node(ids[name], str(name), name in summary.terminal, st))
    for rule in summary.transitions:
        edges.append(
            Edge(
                ids[rule.source],
                ids[rule.target],
                rule.event,
                color=st.ink,
                font_color=st.ink,
                constraint=_forward(summary, rule),
            )
        )
    return Diagram(title="machine", direction=st.direction, nodes=tuple(nodes), edges=tuple(edges))


def _state_ids(states: Iterable[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for index, name in enumerate(states):
        text = str(name)
        ids[name] = f"s_{text}" if _SAFE_ID.fullmatch(text) else f"s{index}"
    return ids


def _start_node(st: Style) -> Node:
    return Node("start", "", shape="point", fill=st.ink, color=st.ink, tooltip="start")


def _state_node(node_id: str, label: str, terminal: bool, st: Style) -> Node:
    return Node(
        node_id,
        label,
        shape="box",
        fill=st.state_fill,
        color=st.state_color,
        font_color=st.ink,
        style=("rounded", "bold") if terminal else ("rounded",),
        penwidth=2.0 if terminal else None,
    )


def _forward(summary: SpecSummary, rule: TransitionRule) -> bool:
    # An edge back to an earlier state (observe -> plan) must not pull the
    # ranks around: the loop then reads left to right, with the back edge on top.
    order = {s: i for i, s in enumerate(summary.states)}
    return order.get(rule.target, 0) > order.get(rule.source, 0)


# --- plan ----------------------------------------------------------------------


def plan_to_ir(plan: Plan, *, style: Style | None = None) -> Diagram:
    """The steps of a plan and the dependencies between them (``$ref`` edges included).

    A dependency on a step that is not in the plan is drawn as a dashed red node.

    >>> from planloop import Plan, Step, ref
    >>> p = Plan([Step(id="a", tool="lookup"), Step(id="b", tool="add", args={"x": ref("a")})])
    >>> [(e.source, e.target) for e in plan_to_ir(p).edges]
    [('p_0', 'p_1')]
    """
    st = style or Style()
    ids: dict[str, str] = {}
    for index, step in enumerate(plan.steps):
        ids.setdefault(step.id, f"p_{index}")
    nodes: list[Node] = []
    for index, step in enumerate(plan.steps):
        args = ", ".join(f"{k}={_arg_text(v)}" for k, v in step.args.items())
        lines = [f"{step.id} · {_tool_name(step)}"]
        if args:
            lines.append(preview(args, st.preview_chars))
        nodes.append(
            Node(
                f"p_{index}",
                "\n".join(lines),
                fill=st.pending_fill,
                color=st.state_color,
                font_color=st.ink,
                style=("rounded",),
            )
        )
    edges: list[Edge] = []
    missing: dict[str, str] = {}
    for index, step in enumerate(plan.steps):
        for dep in plan.dependencies(step):
            source = ids.get(dep)
            if source is None:
                source = missing.get(dep)
                if source is None:
                    source = missing[dep] = f"missing_{len(missing)}"
                    nodes.append(
                        Node(
                            source,
                            f"{dep}\n(not in the plan)",
                            color=st.failed_color,
                            font_color=st.failed_color,
                            style=("rounded", "dashed"),
                        )
                    )
            edges.append(Edge(source, f"p_{index}", color=st.ink))
    count = len(plan.steps)
    title = f"plan · {count} step" + ("" if count == 1 else "s")
    return Diagram(title=title, direction=st.direction, nodes=tuple(nodes), edges=tuple(edges))


def _tool_name(step: Step) -> str:
    # Plans built in Python may name a callable instead of a tool; its repr
    # would carry an address.
    tool: object = step.tool
    if isinstance(tool, str):
        return tool
    name = getattr(tool, "__qualname__", None) or getattr(tool, "__name__", None)
    return str(name) if name else type(tool).__name__


def _arg_text(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1 and "$ref" in value:
        return f"${value['$ref']}"
    return preview(repr(value), 1_000)


# --- trace ---------------------------------------------------------------------


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


def trace_to_ir(
    trace: Trace | RunResult, *, timings: bool = True, style: Style | None = None
) -> Diagram:
    """The picture of one run.

    It shows the loop's states with how often each was entered, the
    transitions taken with their counts (transitions never taken are faint
    and dashed), a start marker, the final state in green (finished) or red
    (stopped, with the reason), one cluster per act with its steps (status
    colour, duration, attempts, a preview of the output or error,
    dependency edges) and a note per rejected planner output.

    Args:
        trace: the run's trace (or its result).
        timings: show durations; turn off for output that must be identical
            between equal runs (golden files).
        style: fonts and colours.

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
    transitions = trace.transitions
    ended = trace.ended

    states: list[str] = [str(s) for s in summary.states] if summary else []
    for name in path:
        if name not in states:
            states.append(name)
    terminal = {str(s) for s in summary.terminal} if summary else set()
    ids = _state_ids(states)
    visits = Counter(path)
    final = path[-1] if path else None

    nodes: list[Node] = []
    edges: list[Edge] = []
    if summary is not None:
        nodes.append(_start_node(st))
        edges.append(Edge("start", ids[str(summary.initial)], color=st.ink, penwidth=1.5))
    for name in states:
        nodes.append(
            _visited_state(ids[name], name, visits[name], name in terminal, final, ended, st)
        )
    edges.extend(_transition_edges(summary, transitions, ids, st))

    clusters: list[Cluster] = []
    timeline: list[_Item] = []
    for entry in _timeline(trace):
        if isinstance(entry, _Act):
            cluster, act_nodes, act_edges = _act_cluster(entry, timings, st)
            clusters.append(cluster)
            nodes.extend(act_nodes)
            edges.extend(act_edges)
            timeline.append(_item(cluster.id, [n.id for n in act_nodes], act_edges))
        else:
            note = _rejection_node(entry, st)
            nodes.append(note)
            timeline.append(_Item(note.id, (note.id,), (note.id,)))
    edges.extend(_chain(timeline, st))
    if st.legend and clusters:
        legend, legend_nodes = _legend(st)
        clusters.append(legend)
        nodes.extend(legend_nodes)
        last = timeline[-1]
        edges.extend(Edge(s, legend_nodes[0].id, style=("invis",)) for s in last.sinks)

    return Diagram(
        title=_trace_title(trace, timings),
        direction=st.direction,
        nodes=tuple(nodes),
        edges=tuple(edges),
        clusters=tuple(clusters),
    )


def _trace_title(trace: Trace, timings: bool) -> str:
    started = trace.started
    name = started.name if started is not None and started.name else "run"
    ended = trace.ended
    parts = [name]
    if ended is None:
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
    node = _state_node(node_id, name if terminal else f"{name} ×{count}", terminal, st)
    if name == final:
        return Node(
            node.id,
            node.label + "\n(run not ended)",
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


@dataclass(frozen=True)
class _Item:
    """One entry of the timeline: an act's cluster or a rejection note."""

    id: str
    sources: tuple[str, ...]
    sinks: tuple[str, ...]


def _item(cluster_id: str, node_ids: Sequence[str], inner: Sequence[Edge]) -> _Item:
    has_in = {e.target for e in inner}
    has_out = {e.source for e in inner}
    return _Item(
        cluster_id,
        tuple(n for n in node_ids if n not in has_in),
        tuple(n for n in node_ids if n not in has_out),
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
            found = _Step(step.id, _tool_name(step), depends_on=act.plan.dependencies(step))
        if not found.depends_on:
            found.depends_on = act.plan.dependencies(step)
        if found not in ordered:
            ordered.append(found)
    ordered.extend(s for s in act.steps.values() if s not in ordered)
    return ordered


def _act_cluster(act: _Act, timings: bool, st: Style) -> tuple[Cluster, list[Node], list[Edge]]:
    steps = _ordered_steps(act)
    ids = {s.step_id: f"a{act.number}_{i}" for i, s in reversed(list(enumerate(steps)))}
    nodes = [_step_node(f"a{act.number}_{i}", s, timings, st) for i, s in enumerate(steps)]
    edges: list[Edge] = []
    for i, step in enumerate(steps):
        for dep in step.depends_on:
            if dep in ids:
                edges.append(Edge(ids[dep], f"a{act.number}_{i}", color=st.ink))
    label = f"act {act.number}"
    if timings and act.first_t is not None and act.last_t is not None:
        label += f" · {duration_text(act.last_t - act.first_t)}"
    cluster = Cluster(
        f"act{act.number}",
        label,
        nodes=tuple(n.id for n in nodes),
        fill=st.cluster_fill,
        color=st.cluster_color,
        font_color=st.ink,
    )
    return cluster, nodes, edges


def _step_node(node_id: str, step: _Step, timings: bool, st: Style) -> Node:
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


def _rejection_node(rejection: _Rejection, st: Style) -> Node:
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
        f"r{rejection.number}",
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
