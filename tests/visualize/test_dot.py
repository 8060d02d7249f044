"""DOT text of machines, plans and real runs: exact where small, structural elsewhere."""

from __future__ import annotations

import re

import pytest

import planloop
from planloop import (
    Answer,
    Answered,
    Continued,
    Event,
    FunctionPlanner,
    MachineSpec,
    Plan,
    RunContext,
    RunResult,
    Step,
    Stopped,
    ref,
)
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from planloop.visualize import Diagram, Edge, Node, Style, escape_label, ir_to_dot, to_dot
from planloop.visualize.dot import quote_id
from planloop.visualize.extract import duration_text, preview
from planloop.visualize.ir import Cluster
from planloop.visualize.trace_ir import trace_to_ir


@planloop.tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@planloop.tool(handle_tool_error=True)
def flaky(x: int) -> int:
    """Always fails."""
    raise RuntimeError(f"upstream timed out ({x})")


def stopped_run() -> RunResult:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2})] * 5)
    return planloop.Agent(model, [add], max_iterations=2).run_sync("x")


def failed_step_run() -> RunResult:
    model = ScriptedModel([[ToolCall("add", {"a": 1, "b": 2}), ToolCall("nope", {})], "3"])
    return planloop.Agent(model, [add]).run_sync("x")


SMALL_SPEC_DOT = """\
digraph planloop {
  graph [fontname="Helvetica", fontsize="15", label="machine", labelloc="t", nodesep="0.3", \
rankdir="TB", ranksep="0.4"];
  node [fontname="Helvetica", fontsize="11", margin="0.12,0.06"];
  edge [arrowsize="0.7", fontname="Helvetica", fontsize="9"];
  "start" [color="#37474f", fillcolor="#37474f", label="", shape="point", style="filled", \
tooltip="start"];
  "s_plan" [color="#1565c0", fillcolor="#e3f2fd", fontcolor="#37474f", label="plan", \
shape="box", style="rounded,filled"];
  "s_finish" [color="#1565c0", fillcolor="#e3f2fd", fontcolor="#37474f", label="finish", \
penwidth="2", shape="box", style="rounded,bold,filled"];
  "s_stopped" [color="#1565c0", fillcolor="#e3f2fd", fontcolor="#37474f", label="stopped", \
penwidth="2", shape="box", style="rounded,bold,filled"];
  "start" -> "s_plan" [color="#37474f"];
  "s_plan" -> "s_finish" [color="#37474f", fontcolor="#37474f", label="Answered"];
  "s_plan" -> "s_stopped" [color="#37474f", fontcolor="#37474f", label="Stopped"];
}
"""


def test_small_spec_gives_exact_dot() -> None:
    spec = MachineSpec(
        states=["plan", "finish", "stopped"],
        transitions={Answered: {"plan": "finish"}, Stopped: {"plan": "stopped"}},
    )
    assert to_dot(spec) == SMALL_SPEC_DOT
    assert to_dot(spec.summary) == SMALL_SPEC_DOT


def test_default_spec_draws_the_loop_back_edge_without_ranking_on_it() -> None:
    dot = to_dot(MachineSpec.default())
    assert (
        '"s_observe" -> "s_plan" [color="#37474f", constraint="false", fontcolor="#37474f", '
        'label="Continued"];'
    ) in dot
    assert dot.count('label="Stopped"') == 3


def test_stopped_run_shows_visits_counts_reason_and_untaken_transitions() -> None:
    result = stopped_run()
    assert result.stop_reason == "max_iterations"
    dot = to_dot(result)
    assert 'label="plan ×2"' in dot
    assert 'label="act ×2"' in dot
    assert 'label="observe ×2"' in dot
    assert 'label="Planned ×2"' in dot
    assert 'label="Continued ×1"' in dot
    # the final state: red, with the stop reason
    assert (
        '"s_stopped" [color="#b71c1c", fillcolor="#ef9a9a", fontcolor="#37474f", '
        'label="stopped\\nmax_iterations", penwidth="2.5", shape="box", '
        'style="rounded,bold,filled"];'
    ) in dot
    # transitions never taken: faint and dashed; a state never visited: faint
    assert (
        '"s_plan" -> "s_finish" [color="#b0bec5", fontcolor="#b0bec5", label="Answered", '
        'style="dashed"];'
    ) in dot
    assert (
        '"s_finish" [color="#b0bec5", fontcolor="#b0bec5", label="finish", shape="box", '
        'style="rounded,dashed"];'
    ) in dot
    assert '"start" -> "s_plan"' in dot
    # one cluster per act, each with its step
    assert 'subgraph "cluster_act1" {' in dot
    assert 'subgraph "cluster_act2" {' in dot
    assert 'subgraph "cluster_act3"' not in dot
    assert '"a1_0" -> "a2_0" [color="#b0bec5", lhead="cluster_act2", ltail="cluster_act1"' in dot
    assert "stopped: max_iterations · 2 iterations" in dot


