r"""Diagram IR as Graphviz DOT text: pure, deterministic, every label escaped by one function.

Example:
    >>> from planloop.visualize.ir import Diagram, Edge, Node
    >>> d = Diagram(nodes=(Node("a", 'say "hi"'), Node("b")), edges=(Edge("a", "b"),))
    >>> print("\n".join(ir_to_dot(d).splitlines()[4:]))
      "a" [label="say \"hi\"", shape="box"];
      "b" [label="", shape="box"];
      "a" -> "b";
    }
"""

from __future__ import annotations

from collections.abc import Mapping

from planloop.visualize.ir import Cluster, Diagram, Edge, Node, Style, check_diagram, cut_label

__all__ = [
    "DEFAULT_MAX_LABEL",
    "MAX_TOOLTIP",
    "escape_label",
    "escape_tooltip",
    "ir_to_dot",
    "quote_id",
]

DEFAULT_MAX_LABEL = 300
"""Labels longer than this many characters are cut, ending in an ellipsis."""

MAX_TOOLTIP = 5000
"""Tooltips longer than this many characters are cut: a node's tooltip holds the whole
text its label shortens (an error message, say), up to this length."""


def escape_label(text: str, *, max_chars: int = DEFAULT_MAX_LABEL) -> str:
    """``text`` as a quoted DOT string that Graphviz shows exactly as written.

    Newlines become line breaks; quotes and backslashes are escaped (so Graphviz's
    own ``\\N``, ``\\l`` sequences cannot be triggered); ``&`` is written as
    ``&amp;`` because Graphviz decodes HTML entities in labels; tabs become
    spaces; other control characters are shown as ``\\xNN`` text; lone surrogates
    become U+FFFD; a leading newline gets a space before it (a label that starts
    with a line break crashes some Graphviz builds). Text longer than ``max_chars``
    characters is cut and ends in ``…``. Braces, ``|`` and angle brackets need
    nothing: the renderer never uses record shapes or HTML labels.

    >>> print(escape_label('say "hi"\\nC:\\\\temp\\\\'))
    "say \\"hi\\"\\nC:\\\\temp\\\\"
    >>> print(escape_label("bell\\x07 & <b>"))
    "bell\\\\x07 &amp; <b>"
    >>> print(escape_label("abcdefgh", max_chars=5))
    "abcd…"
    """
    text = cut_label(text, max_chars)
    # A label that starts with a line break crashes the Graphviz that pygraphviz's
    # wheels bundle (2.0.4: a segfault in the layout, once another node has a label);
    # a space before it looks the same.
    out: list[str] = ['" '] if text.startswith("\n") else ['"']
    for ch in text:
        code = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "&":
            out.append("&amp;")
        elif ch == "\t":
            out.append(" ")
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\\\x{code:02x}")
        elif 0xD800 <= code < 0xE000:
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def escape_tooltip(text: str, *, max_chars: int = MAX_TOOLTIP) -> str:
    r"""``text`` as a quoted DOT string that an SVG shows exactly as written on hover.

    Graphviz reads a tooltip twice: once as a DOT string (``\\`` is one
    backslash) and once for its own escapes (``\N`` is the node's name, ``\G``
    the graph's). So each backslash is written four times, and the rest is
    escaped as :func:`escape_label` escapes a label.

    >>> print(escape_tooltip('C:\\new "dir"\nnext line'))
    "C:\\\\new \"dir\"\nnext line"
    """
    text = cut_label(text, max_chars).replace("\\", "\\\\")
    return escape_label(text, max_chars=len(text) + 1)


