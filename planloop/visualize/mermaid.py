r"""Diagram IR as Mermaid flowchart text: pure, deterministic, every label escaped by one function.

Mermaid text needs no Graphviz: GitHub and GitLab draw it in a fenced
```` ```mermaid ```` block, and so do many documentation sites.

Example:
    >>> from planloop.visualize.ir import Diagram, Edge, Node
    >>> d = Diagram(nodes=(Node("a", 'say "hi"'), Node("b")), edges=(Edge("a", "b", "then"),))
    >>> print(ir_to_mermaid(d), end="")
    flowchart TB
      n_a["say #quot;hi#quot;"]
      n_b[" "]
      n_a -->|"then"| n_b
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from planloop.visualize.ir import Cluster, Diagram, Edge, Node, Style, check_diagram, cut_label

__all__ = ["DEFAULT_MAX_LABEL", "escape_label", "ir_to_mermaid", "mermaid_ids"]

DEFAULT_MAX_LABEL = 300
"""Labels longer than this many characters are cut, ending in an ellipsis."""

_DIRECTIONS = ("TB", "LR", "RL", "BT")
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_]")

# Everything Mermaid's parser, its Markdown strings (a backtick after the
# opening quote), its HTML labels or its `%%{...}%%` directives would act on,
# written as the entity codes Mermaid decodes only after parsing.
_ENTITIES = {
    '"': "#quot;",
    "#": "#35;",
    "&": "#amp;",
    "<": "#lt;",
    ">": "#gt;",
    "`": "#96;",
    "\\": "#92;",
    "[": "#91;",
    "]": "#93;",
    "{": "#123;",
    "}": "#125;",
    "|": "#124;",
}
# The front-matter title is YAML that Mermaid shows as plain text: entity codes
# would appear as written there, so only YAML's own escapes are used.
_YAML_ESCAPES = {'"': '\\"', "\\": "\\\\"}

# IR shape -> the brackets Mermaid draws it with; anything else is a box.
_SHAPES = {
    "box": ("[", "]"),
    "ellipse": ("([", "])"),
    "circle": ("((", "))"),
    "point": ("((", "))"),
    "doublecircle": ("(((", ")))"),
    "note": (">", "]"),
    "plaintext": ("[", "]"),
}
_ROUNDED_BOX = ("(", ")")
_DASHES = {"dashed": "5 5", "dotted": "2 2"}


def escape_label(text: str, *, max_chars: int = DEFAULT_MAX_LABEL, title: bool = False) -> str:
    """``text`` as a double-quoted Mermaid string that Mermaid shows as written.

    In a label (node, edge, subgraph) newlines become ``<br>``, and quotes,
    ``#``, ``&``, angle brackets, backticks, backslashes, square brackets,
    braces and ``|`` become Mermaid entity codes (``#quot;``, ``#35;``,
    ``#lt;`` ...), so no text can end the string, start Markdown, open an HTML
    tag or a directive. With ``title=True`` the string is the front matter's
    ``title:``, which is YAML that Mermaid shows as plain text (entity codes
    would appear as written): line breaks become spaces, and quotes and
    backslashes get YAML's backslash escapes; an ``&`` there is shown as
    ``&amp;`` by Mermaid itself.

    Either way tabs become spaces; other control characters are shown as
    ``\\xNN`` text; lone surrogates and the non-characters U+FFFE and U+FFFF
    (which YAML rejects) become U+FFFD; other non-ASCII text is kept. Text
    longer than ``max_chars`` characters is cut and ends in ``…``. Mermaid
    cannot parse an empty string, so empty text becomes one space.

    >>> print(escape_label('say "hi"\\n<b>#1</b>'))
    "say #quot;hi#quot;<br>#lt;b#gt;#35;1#lt;/b#gt;"
    >>> print(escape_label("{a|b} C:\\\\temp ✓"))
    "#123;a#124;b#125; C:#92;temp ✓"
    >>> print(escape_label('say "hi"\\n#1 C:\\\\temp', title=True))
    "say \\"hi\\" #1 C:\\\\temp"
    >>> print(escape_label("abcdefgh", max_chars=5))
    "abcd…"
    >>> print(escape_label(""))
    " "
    """
    escapes = _YAML_ESCAPES if title else _ENTITIES
    line_break = " " if title else "<br>"
    backslash = escapes["\\"]
    text = cut_label(text, max_chars)
    out: list[str] = ['"']
    for ch in text:
        code = ord(ch)
        if ch in escapes:
            out.append(escapes[ch])
        elif ch == "\n":
            out.append(line_break)
        elif ch == "\t":
            out.append(" ")
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"{backslash}x{code:02x}")
        elif 0xD800 <= code < 0xE000 or code in (0xFFFE, 0xFFFF):
            out.append("\ufffd")
        elif ch == "\ufb02":
            # Mermaid marks entities with "ﬂ°" while it renders and turns every
            # "ﬂ°" into "&" at the end: a literal one would leave a bare "&" in
            # the SVG. The letters the ligature joins look the same.
            out.append("fl")
        else:
            out.append(ch)
    if len(out) == 1:
        out.append(" ")
    out.append('"')
    escaped = "".join(out)
    if not title:
        # Before parsing, Mermaid drops the last ";" of any line where "style"
        # or "classDef" is followed by ":", non-spaces and "#", which would cut
        # an entity code short; spelling a letter as a code keeps them apart.
        escaped = escaped.replace("style", "styl#101;").replace("classDef", "classDe#102;")
    return escaped


def mermaid_ids(diagram: Diagram) -> dict[str, str]:
    """The Mermaid id of every node and cluster in ``diagram``, keyed by IR id.

    Node ids get the prefix ``n_`` and cluster ids ``c_``, so none is a Mermaid
    keyword (``end``, ``graph``, ``style`` ...) or begins with the ``o`` or ``x``
    that Mermaid reads as an arrow head; characters other than ASCII letters,
    digits and ``_`` become ``_``; ``style`` and ``classDef`` inside an id are
    written ``Style`` and ``classdef``. When two ids come out equal, the later one
    (in diagram order) gets ``_2``, ``_3`` ..., so the ids depend only on the
    IR ids and their order.

    >>> mermaid_ids(Diagram(nodes=(Node("end"), Node("a b"), Node("a_b"))))
    {'end': 'n_end', 'a b': 'n_a_b', 'a_b': 'n_a_b_2'}
    """
    items = [("n_", n.id) for n in diagram.nodes]
    items += [("c_", c.id) for c in diagram.all_clusters()]
    ids: dict[str, str] = {}
    used: set[str] = set()
    for prefix, item_id in items:
        base = prefix + _UNSAFE_ID.sub("_", item_id)
        # Mermaid's pre-parse fix-up of style lines (see escape_label) also
        # reads ids; it is case-sensitive.
        base = base.replace("style", "Style").replace("classDef", "classdef")
        candidate, count = base, 1
        while candidate in used:
            count += 1
            candidate = f"{base}_{count}"
        used.add(candidate)
        ids[item_id] = candidate
    return ids


def ir_to_mermaid(diagram: Diagram, *, style: Style | None = None) -> str:
    """Mermaid flowchart text for ``diagram``.

    Nodes, clusters (nested ``subgraph`` blocks) and edges come out in the
    diagram's order, then the colours: a ``classDef`` for each distinct node
    look (``s0``, ``s1`` ... in order of first use) with the ``class`` line
    that applies it, a ``style`` line per coloured cluster and a ``linkStyle``
    line per distinct edge look. The title goes in the front matter.
    An edge to or from a cluster ends at the subgraph's border. Dashed and
    dotted edges are drawn dotted (``-.->``), bold ones thick (``==>``),
    invisible ones as Mermaid's invisible links (``~~~``). A ``rounded`` box
    has round corners, an ellipse is a stadium, a point an empty circle, a
    note Mermaid's flag shape and plaintext a box with no outline.

    Mermaid has no counterpart for fonts, tooltips or ``Edge.constraint``, so
    they are left out; of ``style`` only ``max_label_chars`` is read, as the
    colours are in the diagram already.

    Raises:
        ValueError: an id is used twice, an edge or a cluster names an unknown
            node, a node sits in two clusters, or the direction is not one of
            LR, TB, RL, BT.

    Example:
        >>> from planloop.visualize import Diagram, Edge, Node
        >>> diagram = Diagram(nodes=(Node("a", "a"), Node("b", "b")), edges=(Edge("a", "b"),))
        >>> print(ir_to_mermaid(diagram), end="")
        flowchart TB
          n_a["a"]
          n_b["b"]
          n_a --> n_b
    """
    st = style or Style()
    check_diagram(diagram)
    if diagram.direction not in _DIRECTIONS:
        raise ValueError(f"Diagram.direction must be LR, TB, RL or BT, not {diagram.direction!r}")
    limit = st.max_label_chars
    ids = mermaid_ids(diagram)
    nodes = {n.id: n for n in diagram.nodes}

    lines: list[str] = []
    if diagram.title:
        lines += [
            "---",
            f"title: {escape_label(diagram.title, max_chars=limit, title=True)}",
            "---",
        ]
    lines.append(f"flowchart {diagram.direction}")
    in_cluster = {n for c in diagram.all_clusters() for n in c.nodes}
    for node in diagram.nodes:
        if node.id not in in_cluster:
            lines.append(f"  {_node(node, ids, limit)}")
    for cluster in diagram.clusters:
        lines.extend(_cluster(cluster, nodes, ids, limit, "  "))
    for edge in diagram.edges:
        lines.append(f"  {_edge(edge, ids, limit)}")

    looks = _group((_node_css(n), ids[n.id]) for n in diagram.nodes)
    for index, (css, members) in enumerate(looks.items()):
        lines.append(f"  classDef s{index} {css}")
        lines.append(f"  class {','.join(members)} s{index}")
    for cluster in diagram.all_clusters():
        css = _cluster_css(cluster)
        if css:
            lines.append(f"  style {ids[cluster.id]} {css}")
    # linkStyle counts every edge, invisible ones included, in text order.
    links = _group((_edge_css(e), str(index)) for index, e in enumerate(diagram.edges))
    lines.extend(f"  linkStyle {','.join(members)} {css}" for css, members in links.items())
    return "\n".join(lines) + "\n"


def _node(node: Node, ids: Mapping[str, str], limit: int) -> str:
    if node.shape == "box" and "rounded" in node.style:
        opening, closing = _ROUNDED_BOX
    else:
        opening, closing = _SHAPES.get(node.shape, _SHAPES["box"])
    label = "" if node.shape == "point" else node.label
    return f"{ids[node.id]}{opening}{escape_label(label, max_chars=limit)}{closing}"


def _cluster(
    cluster: Cluster, nodes: Mapping[str, Node], ids: Mapping[str, str], limit: int, indent: str
) -> list[str]:
    inner = indent + "  "
    label = escape_label(cluster.label, max_chars=limit)
    lines = [f"{indent}subgraph {ids[cluster.id]} [{label}]"]
    lines.extend(f"{inner}{_node(nodes[n], ids, limit)}" for n in cluster.nodes)
    for child in cluster.clusters:
        lines.extend(_cluster(child, nodes, ids, limit, inner))
    lines.append(f"{indent}end")
    return lines


def _edge(edge: Edge, ids: Mapping[str, str], limit: int) -> str:
    source, target = ids[edge.source], ids[edge.target]
    if "invis" in edge.style:
        return f"{source} ~~~ {target}"
    if "dashed" in edge.style or "dotted" in edge.style:
        arrow = "-.->"
    elif "bold" in edge.style:
        arrow = "==>"
    else:
        arrow = "-->"
    if edge.label:
        arrow += f"|{escape_label(edge.label, max_chars=limit)}|"
    return f"{source} {arrow} {target}"


def _node_css(node: Node) -> str:
    props = _colours(node.fill, node.color, node.font_color)
    if node.shape == "plaintext":
        props.append("stroke-width:0px")
    else:
        props.extend(_outline(node.style, node.penwidth))
    return ",".join(props)


def _cluster_css(cluster: Cluster) -> str:
    props = _colours(cluster.fill, cluster.color, cluster.font_color)
    props.extend(_outline(cluster.style, None))
    return ",".join(props)


def _edge_css(edge: Edge) -> str:
    if "invis" in edge.style:
        return ""
    props = _colours(None, edge.color, edge.font_color)
    if edge.penwidth is not None:
        props.append(f"stroke-width:{_num(edge.penwidth)}px")
    return ",".join(props)


def _colours(fill: str | None, stroke: str | None, text: str | None) -> list[str]:
    # The IR admits only #rrggbb colours, so none of these can break the line.
    props: list[str] = []
    if fill is not None:
        props.append(f"fill:{fill}")
    if stroke is not None:
        props.append(f"stroke:{stroke}")
    if text is not None:
        props.append(f"color:{text}")
    return props


def _outline(styles: tuple[str, ...], penwidth: float | None) -> list[str]:
    props: list[str] = []
    if penwidth is not None:
        props.append(f"stroke-width:{_num(penwidth)}px")
    elif "bold" in styles:
        props.append("stroke-width:2px")
    dashes = next((_DASHES[s] for s in styles if s in _DASHES), None)
    if dashes is not None:
        props.append(f"stroke-dasharray:{dashes}")
    return props


def _group(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    # CSS text -> the members that share it, both in order of first appearance;
    # members with no CSS are left out.
    groups: dict[str, list[str]] = {}
    for css, member in items:
        if css:
            groups.setdefault(css, []).append(member)
    return groups


def _num(value: float) -> str:
    return f"{value:g}"
