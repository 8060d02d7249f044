"""Mermaid text of machines, plans and real runs: exact where small, parsed back elsewhere.

The Mermaid text is read back by a small strict reader below: every line must be
one of the forms the renderer promises, so an injected quote or newline shows
up as a line it cannot read, and every label is decoded and compared with the
text it came from.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import planloop
from planloop import Answered, MachineSpec, Plan, RunResult, Step, Stopped, Trace, ref
from planloop.cli import main
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from planloop.visualize import Cluster, Diagram, Edge, Node, Style, to_diagram, to_dot, to_mermaid
from planloop.visualize.mermaid import escape_label, ir_to_mermaid, mermaid_ids


@planloop.tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def stopped_run() -> RunResult:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2})] * 5)
    return planloop.Agent(model, [add], max_iterations=2).run_sync("x")


def failed_step_run() -> RunResult:
    model = ScriptedModel([[ToolCall("add", {"a": 1, "b": 2}), ToolCall("nope", {})], "3"])
    return planloop.Agent(model, [add], name="failing").run_sync("x")


def plan_and_execute_run() -> RunResult:
    planner_model = ScriptedModel(["Plan:\n1. Add them\n2. Say it\n<END_OF_PLAN>"])
    executor_model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2}), "it is 3", "Three."])
    pe = planloop.PlanAndExecute(
        planloop.load_chat_planner(planner_model),
        planloop.load_agent_executor(executor_model, [add]),
    )
    return pe.run_sync("add 1 and 2")


def folded_run() -> RunResult:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2})] * 12)
    return planloop.Agent(model, [add], max_iterations=10).run_sync("x")


def small_plan() -> Plan:
    return Plan(
        [
            Step(id="a", tool="fetch", args={"key": "al{p}ha|<x>"}),
            Step(id="sum", tool="add", args={"a": ref("a", "n"), "b": 2}),
            Step(id="x", tool="t", depends_on=("ghost",)),
        ]
    )


# --- a strict reader of the renderer's output -----------------------------------

SAFE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
KEYWORDS = {"end", "graph", "flowchart", "subgraph", "style", "class", "classDef", "linkStyle"}
KEYWORDS |= {"click", "call", "href", "default", "direction", "interpolate"}
LABEL = r'"(?P<label>[^"\n]*)"'
OPENERS = {"(((": ")))", "((": "))", "([": "])", "(": ")", "[": "]", ">": "]"}
NODE_LINE = re.compile(
    r"(?P<id>\w+)(?P<open>\(\(\(|\(\(|\(\[|\(|\[|>)" + LABEL + r"(?P<close>\)\)\)|\)\)|\]\)|\)|\])"
)
SUBGRAPH_LINE = re.compile(r"subgraph (?P<id>\w+) \[" + LABEL + r"\]")
EDGE_LINE = re.compile(r"(?P<s>\w+) (?P<arrow>-->|-\.->|==>|~~~)(?:\|" + LABEL + r"\|)? (?P<t>\w+)")
HEX = r"#[0-9a-f]{6}"
CSS = rf"(?:(?:fill|stroke|color):{HEX}|stroke-width:[0-9.]+px|stroke-dasharray:\d \d)"
CSS_LIST = rf"{CSS}(?:,{CSS})*"
CLASSDEF_LINE = re.compile(rf"classDef (?P<name>s\d+) (?P<css>{CSS_LIST})")
CLASS_LINE = re.compile(r"class (?P<members>\w+(?:,\w+)*) (?P<name>s\d+)")
STYLE_LINE = re.compile(rf"style (?P<id>\w+) (?P<css>{CSS_LIST})")
LINKSTYLE_LINE = re.compile(rf"linkStyle (?P<indexes>\d+(?:,\d+)*) (?P<css>{CSS_LIST})")


@dataclass
class Parsed:
    title: str | None = None
    direction: str = ""
    nodes: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    """id -> (opening bracket, raw label, enclosing subgraph)"""
    subgraphs: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """id -> (raw label, enclosing subgraph)"""
    edges: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    """(source, arrow, raw label or None, target), in order"""
    classes: dict[str, str] = field(default_factory=dict)
    """node id -> the css of its class"""
    styles: dict[str, str] = field(default_factory=dict)
    link_styles: dict[int, str] = field(default_factory=dict)


def read_mermaid(text: str) -> Parsed:
    """Parse the renderer's output; fail on any line that is not one of its forms."""
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    out = Parsed()
    if lines[0] == "---":
        assert lines[2] == "---", lines[:3]
        key, _, value = lines[1].partition(": ")
        assert key == "title"
        assert re.fullmatch(r'"(?:[^"\\\n]|\\["\\])*"', value), value
        out.title = json.loads(value)
        lines = lines[3:]
    head = re.fullmatch(r"flowchart (TB|LR|RL|BT)", lines[0])
    assert head, lines[0]
    out.direction = head.group(1)
    stack: list[str] = []
    class_css: dict[str, str] = {}
    for line in lines[1:]:
        if stack and line == "  " * len(stack) + "end":
            stack.pop()
            continue
        indent = "  " * (len(stack) + 1)
        assert line.startswith(indent), f"bad indent: {line!r}"
        body = line[len(indent) :]
        if m := SUBGRAPH_LINE.fullmatch(body):
            assert m["id"] not in out.subgraphs and m["id"] not in out.nodes, body
            out.subgraphs[m["id"]] = (m["label"], stack[-1] if stack else None)
            stack.append(m["id"])
        elif m := NODE_LINE.fullmatch(body):
            assert OPENERS[m["open"]] == m["close"], body
            assert m["id"] not in out.nodes and m["id"] not in out.subgraphs, body
            out.nodes[m["id"]] = (m["open"], m["label"], stack[-1] if stack else None)
        elif stack:
            raise AssertionError(f"unexpected line inside a subgraph: {line!r}")
        elif m := EDGE_LINE.fullmatch(body):
            out.edges.append((m["s"], m["arrow"], m["label"], m["t"]))
        elif m := CLASSDEF_LINE.fullmatch(body):
            class_css[m["name"]] = m["css"]
        elif m := CLASS_LINE.fullmatch(body):
            for member in m["members"].split(","):
                assert member not in out.classes, member
                out.classes[member] = class_css[m["name"]]
        elif m := STYLE_LINE.fullmatch(body):
            out.styles[m["id"]] = m["css"]
        elif m := LINKSTYLE_LINE.fullmatch(body):
            for index in m["indexes"].split(","):
                assert int(index) not in out.link_styles, index
                out.link_styles[int(index)] = m["css"]
        else:
            raise AssertionError(f"unreadable line: {line!r}")
    assert not stack, f"subgraphs never closed: {stack}"
    return out


