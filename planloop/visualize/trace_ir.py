"""The picture of one run: its loop, its acts, rejected outputs, sub-agents.

Node ids come from positions (``s_plan``, ``a2_0``, ``r1``; a sub-agent's
nodes carry the id of the step that ran it as a prefix), never from run ids,
timestamps or addresses, so two equal runs give equal diagrams with
``timings=False``.

Long runs are folded: the first and last ``Style.fold`` acts or rejections
are drawn, and one note counts what lies between, so a run of 1,000
iterations stays a readable page. Large acts are folded the same way: an act
of more than ``Style.max_steps`` steps draws its first and last three steps,
its failed, cancelled and unfinished ones up to that many, and one note
(``a1_more``) counting the rest by status, so a workflow of 10,000 steps
does too. The trace keeps every step; ``Style(max_steps=None)`` draws them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from planloop.engine.result import RunResult
from planloop.engine.spec import SpecSummary
from planloop.engine.states import RunStatus
from planloop.engine.trace import RunEnded, RunPaused, Trace, Transitioned
from planloop.visualize._acts import Body, draw_timeline
from planloop.visualize._run_nodes import legend, run_summary
from planloop.visualize._timeline import Act, paused, timeline
from planloop.visualize.extract import preview, start_node, state_ids, state_node
from planloop.visualize.ir import Diagram, Edge, Node, Style

__all__ = ["trace_to_ir"]


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
    Runs with more than ``2 * Style.fold + 1`` acts and rejections are folded,
    and so are acts with more than ``Style.max_steps`` steps (see the module's
    docstring); the note of a folded act says in its tooltip where every step is.

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
    pause = paused(trace)

    nodes: list[Node] = []
    edges: list[Edge] = []
    if summary is not None:
        nodes.append(start_node(st))
        edges.append(Edge("start", ids[str(summary.initial)], color=st.ink, penwidth=1.5))
    for name in states:
        nodes.append(
            _visited_state(ids[name], name, visits[name], name in terminal, final, ended, st, pause)
        )
    edges.extend(_transition_edges(summary, trace.transitions, ids, st))

    body = Body()
    entries = timeline(trace)
    items = draw_timeline(trace, entries, "", timings, st, body)
    nodes.extend(body.nodes)
    edges.extend(body.edges)
    clusters = list(body.clusters)
    if st.legend and any(isinstance(e, Act) for e in entries):
        key, legend_nodes = legend(st)
        clusters.append(key)
        nodes.extend(legend_nodes)
        edges.extend(Edge(s, legend_nodes[0].id, style=("invis",)) for s in items[-1].sinks)

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
    return f"{name} · {run_summary(trace, timings)}"


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
            tooltip=ended.error or None,  # whole: the label shows its start
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