def test_failed_step_is_red_with_its_error_and_the_finish_is_green() -> None:
    dot = to_dot(failed_step_run(), timings=False)
    assert (
        '"a1_1" [color="#c62828", fillcolor="#ffcdd2", fontcolor="#37474f", '
        'label="call_2 · nope\\nfailed\\nnope is not a valid tool, try one of [a…", '
        'shape="box", style="rounded,filled", '
        'tooltip="nope is not a valid tool, try one of [add]."];'  # the whole error
    ) in dot
    assert (
        '"a1_0" [color="#2e7d32", fillcolor="#c8e6c9", fontcolor="#37474f", '
        'label="call_1 · add\\nsucceeded\\n= 3", shape="box", style="rounded,filled"];'
    ) in dot
    assert (
        '"s_finish" [color="#1b5e20", fillcolor="#a5d6a7", fontcolor="#37474f", '
        'label="finish\\n= 3", penwidth="2.5"'
    ) in dot
    assert 'subgraph "cluster_legend" {' in dot


def test_timings_show_durations_in_ms() -> None:
    result = failed_step_run()
    timed = to_dot(result)
    step = result.trace.step_results[0]
    assert step.duration is not None
    assert f"{step.status.value} · {duration_text(step.duration)}" in timed
    assert " ms" in timed
    assert " ms" not in to_dot(result, timings=False)


def test_equal_runs_give_identical_dot_without_timings() -> None:
    first, second = failed_step_run(), failed_step_run()
    assert first.run_id != second.run_id
    assert to_dot(first, timings=False) == to_dot(second, timings=False)
    assert first.run_id not in to_dot(first)
    assert to_dot(stopped_run(), timings=False) == to_dot(stopped_run(), timings=False)


def test_dot_of_a_trace_equals_dot_of_its_json_round_trip() -> None:
    result = failed_step_run()
    again = planloop.Trace.from_json(result.trace.to_json())
    assert to_dot(again) == to_dot(result.trace)


def test_steps_follow_the_plan_order_with_dependency_edges_and_skips() -> None:
    @planloop.tool
    def fetch(key: str) -> dict[str, int]:
        """Fetch."""
        return {"n": len(key)}

    def plan(ctx: RunContext) -> Plan | Answer:
        if ctx.iteration:
            return Answer("done")
        return Plan(
            [
                Step(id="a", tool="fetch", args={"key": "alpha"}),
                Step(id="f", tool="flaky", args={"x": 1}),
                Step(id="sum", tool="add", args={"a": ref("a", "n"), "b": 1}),
                Step(id="g", tool="add", args={"a": ref("f"), "b": 1}),
            ]
        )

    agent = planloop.Agent(None, [fetch, flaky, add], planner=FunctionPlanner(plan))
    dot = to_dot(agent.run_sync("q"), timings=False)
    assert "label=\"a · fetch\\nsucceeded\\n= {'n': 5}\"" in dot
    assert 'label="f · flaky\\nfailed\\nRuntimeError: upstream timed out (1)"' in dot
    assert "label=\"g · add\\nskipped\\ndependency 'f' failed\"" in dot
    assert 'fillcolor="#eceff1"' in dot  # skipped grey
    assert '"a1_0" -> "a1_2" [color="#37474f"];' in dot
    assert '"a1_1" -> "a1_3" [color="#37474f"];' in dot


class Reflected(Event):
    note: str = ""


def test_user_states_and_rejected_outputs_are_drawn() -> None:
    spec = MachineSpec.default().with_transitions(
        {
            Continued: {"observe": "reflect"},
            Reflected: {"reflect": "plan"},
            Stopped: {"reflect": "stopped"},
        },
        states=["reflect"],
    )

    def plan(ctx: RunContext) -> Plan | Answer:
        if ctx.iteration == 0:
            return Plan([Step(id="x", tool="add", args={"a": 1, "b": 2}, depends_on=("ghost",))])
        return Answer("ok")

    agent = planloop.Agent(
        None,
        [add],
        planner=FunctionPlanner(plan),
        spec=spec,
        handlers={"reflect": lambda ctx: Reflected()},
        name="reflective",
    )
    dot = to_dot(agent.run_sync("q"), timings=False)
    assert 'label="reflect ×1"' in dot
    assert 'label="Reflected ×1"' in dot
    assert 'label="Rejected ×1"' in dot
    assert (
        '"r1" [color="#f9a825", fillcolor="#fff9c4", fontcolor="#37474f", '
        "label=\"rejected #1: invalid plan\\n- step 'x' depends on 'ghost', which is…\", "
        'shape="note", style="filled", '
        "tooltip=\"invalid plan (1 problem):\\n  - step 'x' depends on 'ghost', which is not"
    ) in dot
    assert 'label="reflective · finished · 1 iteration"' in dot
    assert "cluster_legend" not in dot  # no act, no step colours to explain