ENTITY = re.compile(r"#(\w+);")


def check_raw_label(raw: str) -> None:
    """What the one escape function promises about a label between its quotes."""
    assert raw, "Mermaid cannot parse an empty label"
    assert not set(raw) & set('"\\`[]{}|\n\r\t'), raw
    assert "<" not in raw.replace("<br>", "") and ">" not in raw.replace("<br>", ""), raw
    assert "#" not in ENTITY.sub("", raw), raw  # every # starts an entity code
    assert {m for m in ENTITY.findall(raw) if not m.isdigit()} <= {"quot", "amp", "lt", "gt"}
    assert "style" not in raw and "classDef" not in raw
    assert "\ufb02" not in raw


def decode(raw: str) -> str:
    """What Mermaid shows for a raw label."""
    text = raw.replace("<br>", "\n")
    return ENTITY.sub(
        lambda m: chr(int(m[1])) if m[1].isdigit() else html.unescape(f"&{m[1]};"), text
    )


def shown(text: str, limit: int = 300) -> str:
    """The text a label should show: line breaks unified, cut, tabs and control characters."""
    for brk in ("\r\n", "\r", "\u2028", "\u2029", "\x85"):
        text = text.replace(brk, "\n")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\t":
            out.append(" ")
        elif ch != "\n" and (code < 0x20 or 0x7F <= code < 0xA0):
            out.append(f"\\x{code:02x}")
        elif code in (0xFFFE, 0xFFFF):
            out.append("\ufffd")
        elif ch == "\ufb02":
            out.append("fl")
        else:
            out.append(ch)
    return "".join(out) or " "


