"""The diagram IR: plain frozen dataclasses that every extractor builds and every renderer reads.

Extractors (:mod:`planloop.visualize.extract`) turn engine objects into a
:class:`Diagram`; renderers (:mod:`planloop.visualize.dot`,
:mod:`planloop.visualize.mermaid`) turn a diagram into text. Nothing here
knows about Graphviz or Mermaid: labels are plain text (newlines break lines),
colours are ``#rrggbb`` strings, and an edge may point at a node or at a whole
cluster.

Example:
    >>> d = Diagram(
    ...     title="two steps",
    ...     nodes=(Node("a", "fetch"), Node("b", "sum")),
    ...     edges=(Edge("a", "b"),),
    ... )
    >>> [n.id for n in d.nodes]
    ['a', 'b']
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields

from planloop.engine.redact import default_redactor

__all__ = ["Cluster", "Diagram", "Edge", "Node", "Style", "check_color", "check_diagram"]

_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def check_color(value: str | None, what: str = "colour") -> str | None:
    """Return ``value`` if it is ``None`` or a ``#rrggbb`` colour; raise ``ValueError`` otherwise.

    Only six-digit hex is accepted: Graphviz 2.42 (Debian, Ubuntu) paints
    ``#rgb`` black, and names differ between renderers.

    >>> check_color("#1b5e20")
    '#1b5e20'
    >>> check_color("red")
    Traceback (most recent call last):
    ...
    ValueError: colour must be a 6-digit hex colour like '#1b5e20', not 'red'
    """
    if value is not None and not _HEX.fullmatch(value):
        raise ValueError(f"{what} must be a 6-digit hex colour like '#1b5e20', not {value!r}")
    return value


_LINE_BREAKS = ("\r\n", "\r", "\u2028", "\u2029", "\x85")


def cut_label(text: str, max_chars: int) -> str:
    r"""``text`` with every kind of line break as ``\n``, cut to ``max_chars`` with an ellipsis.

    Both renderers start from this, so a label breaks and cuts the same way in
    DOT and in Mermaid.

    >>> cut_label("a\r\nb\x85c", 10)
    'a\nb\nc'
    >>> cut_label("abcdefgh", 5)
    'abcd…'
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, not {max_chars!r}")
    text = default_redactor().scrub(text)  # registered secrets never reach a picture
    for brk in _LINE_BREAKS:
        text = text.replace(brk, "\n")
    if len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return text


@dataclass(frozen=True)
class Node:
    """One box, ellipse or note.

    Attributes:
        id: unique in the diagram; derived from position, never from run data.
        label: plain text; ``\\n`` breaks lines.
        shape: a shape both DOT and Mermaid know: ``box``, ``ellipse``, ``circle``,
            ``point``, ``note``, ``doublecircle``, ``plaintext``.
        fill: background colour, or ``None`` for none.
        color: outline colour.
        font_color: text colour.
        style: extra outline styles: ``rounded``, ``dashed``, ``dotted``, ``bold``.
        penwidth: outline width.
        tooltip: hover text in SVG output.

    Example:
        >>> Node("fetch", "fetch the page", fill="#e3f2fd").shape
        'box'
        >>> Node("x", fill="blue; injected")  # colours are checked: labels cannot break out
        Traceback (most recent call last):
        ...
        ValueError: ...
    """

    id: str
    label: str = ""
    shape: str = "box"
    fill: str | None = None
    color: str | None = None
    font_color: str | None = None
    style: tuple[str, ...] = ()
    penwidth: float | None = None
    tooltip: str | None = None

    def __post_init__(self) -> None:
        check_color(self.fill, "Node.fill")
        check_color(self.color, "Node.color")
        check_color(self.font_color, "Node.font_color")


@dataclass(frozen=True)
class Edge:
    """An arrow from ``source`` to ``target``; each names a node or a cluster.

    Attributes:
        style: ``dashed``, ``dotted``, ``bold`` or ``invis`` (layout only).
        constraint: whether the edge takes part in ranking (``False`` lets it
            point backwards without bending the layout).

    Example:
        >>> edge = Edge("fetch", "clean", label="html", style=("dashed",))
        >>> edge.source, edge.target, edge.label, edge.constraint
        ('fetch', 'clean', 'html', True)
    """

    source: str
    target: str
    label: str = ""
    style: tuple[str, ...] = ()
    color: str | None = None
    font_color: str | None = None
    penwidth: float | None = None
    constraint: bool = True

    def __post_init__(self) -> None:
        check_color(self.color, "Edge.color")
        check_color(self.font_color, "Edge.font_color")


