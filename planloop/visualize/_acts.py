"""Drawing a run's timeline: a cluster per act, a note per rejected output or folded stretch.

Acts run down the page in the order they happened. An act of more than
``Style.max_steps`` steps draws only some of them (``steps_to_draw``) and a
note for the rest. A sub-agent's run is drawn the same way, as a cluster
nested in the act of the step that ran it, its node ids prefixed with that
step's node id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from planloop.engine.states import StepStatus
from planloop.engine.trace import Trace
from planloop.visualize._run_nodes import (
    folded_node,
    hidden_steps_node,
    rejection_node,
    run_summary,
    step_node,
)
from planloop.visualize._timeline import (
    Act,
    Folded,
    Rejection,
    StepView,
    ordered_steps,
    timeline,
)
from planloop.visualize.extract import duration_text, preview
from planloop.visualize.ir import Cluster, Edge, Node, Style

__all__ = ["Body", "Item", "draw_timeline", "steps_to_draw"]


@dataclass
class Body:
    """What the timeline of a run (or a sub-agent's run) adds to the picture."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)


@dataclass(frozen=True)
class Item:
    """One entry of the timeline as drawn: an act's cluster, a note."""

    id: str
    sources: tuple[str, ...]
    sinks: tuple[str, ...]


def draw_timeline(
    trace: Trace,
    entries: Sequence[Act | Rejection],
    prefix: str,
    timings: bool,
    st: Style,
    body: Body,
) -> list[Item]:
    """Draw the acts and rejections of ``trace`` (its ``timeline``) into ``body``, folded if long.

    Returns the items in order; empty for a run that never acted nor had an
    output rejected.
    """
    keep: list[Act | Rejection | Folded] = list(entries)
    fold = st.fold
    if fold is not None and len(entries) > 2 * fold + 1:
        keep = [*entries[:fold], Folded(entries[fold:-fold]), *entries[-fold:]]
    items: list[Item] = []
    for entry in keep:
        if isinstance(entry, Act):
            items.append(_draw_act(trace, entry, prefix, timings, st, body))
            continue
        if isinstance(entry, Rejection):
            note = rejection_node(entry, prefix, st)
        else:
            note = folded_node(entry, prefix, st)
        body.nodes.append(note)
        items.append(Item(note.id, (note.id,), (note.id,)))
    body.edges.extend(_chain(items, st))
    return items


def _draw_act(trace: Trace, act: Act, prefix: str, timings: bool, st: Style, body: Body) -> Item:
    steps = ordered_steps(act)
    base = f"{prefix}a{act.number}"
    ids = {s.step_id: f"{base}_{i}" for i, s in reversed(list(enumerate(steps)))}
    drawn = steps_to_draw(steps, st.max_steps)
    children = trace.children
    nodes: list[Node] = []
    nested: list[Cluster] = []
    for i in drawn:
        step, node_id = steps[i], f"{base}_{i}"
        child = children.get(step.step_id)
        if child is not None and ids[step.step_id] != node_id:
            child = None  # a repeated id: the sub-agent belongs to the first one
        nodes.append(step_node(node_id, step, child, timings, st))
        if child is not None and st.sub_agents:
            nested.append(_draw_child(child, node_id, step.step_id, timings, st, body))
    note = None
    if len(drawn) < len(steps):
        shown = set(drawn)
        hidden = [s for i, s in enumerate(steps) if i not in shown]
        note = hidden_steps_node(f"{base}_more", act, hidden, len(steps), st)
        # Where the first hidden step would be: Graphviz keeps the order of a rank.
        nodes.insert(next(n for n, i in enumerate([*drawn, len(steps)]) if i != n), note)
    inner = _act_edges(steps, drawn, ids, base, note.id if note else None, st)
    label = f"act {act.number}"
    if timings and act.first_t is not None and act.last_t is not None:
        label += f" · {duration_text(act.last_t - act.first_t)}"
    if act.before is not None:
        label = f"waiting for a decision · before {act.before}"
    elif act.waiting:
        label += " · waiting for a decision"
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
    return Item(
        f"{prefix}act{act.number}",
        tuple(n.id for n in nodes if n.id not in has_in),
        tuple(n.id for n in nodes if n.id not in has_out),
    )


# Rank of the steps a folded act draws besides its first and last ones: the
# failed step that ended the run (fatal), other failed steps, cancelled ones,
# then those that never finished. Succeeded and skipped steps are only counted.
_NOTABLE = {StepStatus.failed: 1, StepStatus.cancelled: 2}
_ENDS = 3


def steps_to_draw(steps: Sequence[StepView], limit: int | None) -> list[int]:
    """The positions of the steps an act draws, in order: all of them up to ``limit``.

    A longer act draws its first and last three steps and then its failed,
    cancelled and unfinished steps (see ``_NOTABLE``), up to ``limit`` in all.
    """
    count = len(steps)
    if limit is None or count <= limit:
        return list(range(count))
    keep = {*range(_ENDS), *range(count - _ENDS, count)}
    ranked: list[list[int]] = [[], [], [], []]
    for i in range(_ENDS, count - _ENDS):
        result = steps[i].result
        if result is None:
            ranked[3].append(i)
        elif result.status in _NOTABLE:
            ranked[0 if result.fatal else _NOTABLE[result.status]].append(i)
    notable = [i for rank in ranked for i in rank]
    keep.update(notable[: limit - len(keep)])
    return sorted(keep)


def _act_edges(
    steps: Sequence[StepView],
    drawn: Sequence[int],
    ids: Mapping[str, str],
    base: str,
    note: str | None,
    st: Style,
) -> list[Edge]:
    """Dependency edges between the drawn steps of an act.

    In a folded act (``note`` is the id of its note) a drawn step that needs a
    hidden one gets an edge from the note, and a drawn step that a hidden one
    needs gets an edge to it, so chains still read through the fold.
    """
    shown = {f"{base}_{i}" for i in drawn}
    edges: list[Edge] = []
    via_note: dict[tuple[str, str], None] = {}
    for i in drawn:
        node_id = f"{base}_{i}"
        for dep in steps[i].depends_on:
            source = ids.get(dep)
            if source in shown:
                edges.append(Edge(source, node_id, color=st.ink))
            elif source is not None and note is not None:
                via_note[(note, node_id)] = None
    if note is not None:
        hidden = (s for i, s in enumerate(steps) if f"{base}_{i}" not in shown)
        for step in hidden:
            for dep in step.depends_on:
                source = ids.get(dep)
                if source in shown:
                    via_note[(source, note)] = None
    edges.extend(Edge(a, b, color=st.ink, style=("dashed",)) for a, b in via_note)
    return edges


def _draw_child(
    child: Trace, step_node_id: str, step_id: str, timings: bool, st: Style, body: Body
) -> Cluster:
    """A sub-agent's run as a cluster of its own acts, hung below the step that ran it."""
    prefix = f"{step_node_id}_"
    inner = Body()
    items = draw_timeline(child, timeline(child), prefix, timings, st, inner)
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
        items = [Item(note.id, (note.id,), (note.id,))]
    body.nodes.extend(inner.nodes)
    body.edges.extend(inner.edges)
    body.edges.append(
        Edge(step_node_id, items[0].sources[0], style=("dashed",), color=st.faint, penwidth=1.0)
    )
    return Cluster(
        f"{prefix}sub",
        f"sub-agent of {step_id} · {run_summary(child, timings)}",
        nodes=tuple(own),
        clusters=tuple(inner.clusters),
        style=("rounded", "dashed"),
        color=st.cluster_color,
        font_color=st.ink,
    )


# Past this many sink-source pairs (two wide acts drawn unfolded) the
# invisible edges below join every sink to one source and one sink to every
# source instead, so their number grows with the acts' width, not its square.
_MESH = 400


def _chain(drawn: Sequence[Item], st: Style) -> list[Edge]:
    # Acts and rejections run down the page in the order they happened: a faint
    # arrow from each to the next, and invisible edges from every last step to
    # every first step so a wide act never overlaps the next one.
    edges: list[Edge] = []
    for before, after in pairwise(drawn):
        edges.append(Edge(before.id, after.id, color=st.faint, penwidth=1.0))
        sinks, sources = before.sinks, after.sources
        if len(sinks) * len(sources) <= _MESH:
            pairs = [(sink, source) for sink in sinks for source in sources]
        else:
            pairs = [(sink, sources[0]) for sink in sinks]
            pairs += [(sinks[-1], source) for source in sources[1:]]
        edges.extend(
            Edge(sink, source, style=("invis",))
            for sink, source in pairs
            if (sink, source) != (before.id, after.id)
        )
    return edges