def check_matches_diagram(text: str, diagram: Diagram, limit: int = 300) -> Parsed:
    """Every node, edge and cluster of ``diagram`` is in ``text``, where and as it should be."""
    parsed = read_mermaid(text)
    ids = mermaid_ids(diagram)
    # ids: one per IR id, all distinct, plain identifiers, none a Mermaid keyword
    assert len(set(ids.values())) == len(ids)
    for mermaid_id in ids.values():
        assert SAFE_ID.fullmatch(mermaid_id), mermaid_id
        assert mermaid_id not in KEYWORDS
    assert parsed.direction == diagram.direction
    if diagram.title:
        assert parsed.title == shown(diagram.title, limit).replace("\n", " ")
    else:
        assert parsed.title is None

    parent = {n: ids[c.id] for c in diagram.all_clusters() for n in c.nodes}
    assert set(parsed.nodes) == {ids[n.id] for n in diagram.nodes}
    for node in diagram.nodes:
        _, raw, where = parsed.nodes[ids[node.id]]
        check_raw_label(raw)
        expected = " " if node.shape == "point" else shown(node.label, limit)
        assert decode(raw) == expected, node.id
        assert where == parent.get(node.id), node.id
        css = parsed.classes.get(ids[node.id], "")
        for prop, colour in (("fill", node.fill), ("stroke", node.color)):
            assert (f"{prop}:{colour}" in css.split(",")) == (colour is not None), node.id

    nesting = {ids[child.id]: ids[c.id] for c in diagram.all_clusters() for child in c.clusters}
    assert set(parsed.subgraphs) == {ids[c.id] for c in diagram.all_clusters()}
    for cluster in diagram.all_clusters():
        raw, where = parsed.subgraphs[ids[cluster.id]]
        check_raw_label(raw)
        assert decode(raw) == shown(cluster.label, limit)
        assert where == nesting.get(ids[cluster.id])

    assert len(parsed.edges) == len(diagram.edges)
    for index, (edge, (source, arrow, raw, target)) in enumerate(
        zip(diagram.edges, parsed.edges, strict=True)
    ):
        assert (source, target) == (ids[edge.source], ids[edge.target])
        if "invis" in edge.style:
            assert (arrow, raw) == ("~~~", None)
            assert index not in parsed.link_styles
            continue
        if edge.label:
            assert raw is not None
            check_raw_label(raw)
            assert decode(raw) == shown(edge.label, limit)
        else:
            assert raw is None
        css = parsed.link_styles.get(index, "")
        assert (f"stroke:{edge.color}" in css.split(",")) == (edge.color is not None)
    return parsed


# --- exact text -------------------------------------------------------------------

SMALL_SPEC_MERMAID = """\
---
title: "machine"
---
flowchart TB
  n_start((" "))
  n_s_plan("plan")
  n_s_finish("finish")
  n_s_stopped("stopped")
  n_start --> n_s_plan
  n_s_plan -->|"Answered"| n_s_finish
  n_s_plan -->|"Stopped"| n_s_stopped
  classDef s0 fill:#37474f,stroke:#37474f
  class n_start s0
  classDef s1 fill:#e3f2fd,stroke:#1565c0,color:#37474f
  class n_s_plan s1
  classDef s2 fill:#e3f2fd,stroke:#1565c0,color:#37474f,stroke-width:2px
  class n_s_finish,n_s_stopped s2
  linkStyle 0 stroke:#37474f
  linkStyle 1,2 stroke:#37474f,color:#37474f
"""


def test_small_spec_gives_exact_mermaid() -> None:
    spec = MachineSpec(
        states=["plan", "finish", "stopped"],
        transitions={Answered: {"plan": "finish"}, Stopped: {"plan": "stopped"}},
    )
    assert to_mermaid(spec) == SMALL_SPEC_MERMAID
    assert to_mermaid(spec.summary) == SMALL_SPEC_MERMAID