def test_plan_diagram_draws_references_and_missing_dependencies() -> None:
    plan = Plan(
        [
            Step(id="a", tool="fetch", args={"key": "alpha"}),
            Step(id="sum", tool="add", args={"a": ref("a", "n"), "b": 2}),
            Step(id="x", tool="t", depends_on=("ghost",)),
        ]
    )
    dot = to_dot(plan)
    assert 'label="plan · 3 steps"' in dot
    assert "label=\"a · fetch\\nkey='alpha'\"" in dot
    assert 'label="sum · add\\na=$a.n, b=2"' in dot
    assert '"p_0" -> "p_1" [color="#37474f"];' in dot
    assert '"missing_0" -> "p_2" [color="#37474f"];' in dot
    assert 'label="ghost\\n(not in the plan)"' in dot


def test_anything_else_is_a_type_error_naming_what_is_accepted() -> None:
    with pytest.raises(TypeError) as info:
        to_dot(42)
    assert str(info.value) == (
        "cannot draw int; pass a Trace, RunResult, Plan, MachineSpec, SpecSummary or Diagram"
    )


def test_style_changes_colours_and_rejects_short_hex() -> None:
    style = Style(failed_fill="#ff0000", font="DejaVu Sans")
    dot = to_dot(failed_step_run(), style=style)
    assert 'fillcolor="#ff0000"' in dot
    assert 'fontname="DejaVu Sans"' in dot
    with pytest.raises(ValueError, match=r"Style\.failed_fill must be a 6-digit hex colour"):
        Style(failed_fill="#f00")
    with pytest.raises(ValueError, match=r"Node\.fill must be a 6-digit hex colour"):
        Node("a", fill="red")


def test_long_runs_are_folded_to_their_first_and_last_acts() -> None:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2})] * 12)
    result = planloop.Agent(model, [add], max_iterations=10).run_sync("x")
    unfolded = trace_to_ir(result, timings=False, style=Style(fold=None))
    assert [c.id for c in unfolded.clusters] == [f"act{n}" for n in range(1, 11)] + ["legend"]

    diagram = trace_to_ir(result, timings=False, style=Style(fold=2))
    assert [c.id for c in diagram.clusters] == ["act1", "act2", "act9", "act10", "legend"]
    folded = next(n for n in diagram.nodes if n.id == "folded")
    assert folded.label == "⋯ acts 3–8 not drawn\n6 steps: 6 succeeded"
    # The chain runs act2 -> folded note -> act9, and the loop's counts are the whole run's.
    chain = [(e.source, e.target) for e in diagram.edges if e.style != ("invis",)]
    assert ("act2", "folded") in chain
    assert ("folded", "act9") in chain
    act_state = next(n for n in diagram.nodes if n.id == "s_act")
    assert act_state.label == "act ×10"
    with pytest.raises(ValueError, match=r"Style\.fold must be at least 1 or None"):
        Style(fold=0)


def test_a_short_run_is_not_folded() -> None:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2})] * 7)
    result = planloop.Agent(model, [add], max_iterations=7).run_sync("x")
    diagram = trace_to_ir(result, timings=False)  # 7 acts = 2 * 3 + 1: all drawn
    assert [c.id for c in diagram.clusters] == [f"act{n}" for n in range(1, 8)] + ["legend"]


# --- the escaping function -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("ends with \\", '"ends with \\\\"'),
        ("two\nlines\r\nthree\rfour", '"two\\nlines\\nthree\\nfour"'),
        ("{a|b} <c>", '"{a|b} <c>"'),
        ("\\N \\G \\l", '"\\\\N \\\\G \\\\l"'),
        ("a & b &lt;", '"a &amp; b &amp;lt;"'),
        ("tab\there", '"tab here"'),
        ("nul\x00 bell\x07 esc\x1b del\x7f", '"nul\\\\x00 bell\\\\x07 esc\\\\x1b del\\\\x7f"'),
        ("é ✓ 😀", '"é ✓ 😀"'),
        ("lone \ud800 surrogate", '"lone \ufffd surrogate"'),
    ],
)
def test_escape_label(text: str, expected: str) -> None:
    assert escape_label(text) == expected


