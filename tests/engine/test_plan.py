from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from planloop import InvalidPlan, Plan, Step, ref
from planloop.nodes import Tool


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_refs_add_edges_and_graph_is_networkx() -> None:
    plan = Plan(
        [
            Step(id="x", tool="add", args={"a": 1, "b": 2}),
            Step(id="y", tool="add", args={"a": ref("x"), "b": [ref("x")]}, depends_on=("x",)),
            Step(id="z", tool="add", args={"a": ref("y"), "b": 1}),
        ]
    )
    g = plan.graph()
    assert sorted(g.edges) == [("x", "y"), ("y", "z")]
    assert g.nodes["z"]["step"].tool == "add"
    assert plan.dependencies(plan.by_id["y"]) == ("x",)


def test_every_problem_is_listed_at_once() -> None:
    plan = Plan(
        [
            Step(id="a", tool="add", args={"a": 1, "b": 2}),
            Step(id="a", tool="add", args={"a": 1, "b": 2}),
            Step(id="b", tool="add", args={"a": ref("ghost"), "b": 1}, depends_on=("nowhere",)),
            Step(id="c", tool="add", args={"a": ref("d"), "b": 1}),
            Step(id="d", tool="add", args={"a": ref("c"), "b": 1}),
            Step(id="e", tool="search", args={}),
            Step(id="f", tool="add", args={"a": "many", "b": 1}),
            Step(id="g", tool="add", args={"a": ref("g"), "b": 1}),
        ]
    )
    with pytest.raises(InvalidPlan) as info:
        plan.validate([Tool(add)])
    assert info.value.problems == (
        "step id 'a' is used more than once; give each step a unique id",
        "step 'b' depends on 'nowhere', which is not in the plan; "
        "add a step 'nowhere' or drop the dependency",
        "step 'b' refers to 'ghost', but there is no step 'ghost'; "
        "refer to one of: a, b, c, d, e, f, g",
        "step 'g' refers to its own output ('g'); "
        "a step can only use outputs of steps that run before it",
        "the steps form a cycle: 'c' -> 'd' -> 'c'; remove one of these dependencies",
        "step 'e' uses tool 'search', which does not exist; use one of: add",
        "step 'f': invalid arguments for tool 'add': "
        "a: Input should be a valid integer, unable to parse string as an integer (got 'many')",
    )


def test_empty_and_oversized_plans_are_rejected() -> None:
    with pytest.raises(InvalidPlan, match="the plan has no steps"):
        Plan([]).validate()
    big = Plan([Step(id=str(i), tool="add") for i in range(5)])
    with pytest.raises(InvalidPlan, match="the plan has 5 steps, more than max_steps=4"):
        big.validate(max_steps=4)


def test_refs_with_fields_and_dotted_ids() -> None:
    plan = Plan(
        [
            Step(id="v1.0", tool="t"),
            Step(id="use", tool="t", args={"x": ref("v1.0", "body")}),
        ]
    )
    assert plan.dependencies(plan.by_id["use"]) == ("v1.0",)
    plan.validate()


def test_a_copied_step_with_changes_does_not_keep_the_originals_cached_values() -> None:
    step = Step(id="a", tool="add", args={"a": ref("x")})
    assert (step.tool_name, step.references) == ("add", ("x",))
    copied = step.model_copy(update={"tool": len, "args": {"a": ref("y", "n")}})
    assert (copied.tool_name, copied.references) == ("len", ("y.n",))
    assert (step.tool_name, step.references) == ("add", ("x",))
    assert copied.model_copy() == copied


def test_a_copied_plan_with_changes_does_not_keep_the_originals_index_or_problems() -> None:
    plan = Plan([Step(id="a", tool="t"), Step(id="b", tool="t", depends_on=("a",))])
    assert plan.problems() == [] and plan.by_id.keys() == {"a", "b"}
    copied = plan.model_copy(update={"steps": (Step(id="b", tool="t", depends_on=("b",)),)})
    assert copied.by_id.keys() == {"b"}
    assert copied.problems() == ["step 'b' depends on itself; drop that dependency"]
    assert plan.problems() == []


@st.composite
def _rough_plans(draw: st.DrawFn) -> Plan:
    ids = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "v1.0"]), min_size=1, max_size=6))
    targets = st.sampled_from(["a", "b", "c", "d", "v1.0", "v1.0.x", "a.n", "ghost", "ghost.n"])
    steps = [
        Step(
            id=sid,
            tool="t",
            depends_on=tuple(draw(st.lists(targets, max_size=3))),
            args={f"p{k}": ref(t) for k, t in enumerate(draw(st.lists(targets, max_size=2)))},
        )
        for sid in ids
    ]
    return Plan(steps)


@settings(max_examples=300, deadline=None)
@given(_rough_plans())
def test_the_structure_check_skips_only_what_would_find_nothing(plan: Plan) -> None:
    problems = list(plan._structure_problems)
    found = plan._edge_problems()
    assert problems[: len(found)] == found
    assert len(problems) - len(found) == (1 if plan.find_cycle() else 0)


@settings(max_examples=300, deadline=None)
@given(_rough_plans())
def test_find_cycle_agrees_with_networkx_in_any_order_of_the_steps(plan: Plan) -> None:
    import networkx as nx

    assume(len(plan.by_id) == len(plan.steps))  # a repeated id is one node to networkx
    graph = plan.graph()
    graph.remove_edges_from(list(nx.selfloop_edges(graph)))  # reported on their own
    has_cycle = not nx.is_directed_acyclic_graph(graph)
    assert bool(plan.find_cycle()) == has_cycle
    # The shortcut: steps that all come after what they wait for cannot form a cycle.
    if plan.index.forward:
        assert not has_cycle
    reordered = Plan(list(reversed(plan.steps)))
    assert bool(reordered.find_cycle()) == has_cycle


def test_a_plan_listed_against_its_edges_is_still_checked_for_cycles() -> None:
    backwards = Plan([Step(id="b", tool="t", depends_on=("a",)), Step(id="a", tool="t")])
    assert not backwards.index.forward
    assert backwards.find_cycle() == []
    cycle = Plan(
        [Step(id="a", tool="t", depends_on=("b",)), Step(id="b", tool="t", depends_on=("a",))]
    )
    assert not cycle.index.forward
    assert sorted(cycle.find_cycle()) == ["a", "b"]
    assert Plan([Step(id="a", tool="t"), Step(id="b", tool="t", depends_on=("a",))]).index.forward


@settings(max_examples=300, deadline=None)
@given(_rough_plans())
def test_the_index_holds_each_steps_dependents_in_order(plan: Plan) -> None:
    index = plan.index
    pos = index.position
    n = len(plan.steps)
    expected = [
        tuple(i for i in range(n) for d in index.deps[i] if pos.get(d) == j and j != i)
        for j in range(n)
    ]
    assert list(index.dependents) == expected
    assert list(index.indegree) == [
        sum(1 for d in index.deps[i] if pos.get(d) is not None and pos[d] != i) for i in range(n)
    ]