def test_clusters_nest_as_subgraphs_and_edges_may_end_at_a_cluster() -> None:
    diagram = Diagram(
        title="nested",
        direction="LR",
        nodes=(Node("a", "outside"), Node("b", "in box"), Node("c", "in inner")),
        clusters=(
            Cluster(
                "box",
                "box",
                nodes=("b",),
                clusters=(Cluster("inner", "", nodes=("c",), style=("dashed",)),),
                fill="#fafafa",
                color="#90a4ae",
            ),
        ),
        edges=(
            Edge("a", "box", "into", style=("bold",)),
            Edge("b", "c", style=("invis",)),
            Edge("c", "a", style=("dashed",), color="#b0bec5", penwidth=1.5),
        ),
    )
    assert ir_to_mermaid(diagram) == (
        "---\n"
        'title: "nested"\n'
        "---\n"
        "flowchart LR\n"
        '  n_a["outside"]\n'
        '  subgraph c_box ["box"]\n'
        '    n_b["in box"]\n'
        '    subgraph c_inner [" "]\n'
        '      n_c["in inner"]\n'
        "    end\n"
        "  end\n"
        '  n_a ==>|"into"| c_box\n'
        "  n_b ~~~ n_c\n"
        "  n_c -.-> n_a\n"
        "  style c_box fill:#fafafa,stroke:#90a4ae\n"
        "  style c_inner stroke-dasharray:5 5\n"
        "  linkStyle 2 stroke:#b0bec5,stroke-width:1.5px\n"
    )


@pytest.mark.parametrize(
    ("shape", "style", "drawn"),
    [
        ("box", (), '["x"]'),
        ("box", ("rounded",), '("x")'),
        ("ellipse", (), '(["x"])'),
        ("circle", (), '(("x"))'),
        ("doublecircle", (), '((("x")))'),
        ("note", (), '>"x"]'),
        ("plaintext", (), '["x"]'),
        ("point", (), '((" "))'),
        ("hexagon-we-do-not-know", (), '["x"]'),
    ],
)
def test_shapes(shape: str, style: tuple[str, ...], drawn: str) -> None:
    text = ir_to_mermaid(Diagram(nodes=(Node("n", "x", shape=shape, style=style),)))
    assert text.splitlines()[1] == f"  n_n{drawn}"


def test_node_outlines_become_css() -> None:
    diagram = Diagram(
        nodes=(
            Node("bold", style=("rounded", "bold")),
            Node("wide", style=("bold",), penwidth=2.5),
            Node("dotted", style=("dotted",), color="#c62828"),
            Node("bare", shape="plaintext"),
            Node("plain"),
        )
    )
    classes = read_mermaid(ir_to_mermaid(diagram)).classes
    assert classes == {
        "n_bold": "stroke-width:2px",
        "n_wide": "stroke-width:2.5px",
        "n_dotted": "stroke:#c62828,stroke-dasharray:2 2",
        "n_bare": "stroke-width:0px",
    }


# --- every object, every node and edge ------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        MachineSpec.default,
        small_plan,
        stopped_run,
        failed_step_run,
        plan_and_execute_run,
        folded_run,
        lambda: failed_step_run().trace,
    ],
    ids=["spec", "plan", "stopped", "failed-step", "sub-agents", "folded", "trace"],
)
def test_every_node_edge_and_cluster_appears(make: Callable[[], object]) -> None:
    obj = make()
    diagram = to_diagram(obj, timings=False)
    parsed = check_matches_diagram(to_mermaid(obj, timings=False), diagram)
    assert len(parsed.nodes) == len(diagram.nodes) > 0