def test_escape_label_cuts_long_text_with_an_ellipsis() -> None:
    assert escape_label("x" * 10_000) == '"' + "x" * 299 + '…"'
    assert escape_label("abcdef", max_chars=4) == '"abc…"'
    assert escape_label("abcd", max_chars=4) == '"abcd"'
    with pytest.raises(ValueError, match="max_chars must be at least 1"):
        escape_label("x", max_chars=0)


def test_quote_id_escapes_quotes_and_backslashes() -> None:
    assert quote_id('a"b\\') == '"a\\"b\\\\"'


def test_preview_is_one_short_line_without_addresses() -> None:
    assert preview("a\n\n b", 40) == "a b"
    assert preview("x" * 50, 10) == "xxxxxxxxx…"
    assert "0x" not in preview(object())


# --- the IR renderer -------------------------------------------------------------


def test_edges_to_clusters_are_clipped_at_the_border() -> None:
    diagram = Diagram(
        nodes=(Node("a"), Node("b"), Node("c")),
        clusters=(Cluster("box", "box", nodes=("b", "c")),),
        edges=(Edge("a", "box"),),
    )
    dot = ir_to_dot(diagram)
    assert 'compound="true"' in dot
    assert '"a" -> "b" [lhead="cluster_box"];' in dot


@pytest.mark.parametrize(
    ("diagram", "message"),
    [
        (Diagram(nodes=(Node("a"), Node("a"))), "diagram id 'a' is used more than once"),
        (Diagram(nodes=(Node("a"),), edges=(Edge("a", "z"),)), "edge 'a' -> 'z': unknown id 'z'"),
        (
            Diagram(clusters=(Cluster("c", nodes=("ghost",)),)),
            "cluster 'c' lists unknown node 'ghost'",
        ),
        (
            Diagram(
                nodes=(Node("a"),),
                clusters=(Cluster("c1", nodes=("a",)), Cluster("c2", nodes=("a",))),
            ),
            "node 'a' is in more than one cluster",
        ),
        (
            Diagram(nodes=(Node("a"),), clusters=(Cluster("c"),), edges=(Edge("a", "c"),)),
            "edge 'a' -> 'c': cluster 'c' is empty",
        ),
    ],
)
def test_broken_diagrams_are_rejected(diagram: Diagram, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        ir_to_dot(diagram)
    assert str(info.value) == message


# --- sub-agents -------------------------------------------------------------------


def plan_and_execute_run() -> RunResult:
    planner_model = ScriptedModel(["Plan:\n1. Add them\n2. Say it\n<END_OF_PLAN>"])
    executor_model = ScriptedModel([ToolCall("add", {"a": 1, "b": 2}), "it is 3", "Three."])
    pe = planloop.PlanAndExecute(
        planloop.load_chat_planner(planner_model),
        planloop.load_agent_executor(executor_model, [add]),
    )
    return pe.run_sync("add 1 and 2")


def test_sub_agent_runs_are_nested_in_the_step_that_ran_them() -> None:
    diagram = trace_to_ir(plan_and_execute_run(), timings=False)
    act = next(c for c in diagram.clusters if c.id == "act1")
    assert [c.id for c in act.clusters] == ["a1_0_sub", "a1_1_sub"]
    first, second = act.clusters
    assert first.label == "sub-agent of step_1 · finished · 1 iteration"
    assert [c.id for c in first.clusters] == ["a1_0_act1"]
    labels = {n.id: n.label for n in diagram.nodes}
    assert labels["a1_0_a1_0"] == "call_1 · add\nsucceeded\n= 3"
    # The second sub-agent answered without a tool: a note says so.
    assert second.nodes == ("a1_1_answer",)
    assert labels["a1_1_answer"] == "answered directly\n= Three."
    # Each step points at its sub-agent's first node.
    dashed = {(e.source, e.target) for e in diagram.edges if e.style == ("dashed",)}
    assert {("a1_0", "a1_0_a1_0"), ("a1_1", "a1_1_answer")} <= dashed
    # Every node is in exactly one cluster or none, and DOT accepts the nesting.
    seen = [n for c in diagram.all_clusters() for n in c.nodes]
    assert len(seen) == len(set(seen))
    dot = ir_to_dot(diagram)
    assert 'subgraph "cluster_a1_0_sub"' in dot


def test_sub_agents_collapse_into_a_line_on_their_step() -> None:
    diagram = trace_to_ir(plan_and_execute_run(), timings=False, style=Style(sub_agents=False))
    act = next(c for c in diagram.clusters if c.id == "act1")
    assert act.clusters == ()
    labels = {n.id: n.label for n in diagram.nodes}
    assert labels["a1_0"].endswith("\nsub-agent: finished · 1 iteration")
    assert not any(n.startswith("a1_0_") for n in labels)