@dataclass(frozen=True)
class Cluster:
    """A labelled box around some nodes (and nested clusters).

    ``nodes`` are ids of nodes listed in :attr:`Diagram.nodes`; a node belongs
    to at most one cluster.

    Example:
        >>> etl = Cluster("etl", label="ETL", nodes=("fetch", "clean"))
        >>> [c.id for c in etl.walk()]
        ['etl']
    """

    id: str
    label: str = ""
    nodes: tuple[str, ...] = ()
    clusters: tuple[Cluster, ...] = ()
    style: tuple[str, ...] = ("rounded",)
    fill: str | None = None
    color: str | None = None
    font_color: str | None = None

    def __post_init__(self) -> None:
        check_color(self.fill, "Cluster.fill")
        check_color(self.color, "Cluster.color")
        check_color(self.font_color, "Cluster.font_color")

    def walk(self) -> Iterator[Cluster]:
        """This cluster and every cluster nested in it, depth first."""
        yield self
        for child in self.clusters:
            yield from child.walk()

    def first_node(self) -> str | None:
        """The first node of this cluster or of its sub-clusters (edges to a cluster use it)."""
        if self.nodes:
            return self.nodes[0]
        for child in self.clusters:
            found = child.first_node()
            if found is not None:
                return found
        return None


@dataclass(frozen=True)
class Diagram:
    """A whole picture.

    Attributes:
        title: shown above the picture.
        direction: ``LR`` (left to right) or ``TB`` (top to bottom).
        nodes: every node, in drawing order.
        edges: every edge, in drawing order.
        clusters: top-level clusters; nodes not in any cluster stand alone.

    Example:
        A picture of your own, drawn like planloop's (the text is what
        :func:`~planloop.visualize.ir_to_dot` and ``ir_to_mermaid`` write):

        >>> from planloop.visualize import ir_to_mermaid
        >>> diagram = Diagram(
        ...     title="pipeline",
        ...     direction="LR",
        ...     nodes=(Node("fetch", "fetch"), Node("clean", "clean")),
        ...     edges=(Edge("fetch", "clean", label="html"),),
        ...     clusters=(Cluster("etl", label="ETL", nodes=("fetch", "clean")),),
        ... )
        >>> print("\\n".join(ir_to_mermaid(diagram).splitlines()[4:9]))
          subgraph c_etl ["ETL"]
            n_fetch["fetch"]
            n_clean["clean"]
          end
          n_fetch -->|"html"| n_clean
    """

    title: str = ""
    direction: str = "TB"
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()
    clusters: tuple[Cluster, ...] = ()

    def all_clusters(self) -> Iterator[Cluster]:
        """Every cluster, nested ones included, depth first."""
        for cluster in self.clusters:
            yield from cluster.walk()


def check_diagram(diagram: Diagram) -> None:
    """Raise ``ValueError`` unless ``diagram`` is one every renderer can draw.

    Ids are unique across nodes and clusters, clusters list known nodes, a node
    sits in at most one cluster, and edges join known ids (a cluster only when
    it holds a node).

    >>> check_diagram(Diagram(nodes=(Node("a"),), edges=(Edge("a", "b"),)))
    Traceback (most recent call last):
    ...
    ValueError: edge 'a' -> 'b': unknown id 'b'
    """
    seen: set[str] = set()
    for item_id in [n.id for n in diagram.nodes] + [c.id for c in diagram.all_clusters()]:
        if item_id in seen:
            raise ValueError(f"diagram id {item_id!r} is used more than once")
        seen.add(item_id)
    node_ids = {n.id for n in diagram.nodes}
    placed: set[str] = set()
    for cluster in diagram.all_clusters():
        for node_id in cluster.nodes:
            if node_id not in node_ids:
                raise ValueError(f"cluster {cluster.id!r} lists unknown node {node_id!r}")
            if node_id in placed:
                raise ValueError(f"node {node_id!r} is in more than one cluster")
            placed.add(node_id)
    clusters = {c.id: c for c in diagram.all_clusters()}
    for edge in diagram.edges:
        for end in (edge.source, edge.target):
            if end not in seen:
                raise ValueError(f"edge {edge.source!r} -> {edge.target!r}: unknown id {end!r}")
            if end in clusters and clusters[end].first_node() is None:
                raise ValueError(
                    f"edge {edge.source!r} -> {edge.target!r}: cluster {end!r} is empty"
                )