def test_a_run_shows_its_states_stop_reason_clusters_and_faint_untaken_transitions() -> None:
    text = to_mermaid(stopped_run(), timings=False)
    parsed = read_mermaid(text)
    assert parsed.title == "agent · stopped: max_iterations · 2 iterations"
    assert parsed.nodes["n_s_plan"] == ("(", "plan ×2", None)
    assert parsed.nodes["n_s_stopped"] == ("(", "stopped<br>max_iterations", None)
    assert (
        parsed.classes["n_s_stopped"]
        == "fill:#ef9a9a,stroke:#b71c1c,color:#37474f,stroke-width:2.5px"
    )
    assert parsed.classes["n_s_finish"] == "stroke:#b0bec5,color:#b0bec5,stroke-dasharray:5 5"
    assert [s for s in parsed.subgraphs if s.startswith("c_act")] == ["c_act1", "c_act2"]
    assert parsed.nodes["n_a1_0"][2] == "c_act1"
    edges = {(s, t): (arrow, label) for s, arrow, label, t in parsed.edges}
    assert edges[("n_s_plan", "n_s_act")] == ("-->", "Planned ×2")
    # a transition never taken: dotted and faint
    assert edges[("n_s_plan", "n_s_finish")] == ("-.->", "Answered")
    index = [(s, t) for s, _, _, t in parsed.edges].index(("n_s_plan", "n_s_finish"))
    assert parsed.link_styles[index] == "stroke:#b0bec5,color:#b0bec5"
    # acts follow each other, cluster to cluster
    assert edges[("c_act1", "c_act2")] == ("-->", None)


def test_sub_agents_are_subgraphs_inside_their_step_cluster() -> None:
    parsed = read_mermaid(to_mermaid(plan_and_execute_run(), timings=False))
    assert parsed.subgraphs["c_a1_0_sub"] == (
        "sub-agent of step_1 · finished · 1 iteration",
        "c_act1",
    )
    assert parsed.subgraphs["c_a1_0_act1"][1] == "c_a1_0_sub"
    assert parsed.nodes["n_a1_0_a1_0"][2] == "c_a1_0_act1"


def test_plan_text_escapes_arguments() -> None:
    parsed = read_mermaid(to_mermaid(small_plan()))
    assert parsed.title == "plan · 3 steps"
    raw = parsed.nodes["n_p_0"][1]
    assert raw == "a · fetch<br>key='al#123;p#125;ha#124;#lt;x#gt;'"
    assert decode(raw) == "a · fetch\nkey='al{p}ha|<x>'"
    assert ("n_missing_0", "-->", None, "n_p_2") in parsed.edges


def test_trace_result_and_json_round_trip_give_the_same_text() -> None:
    result = failed_step_run()
    again = Trace.from_json(result.trace.to_json())
    assert to_mermaid(result) == to_mermaid(result.trace) == to_mermaid(again)


def test_anything_else_is_a_type_error_naming_what_is_accepted() -> None:
    with pytest.raises(TypeError) as info:
        to_mermaid(42)
    assert str(info.value) == (
        "cannot draw int; pass a Trace, RunResult, Plan, MachineSpec, SpecSummary or Diagram"
    )


def test_style_sets_direction_colours_and_label_length() -> None:
    style = Style(direction="LR", failed_fill="#ff0000", max_label_chars=12)
    parsed = check_matches_diagram(
        to_mermaid(failed_step_run(), timings=False, style=style),
        to_diagram(failed_step_run(), timings=False, style=style),
        limit=12,
    )
    assert parsed.direction == "LR"
    assert parsed.classes["n_legend_failed"].startswith("fill:#ff0000,")
    assert decode(parsed.nodes["n_a1_0"][1]) == "call_1 · ad…"


# --- determinism ---------------------------------------------------------------------


def test_equal_runs_give_identical_text_without_timings() -> None:
    first, second = failed_step_run(), failed_step_run()
    assert first.run_id != second.run_id
    assert to_mermaid(first, timings=False) == to_mermaid(second, timings=False)
    assert first.run_id not in to_mermaid(first)
    assert to_mermaid(stopped_run(), timings=False) == to_mermaid(stopped_run(), timings=False)
    timed = to_mermaid(first)
    assert " ms" in timed
    assert " ms" not in to_mermaid(first, timings=False)
    assert to_mermaid(first) == timed  # the same object twice


SCRIPT = """
import planloop
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from planloop.visualize import to_mermaid

@planloop.tool
def add(a: int, b: int) -> int:
    '''Add two numbers.'''
    return a + b

model = ScriptedModel([[ToolCall("add", {"a": 1, "b": 2}), ToolCall("nope", {})], "3"])
print(to_mermaid(planloop.Agent(model, [add], name="failing").run_sync("x"), timings=False), end="")
"""


