"""Pictures of large workflows: an act of thousands of steps is folded to a readable page."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pytest

import planloop
from planloop import RunResult
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from planloop.visualize import Diagram, Node, Style, to_dot, to_mermaid, trace_to_ir


@planloop.tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def ok(**_: Any) -> int:
    return 1


def bad(**_: Any) -> int:
    raise ValueError("boom")


def flat_workflow(size: int, failing: Iterable[int] = ()) -> RunResult:
    """``size`` independent steps ``s0``, ``s1`` ...; the ``failing`` ones raise."""
    broken = set(failing)
    wf = planloop.Workflow("big", store=False)
    for i in range(size):
        wf.step(bad if i in broken else ok, id=f"s{i}")
    try:
        return wf.run_sync()
    except planloop.StepFailed as exc:
        return exc.result


def chained_workflow(chains: int, length: int) -> RunResult:
    """``chains`` chains ``c0_0 -> c0_1 -> ...`` of ``length`` steps each."""
    wf = planloop.Workflow("chains", store=False)
    for c in range(chains):
        prev: planloop.StepHandle | None = None
        for i in range(length):
            prev = wf.step(ok, id=f"c{c}_{i}", depends_on=[prev] if prev else [])
    return wf.run_sync()


def act_steps(diagram: Diagram, act: int = 1) -> list[Node]:
    """The nodes of an act's cluster that are steps (the fold note excluded)."""
    cluster = next(c for c in diagram.clusters if c.id == f"act{act}")
    nodes = {n.id: n for n in diagram.nodes}
    return [nodes[n] for n in cluster.nodes if not n.endswith("_more")]


def fold_note(diagram: Diagram, act: int = 1) -> Node:
    return next(n for n in diagram.nodes if n.id == f"a{act}_more")


def step_ids(nodes: Iterable[Node]) -> list[str]:
    return [n.label.split(" · ")[0] for n in nodes]


FAILING = (500, 1000, 1001, 1500, 1998)


@pytest.fixture(scope="module")
def large() -> RunResult:
    return flat_workflow(2000, FAILING)


def test_an_act_of_2000_steps_draws_a_few_and_counts_the_rest(large: RunResult) -> None:
    diagram = trace_to_ir(large, timings=False)
    drawn = act_steps(diagram)
    limit = Style().max_steps
    assert limit is not None
    assert len(drawn) <= limit
    ids = step_ids(drawn)
    # The first and last steps in plan order, and every failed one, are drawn.
    assert ids[:3] == ["s0", "s1", "s2"]
    assert ids[-3:] == ["s1997", "s1998", "s1999"]
    for i in FAILING:
        node = next(n for n in drawn if n.label.startswith(f"s{i} · "))
        assert "failed" in node.label
        assert "boom" in node.label
    hidden = 2000 - len(drawn)
    note = fold_note(diagram)
    assert note.label.startswith(f"⋯ {hidden:,} more steps not drawn\n")
    statuses = [s.status.value for s in large.steps if s.step_id not in set(ids)]
    assert len(statuses) == hidden
    counts = ", ".join(f"{statuses.count(v):,} {v}" for v in sorted(set(statuses)))
    assert note.label.endswith(f"\n{counts}")
    assert note.tooltip is not None
    assert "to_json()" in note.tooltip
    assert "Style(max_steps=None)" in note.tooltip


def test_the_dot_text_of_a_folded_act_names_what_it_hides(large: RunResult) -> None:
    dot = to_dot(large, timings=False)
    step_lines = re.findall(r'^\s+"a1_\d+" \[', dot, flags=re.MULTILINE)
    assert 0 < len(step_lines) < 50
    assert "more steps not drawn" in dot
    assert "s1000 · bad" in dot
    mermaid = to_mermaid(large, timings=False)
    assert "more steps not drawn" in mermaid
    assert len(mermaid.splitlines()) < 200


def test_max_steps_none_draws_every_step(large: RunResult) -> None:
    diagram = trace_to_ir(large, timings=False, style=Style(max_steps=None))
    assert step_ids(act_steps(diagram)) == [f"s{i}" for i in range(2000)]
    assert not any(n.id == "a1_more" for n in diagram.nodes)
    dot = to_dot(large, timings=False, style=Style(max_steps=None))
    assert len(re.findall(r'^\s+"a1_\d+" \[', dot, flags=re.MULTILINE)) == 2000


def test_an_act_at_the_limit_is_not_folded() -> None:
    result = flat_workflow(12)
    diagram = trace_to_ir(result, timings=False, style=Style(max_steps=12))
    assert step_ids(act_steps(diagram)) == [f"s{i}" for i in range(12)]
    folded = trace_to_ir(result, timings=False, style=Style(max_steps=11))
    assert step_ids(act_steps(folded)) == ["s0", "s1", "s2", "s9", "s10", "s11"]
    # The note stands where the hidden steps would: Graphviz keeps that order.
    cluster = next(c for c in folded.clusters if c.id == "act1")
    assert cluster.nodes == ("a1_0", "a1_1", "a1_2", "a1_more", "a1_9", "a1_10", "a1_11")
    assert fold_note(folded).label == "⋯ 6 more steps not drawn\n6 succeeded"


def test_folded_chains_run_through_the_note() -> None:
    diagram = trace_to_ir(chained_workflow(3, 40), timings=False, style=Style(max_steps=10))
    names = {n.id: n.label.split(" · ")[0] for n in diagram.nodes}
    edges = {(names[e.source], names[e.target]) for e in diagram.edges if e.style != ("invis",)}
    note = fold_note(diagram).label
    # Drawn: c0_0..c0_2 and c2_37..c2_39; the steps between are behind the note.
    assert ("c0_0", "c0_1") in edges
    assert ("c0_1", "c0_2") in edges
    assert ("c0_2", note) in edges  # c0_3, which needs c0_2, is hidden
    assert (note, "c2_37") in edges  # c2_37 needs c2_36, which is hidden
    assert ("c2_38", "c2_39") in edges
    assert note.startswith("⋯ 114 more steps not drawn")


def test_style_max_steps_is_checked() -> None:
    with pytest.raises(ValueError, match=r"Style\.max_steps must be at least 7 or None, not 3"):
        Style(max_steps=3)


def test_a_10000_step_workflow_is_drawn_as_a_small_picture() -> None:
    result = flat_workflow(10_000, [4321])
    dot = to_dot(result)
    assert len(dot.splitlines()) < 200
    assert "9,993 more steps not drawn" in dot
    assert "s4321 · bad" in dot
    assert "9,993 more steps not drawn" in to_mermaid(result)


def test_two_wide_acts_drawn_whole_are_kept_apart_by_few_edges() -> None:
    # Every step of the first act is a sink and every step of the second a
    # source: joining each pair would make 150 * 150 invisible edges.
    calls = [ToolCall("add", {"a": i, "b": 1}) for i in range(150)]
    model = ScriptedModel([calls, calls, "done"])
    result = planloop.Agent(model, [add]).run_sync("x")
    diagram = trace_to_ir(result, timings=False, style=Style(max_steps=None))
    assert len(act_steps(diagram, 1)) == len(act_steps(diagram, 2)) == 150
    between = [
        e
        for e in diagram.edges
        if e.style == ("invis",) and e.source.startswith("a1_") and e.target.startswith("a2_")
    ]
    assert {e.source for e in between} == {f"a1_{i}" for i in range(150)}
    assert {e.target for e in between} == {f"a2_{i}" for i in range(150)}
    assert len(between) < 2 * 150