def quote_id(text: str) -> str:
    """A node or cluster id as a quoted DOT id (quotes, backslashes and control characters safe).

    >>> print(quote_id('a"b'))
    "a\\"b"
    """
    out: list[str] = ['"']
    for ch in text:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000:
            out.append(f"\\\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def ir_to_dot(diagram: Diagram, *, style: Style | None = None) -> str:
    """DOT text for ``diagram``.

    Nodes, clusters and edges come out in the diagram's order (extractors build
    it in a fixed order) and attributes sorted by name, so the text is the same
    for equal diagrams. An edge to or from a cluster is drawn to its first node
    and clipped at the cluster's border.

    Raises:
        ValueError: an id is used twice, an edge or a cluster names an unknown
            node, or a node sits in two clusters.

    Example:
        >>> from planloop.visualize import Diagram, Edge, Node
        >>> diagram = Diagram(nodes=(Node("a", "a"), Node("b", "b")), edges=(Edge("a", "b"),))
        >>> [line.strip() for line in ir_to_dot(diagram).splitlines() if "->" in line]
        ['"a" -> "b";']
    """
    st = style or Style()
    check_diagram(diagram)
    limit = st.max_label_chars
    clusters = {c.id: c for c in diagram.all_clusters()}
    nodes = {n.id: n for n in diagram.nodes}
    compound = any(e.source in clusters or e.target in clusters for e in diagram.edges)

    graph_attrs: dict[str, str] = {
        "rankdir": diagram.direction,
        "fontname": st.font,
        "fontsize": _num(st.title_font_size),
        "labelloc": "t",
        "nodesep": "0.3",
        "ranksep": "0.4",
    }
    if diagram.title:
        graph_attrs["label"] = escape_label(diagram.title, max_chars=limit)
    if compound:
        graph_attrs["compound"] = "true"
    lines = [
        "digraph planloop {",
        f"  graph {_attrs(graph_attrs)};",
        "  node "
        + _attrs({"fontname": st.font, "fontsize": _num(st.font_size), "margin": "0.12,0.06"})
        + ";",
        "  edge "
        + _attrs({"fontname": st.font, "fontsize": _num(st.small_font_size), "arrowsize": "0.7"})
        + ";",
    ]
    in_cluster = {n for c in clusters.values() for n in c.nodes}
    for node in diagram.nodes:
        if node.id not in in_cluster:
            lines.append(f"  {_node(node, limit)};")
    for cluster in diagram.clusters:
        lines.extend(_cluster(cluster, nodes, st, "  "))
    for edge in diagram.edges:
        lines.append(f"  {_edge(edge, clusters, limit)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node(node: Node, limit: int) -> str:
    attrs: dict[str, str] = {
        "label": escape_label(node.label, max_chars=limit),
        "shape": node.shape,
    }
    styles = list(node.style)
    if node.fill is not None:
        attrs["fillcolor"] = node.fill
        styles.append("filled")
    if styles:
        attrs["style"] = ",".join(dict.fromkeys(styles))
    if node.color is not None:
        attrs["color"] = node.color
    if node.font_color is not None:
        attrs["fontcolor"] = node.font_color
    if node.penwidth is not None:
        attrs["penwidth"] = _num(node.penwidth)
    if node.tooltip is not None:
        attrs["tooltip"] = escape_tooltip(node.tooltip)
    return f"{quote_id(node.id)} {_attrs(attrs)}"


def _cluster(cluster: Cluster, nodes: Mapping[str, Node], st: Style, indent: str) -> list[str]:
    inner = indent + "  "
    attrs: dict[str, str] = {
        "label": escape_label(cluster.label, max_chars=st.max_label_chars),
        "fontsize": _num(st.font_size),
        "labeljust": "l",
    }
    styles = list(cluster.style)
    if cluster.fill is not None:
        attrs["fillcolor"] = cluster.fill
        styles.append("filled")
    if styles:
        attrs["style"] = ",".join(dict.fromkeys(styles))
    if cluster.color is not None:
        attrs["color"] = cluster.color
    if cluster.font_color is not None:
        attrs["fontcolor"] = cluster.font_color
    lines = [f"{indent}subgraph {quote_id('cluster_' + cluster.id)} {{"]
    lines.extend(f"{inner}{key}={_value(key, value)};" for key, value in sorted(attrs.items()))
    lines.extend(f"{inner}{_node(nodes[n], st.max_label_chars)};" for n in cluster.nodes)
    for child in cluster.clusters:
        lines.extend(_cluster(child, nodes, st, inner))
    lines.append(f"{indent}}}")
    return lines


def _edge(edge: Edge, clusters: Mapping[str, Cluster], limit: int) -> str:
    attrs: dict[str, str] = {}
    source, target = edge.source, edge.target
    if source in clusters:
        attrs["ltail"] = "cluster_" + source
        source = clusters[source].first_node() or source
    if target in clusters:
        attrs["lhead"] = "cluster_" + target
        target = clusters[target].first_node() or target
    if edge.label:
        attrs["label"] = escape_label(edge.label, max_chars=limit)
    if edge.style:
        attrs["style"] = ",".join(edge.style)
    if edge.color is not None:
        attrs["color"] = edge.color
    if edge.font_color is not None:
        attrs["fontcolor"] = edge.font_color
    if edge.penwidth is not None:
        attrs["penwidth"] = _num(edge.penwidth)
    if not edge.constraint:
        attrs["constraint"] = "false"
    text = f"{quote_id(source)} -> {quote_id(target)}"
    return f"{text} {_attrs(attrs)}" if attrs else text


_ESCAPED = frozenset({"label", "tooltip"})


def _value(key: str, value: str) -> str:
    # Labels arrive already escaped; every other value is plain text we chose.
    return value if key in _ESCAPED else quote_id(value)


def _attrs(attrs: Mapping[str, str]) -> str:
    return "[" + ", ".join(f"{k}={_value(k, v)}" for k, v in sorted(attrs.items())) + "]"


def _num(value: float) -> str:
    return f"{value:g}"