@dataclass(frozen=True)
class Style:
    """Fonts, sizes and colours of every diagram (a config object, never stored on engine objects).

    Colours are ``#rrggbb`` only. Pass a modified copy to change the look:

    >>> import dataclasses
    >>> custom = dataclasses.replace(Style(), failed_fill="#ff8a80")
    >>> custom.failed_fill
    '#ff8a80'
    >>> Style(ink="#000")
    Traceback (most recent call last):
    ...
    ValueError: Style.ink must be a 6-digit hex colour like '#1b5e20', not '#000'
    """

    direction: str = "TB"
    font: str = "Helvetica"
    font_size: float = 11.0
    title_font_size: float = 15.0
    small_font_size: float = 9.0
    max_label_chars: int = 300
    """Labels longer than this are cut with an ellipsis by the DOT renderer."""
    preview_chars: int = 40
    """Outputs, errors and feedback are shown as previews this long."""
    legend: bool = True
    fold: int | None = 3
    """A run with more than ``2 * fold + 1`` acts and rejected outputs shows the
    first and last ``fold`` of them and counts the rest; ``None`` draws them all."""
    max_steps: int | None = 25
    """An act with more steps than this is folded: its first and last three
    steps (in plan order), then its failed, cancelled and unfinished steps
    (failed first) up to ``max_steps`` in all, and one note that counts the
    steps left out by status. ``None`` draws every step."""
    sub_agents: bool = True
    """Draw sub-agents' runs as nested clusters; ``False`` sums each up on its step."""

    ink: str = "#37474f"
    """Text, outlines and taken transitions."""
    faint: str = "#b0bec5"
    """Transitions never taken and states never visited."""
    state_fill: str = "#e3f2fd"
    state_color: str = "#1565c0"
    finished_fill: str = "#a5d6a7"
    finished_color: str = "#1b5e20"
    stopped_fill: str = "#ef9a9a"
    stopped_color: str = "#b71c1c"
    current_color: str = "#e65100"
    """Outline of the last state of a run that has not ended."""
    succeeded_fill: str = "#c8e6c9"
    succeeded_color: str = "#2e7d32"
    failed_fill: str = "#ffcdd2"
    failed_color: str = "#c62828"
    skipped_fill: str = "#eceff1"
    skipped_color: str = "#90a4ae"
    cancelled_fill: str = "#ffe0b2"
    cancelled_color: str = "#ef6c00"
    pending_fill: str = "#ffffff"
    pending_color: str = "#90a4ae"
    note_fill: str = "#fff9c4"
    note_color: str = "#f9a825"
    cluster_fill: str = "#fafafa"
    cluster_color: str = "#90a4ae"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "str" and f.name not in ("direction", "font"):
                check_color(value, f"Style.{f.name}")
        if self.direction not in ("LR", "TB", "RL", "BT"):
            raise ValueError(f"Style.direction must be LR, TB, RL or BT, not {self.direction!r}")
        if self.fold is not None and self.fold < 1:
            raise ValueError(f"Style.fold must be at least 1 or None, not {self.fold!r}")
        if self.max_steps is not None and self.max_steps < 7:
            raise ValueError(
                f"Style.max_steps must be at least 7 or None, not {self.max_steps!r} "
                "(an act folded keeps its first 3 and last 3 steps and one more)"
            )
        for name in ("max_label_chars", "preview_chars"):
            if getattr(self, name) < 2:
                raise ValueError(f"Style.{name} must be at least 2, not {getattr(self, name)!r}")
