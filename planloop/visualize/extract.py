"""Extractors: machine specs and plans as diagram IR, and the helpers every picture shares.

Traces have their own module, :mod:`planloop.visualize.trace_ir`.

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
from collections.abc import Iterable, Mapping
from typing import Any

from planloop.engine.plan import Plan, Step
from planloop.engine.redact import REDACTED, default_redactor
from planloop.engine.spec import MachineSpec, SpecSummary, TransitionRule
from planloop.visualize.ir import Diagram, Edge, Node, Style

__all__ = ["args_text", "duration_text", "plan_to_ir", "preview", "spec_to_ir"]

_SAFE_ID = re.compile(r"[A-Za-z0-9_]+")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_SPACE = re.compile(r"\s+")


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
    # Redacted before it is cut: a cut could leave part of a secret unrecognised.
    redactor = default_redactor()
    value = redactor.redact(value)
    text = value if isinstance(value, str) else _ADDRESS.sub("", repr(value))
    text = _SPACE.sub(" ", redactor.scrub(text)).strip()
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
    ids = state_ids(summary.states)
    nodes = [start_node(st)]
    edges = [Edge("start", ids[summary.initial], color=st.ink)]
    for name in summary.states:
        nodes.append(state_node(ids[name], str(name), name in summary.terminal, st))
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


def state_ids(states: Iterable[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for index, name in enumerate(states):
        text = str(name)
        ids[name] = f"s_{text}" if _SAFE_ID.fullmatch(text) else f"s{index}"
    return ids


def start_node(st: Style) -> Node:
    return Node("start", "", shape="point", fill=st.ink, color=st.ink, tooltip="start")


def state_node(node_id: str, label: str, terminal: bool, st: Style) -> Node:
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
        args = args_text(step.args)
        lines = [f"{step.id} · {tool_name(step)}"]
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


def tool_name(step: Step) -> str:
    # Plans built in Python may name a callable instead of a tool; its repr
    # would carry an address.
    tool: object = step.tool
    if isinstance(tool, str):
        return tool
    name = getattr(tool, "__qualname__", None) or getattr(tool, "__name__", None)
    return str(name) if name else type(tool).__name__


def args_text(args: Mapping[str, Any]) -> str:
    """A step's arguments as ``key=value, ...``: secrets redacted, references as ``$id``.

    >>> args_text({"to": "boss@example.org", "api_key": "sk-1", "n": {"$ref": "a"}})
    "to='boss@example.org', api_key=[redacted], n=$a"
    """
    return ", ".join(f"{k}={_arg_text(k, v)}" for k, v in args.items())


def _arg_text(key: str, value: Any) -> str:
    if value is not None and default_redactor().is_secret_key(key):
        return REDACTED
    if isinstance(value, dict) and len(value) == 1 and "$ref" in value:
        return f"${value['$ref']}"
    return preview(repr(value), 1_000)