def test_text_is_the_same_in_other_processes_whatever_the_hash_seed() -> None:
    here = to_mermaid(failed_step_run(), timings=False)
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        assert done.stdout == here


# --- ids -----------------------------------------------------------------------------------


def test_ids_are_prefixed_sanitized_and_made_unique_in_order() -> None:
    diagram = Diagram(
        nodes=(
            Node("end"),
            Node("o"),
            Node("a b"),
            Node("a_b"),
            Node("a-b"),
            Node("style"),
            Node("é"),
            Node(""),
        ),
        clusters=(Cluster("graph", nodes=("o",)), Cluster("x;y")),
    )
    assert mermaid_ids(diagram) == {
        "end": "n_end",
        "o": "n_o",
        "a b": "n_a_b",
        "a_b": "n_a_b_2",
        "a-b": "n_a_b_3",
        "style": "n_Style",
        "é": "n__",
        "": "n_",
        "graph": "c_graph",
        "x;y": "c_x_y",
    }
    check_matches_diagram(ir_to_mermaid(diagram), diagram)


# --- the escaping function -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say #quot;hi#quot;"'),
        ("issue #1", '"issue #35;1"'),
        ("a & b &lt;", '"a #amp; b #amp;lt;"'),
        ("<b>bold</b>", '"#lt;b#gt;bold#lt;/b#gt;"'),
        ("two\nlines\r\nthree\rfour\u2028five", '"two<br>lines<br>three<br>four<br>five"'),
        ("{a|b} [c]", '"#123;a#124;b#125; #91;c#93;"'),
        ("`md` **x**", '"#96;md#96; **x**"'),
        ("C:\\temp\\", '"C:#92;temp#92;"'),
        ("tab\there", '"tab here"'),
        ("nul\x00 bell\x07 del\x7f", '"nul#92;x00 bell#92;x07 del#92;x7f"'),
        ("é ✓ 😀 (ok); a -- b", '"é ✓ 😀 (ok); a -- b"'),
        ("lone \ud800 surrogate \uffff", '"lone \ufffd surrogate \ufffd"'),
        ("%%{init: {}}%%", '"%%#123;init: #123;#125;#125;%%"'),
        ('{"style":"x"}', '"#123;#quot;styl#101;#quot;:#quot;x#quot;#125;"'),
        ("classDef a:#1", '"classDe#102; a:#35;1"'),
        ("\ufb02ow", '"flow"'),
        ("", '" "'),
    ],
)
def test_escape_label(text: str, expected: str) -> None:
    assert escape_label(text) == expected


def test_escape_label_for_the_title_uses_yaml_escapes() -> None:
    assert escape_label('say "hi"\n#1 C:\\temp <b>', title=True) == (
        '"say \\"hi\\" #1 C:\\\\temp <b>"'
    )
    assert escape_label("bell\x07", title=True) == '"bell\\\\x07"'
    assert json.loads(escape_label('a "b" \\ c', title=True)) == 'a "b" \\ c'


def test_escape_label_cuts_long_text_with_an_ellipsis_before_escaping() -> None:
    assert escape_label("x" * 10_000) == '"' + "x" * 299 + '…"'
    assert escape_label("abcdef", max_chars=4) == '"abc…"'
    assert escape_label("abcd", max_chars=4) == '"abcd"'
    assert escape_label('""""""', max_chars=3) == '"#quot;#quot;…"'
    with pytest.raises(ValueError, match="max_chars must be at least 1"):
        escape_label("x", max_chars=0)


# --- hostile text anywhere ------------------------------------------------------------

hostile = st.lists(
    st.characters(blacklist_categories=("Cs",))
    | st.sampled_from(list('"\\{}<>|&;#`[]%:\n\r\t\x85\u2028\ufb02\uffff'))
    | st.sampled_from(['</text><script>alert("x")</script>', "%%{init: {}}%%", "<br>"])
    | st.sampled_from(["#quot;", "&amp;", "-->", "end", 'style:"x"', "classDef", "x" * 400]),
    max_size=12,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=hostile,
    labels=st.lists(hostile, min_size=3, max_size=3),
    cluster_label=hostile,
    edge_label=hostile,
    ids=st.lists(hostile, min_size=3, max_size=3, unique=True),
)
def test_any_text_becomes_labels_that_cannot_break_out(
    title: str, labels: list[str], cluster_label: str, edge_label: str, ids: list[str]
) -> None:
    assume("box" not in ids)
    a, b, c = ids
    diagram = Diagram(
        title=title,
        nodes=(Node(a, labels[0]), Node(b, labels[1], shape="note"), Node(c, labels[2])),
        clusters=(Cluster("box", cluster_label, nodes=(b, c)),),
        edges=(Edge(a, b, edge_label), Edge(b, "box", edge_label, style=("dashed",))),
    )
    text = ir_to_mermaid(diagram)
    check_matches_diagram(text, diagram)
    # Front matter, the header, three nodes, a subgraph's two lines, two edges
    # and nothing else: no text made a line of its own, by any line break
    # Python knows (U+2028, U+0085 ... included).
    assert len(text.splitlines()) == (3 if title else 0) + 8


def test_broken_diagrams_are_rejected_like_for_dot() -> None:
    with pytest.raises(ValueError, match=re.escape("edge 'a' -> 'z': unknown id 'z'")):
        ir_to_mermaid(Diagram(nodes=(Node("a"),), edges=(Edge("a", "z"),)))
    with pytest.raises(ValueError, match=r"Diagram\.direction") as info:
        ir_to_mermaid(Diagram(direction="TB; click", nodes=(Node("a"),)))
    assert str(info.value) == "Diagram.direction must be LR, TB, RL or BT, not 'TB; click'"


# --- the command line --------------------------------------------------------------------


def saved_trace(tmp_path: Path) -> Path:
    result = failed_step_run()
    path = tmp_path / f"{result.run_id}.json"
    path.write_text(result.trace.to_json(indent=2), "utf-8")
    return path


def test_cli_prints_mermaid_for_a_saved_trace(tmp_path: Path) -> None:
    path = saved_trace(tmp_path)
    done = CliRunner().invoke(main, ["render", str(path), "--format", "mermaid"])
    assert done.exit_code == 0, done.output
    trace = Trace.from_json(path.read_bytes())
    assert done.output == to_mermaid(trace)
    parsed = check_matches_diagram(done.output, to_diagram(trace))
    assert parsed.title is not None and parsed.title.startswith("failing · finished · 1 iteration")


def test_cli_writes_mermaid_to_output_and_keeps_dot_as_the_default(tmp_path: Path) -> None:
    path = saved_trace(tmp_path)
    out = tmp_path / "run.mmd"
    done = CliRunner().invoke(main, ["render", str(path), "--format", "mermaid", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert done.output == f"{out}\n"
    assert out.read_text("utf-8") == to_mermaid(Trace.from_json(path.read_bytes()))
    for args in ([], ["--format", "dot"]):
        done = CliRunner().invoke(main, ["render", str(path), *args])
        assert done.exit_code == 0, done.output
        assert done.output.startswith("digraph planloop {")
    done = CliRunner().invoke(main, ["render", "--help"])
    assert "[dot|mermaid|svg|png|pdf]" in done.output
    assert "'dot' and 'mermaid' are text" in " ".join(done.output.split())


def test_cli_takes_the_text_format_from_the_suffix_and_names_bad_ones(tmp_path: Path) -> None:
    path = saved_trace(tmp_path)
    trace = Trace.from_json(path.read_bytes())
    for name, expected in (("run.mmd", to_mermaid(trace)), ("run.dot", to_dot(trace))):
        out = tmp_path / name
        done = CliRunner().invoke(main, ["render", str(path), "-o", str(out)])
        assert done.exit_code == 0, done.output
        assert out.read_text("utf-8") == expected
    done = CliRunner().invoke(main, ["render", str(path), "-o", str(tmp_path / "run.txt")])
    assert done.exit_code == 2  # a usage error: the -o suffix
    assert "cannot tell the image format" in done.output
    assert "Traceback" not in done.output
