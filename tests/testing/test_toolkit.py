"""AgentStateMachine, the kept failing runs, invalid_plans and the pytest plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings

from planloop import Agent, InvalidPlan, RunResult, Workflow, tool
from planloop.testing import INVALID_KINDS, AgentStateMachine, invalid_plans, plans

pytest_plugins = ["pytester"]


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


class CalculatorMachine(AgentStateMachine):
    tools: ClassVar[list[Any]] = [add, shout]
    time_slack = 3.0  # past a hanging fault's deadline, on a slow shared machine

    def make_agent(self, model: Any, tools: list[Any], limits: dict[str, Any]) -> Agent:
        return Agent(model, tools, store=False, **limits)

    def check_result(self, result: RunResult) -> None:
        assert result.trace.run_id == result.run_id


class ReActMachine(CalculatorMachine):
    planner = "react"


def _calling(t: Any) -> Any:
    def call() -> Any:
        return t.invoke({})

    call.__name__ = t.name
    return call


class WorkflowMachine(AgentStateMachine):
    """A workflow takes no model: the machine still varies the faults it is given."""

    faults = ("flaky", "raising")

    def make_agent(self, model: Any, tools: list[Any], limits: dict[str, Any]) -> Workflow:
        wf = Workflow("pipeline", store=False)
        first = wf.step(lambda: 1, id="first")
        for i, t in enumerate(tools):
            wf.step(_calling(t), id=f"fault{i}", depends_on=[first])
        return wf


TestCalculatorMachine = CalculatorMachine.TestCase
TestCalculatorMachine.settings = settings(max_examples=40, stateful_step_count=4, deadline=None)
TestReActMachine = ReActMachine.TestCase
TestReActMachine.settings = settings(max_examples=25, stateful_step_count=4, deadline=None)
TestWorkflowMachine = WorkflowMachine.TestCase
TestWorkflowMachine.settings = settings(max_examples=15, stateful_step_count=3, deadline=None)


def test_a_machine_without_make_agent_says_what_to_write() -> None:
    class Empty(AgentStateMachine):
        pass

    with pytest.raises(NotImplementedError, match=r"Empty must define make_agent\(self, model"):
        Empty().make_agent(None, [], {})


@settings(max_examples=150, deadline=None)
@given(invalid_plans(tools=[add, shout]))
def test_every_invalid_plan_is_refused(case: tuple[str, Any]) -> None:
    _, plan = case
    with pytest.raises(InvalidPlan):
        plan.validate([add, shout])


@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_every_kind_of_invalid_plan_can_be_drawn(kind: str) -> None:
    @settings(max_examples=5, deadline=None)
    @given(invalid_plans(tools=[add], kinds=[kind]))
    def drawn(case: tuple[str, Any]) -> None:
        assert case[0] == kind
        with pytest.raises(InvalidPlan):
            case[1].validate([add])

    drawn()


def test_invalid_plans_refuses_unknown_kinds() -> None:
    with pytest.raises(ValueError, match=r"got \['loop'\]; use some of \['bad_arguments'"):
        invalid_plans(tools=[add], kinds=["loop"])


@settings(max_examples=50, deadline=None)
@given(plans(tools=[add, shout], max_steps=6))
def test_generated_plans_are_valid(plan: Any) -> None:
    plan.validate([add, shout])
    assert 1 <= len(plan.steps) <= 6


FAILING_MACHINE = """
from hypothesis import Phase, settings
from planloop import Agent, tool
from planloop.testing import AgentStateMachine

@tool
def add(a: int, b: int) -> int:
    '''Add two integers.'''
    return a + b

class FewStepsMachine(AgentStateMachine):
    tools = [add]
    faults = ()

    def make_agent(self, model, tools, limits):
        return Agent(model, tools, store=False, **limits)

    def check_result(self, result):
        assert not result.steps, "the agent ran a step"

TestFewSteps = FewStepsMachine.TestCase
# No explain phase: it re-runs the failing example under coverage, which is slow.
TestFewSteps.settings = settings(max_examples=30, stateful_step_count=2, deadline=None,
                                 database=None, phases=[Phase.generate, Phase.shrink])
"""


def test_a_failing_machine_keeps_the_shrunk_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_agent=FAILING_MACHINE)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--basetemp={pytester.path / 'tmp'}"
    )
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "AssertionError: the agent ran a step" in output
    assert "planloop kept the failing run (trace and diagram):" in output
    default = pytester.path / ".planloop" / "failures"
    files = sorted(p.name for p in default.iterdir())
    stems = {Path(f).stem for f in files}
    assert len(stems) >= 1 and all(f"{s}.json" in files and f"{s}.svg" in files for s in stems)
    for stem in stems:
        assert f"{default / stem}.svg" in output
        svg = (default / f"{stem}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "</svg>" in svg
        from planloop import Trace

        trace = Trace.from_json((default / f"{stem}.json").read_text())
        assert len(trace.step_results) == 1  # the shrunk run that broke the invariant


def test_planloop_failures_chooses_the_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANLOOP_FAILURES", str(pytester.path / "kept"))
    pytester.makepyfile(test_agent=FAILING_MACHINE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert any(p.suffix == ".svg" for p in (pytester.path / "kept").iterdir())


PLUGIN_TESTS = """
from planloop import Agent, tool
from planloop.models import ToolCall

@tool
def add(a: int, b: int) -> int:
    '''Add two integers.'''
    return a + b

def test_fixtures(scripted_model, planloop_store, planloop_diagrams):
    model = scripted_model([ToolCall("add", {"a": 1, "b": 2}), "3"])
    result = Agent(model, [add], store=planloop_store).run_sync("1 + 2?")
    assert result.output == "3"
    assert scripted_model.made == [model]
    assert [r.run_id for r in planloop_store.list_runs()] == [result.run_id]
    assert (planloop_diagrams / f"{result.run_id}.svg").exists()

def test_failing(scripted_model, planloop_diagrams):
    result = Agent(scripted_model(["4"]), [add], store=False).run_sync("1 + 2?")
    assert result.output == "3"
"""


def test_the_plugin_fixtures_and_the_pictures_of_a_failing_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANLOOP_FAILURES", str(pytester.path / "kept"))
    monkeypatch.delenv("PLANLOOP_DIAGRAM_DIR", raising=False)
    pytester.makepyfile(test_plugin=PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    kept = pytester.path / "kept" / "test_plugin.py_test_failing"
    pictures = list(kept.glob("*.svg"))
    assert len(pictures) == 1
    assert "<svg" in pictures[0].read_text()
    result.stdout.fnmatch_lines(
        ["*planloop diagrams*", f"pictures of the 1 run(s) of this test: {kept}"]
    )
    assert not (pytester.path / "kept" / "test_plugin.py_test_fixtures").exists()


GIVEN_TEST = """
from hypothesis import Phase, given, settings, strategies as st
from planloop import Agent, FunctionPlanner, Trace
from planloop.testing import check_trace

@settings(max_examples=50, database=None, phases=[Phase.generate, Phase.shrink])
@given(st.integers(0, 10))
def test_traces(n):
    agent = Agent(None, [], planner=FunctionPlanner(lambda ctx: "done"), store=False)
    trace = agent.run_sync("x").trace
    events = trace.events[:-1] if n >= 3 else trace.events  # a run_ended lost for n >= 3
    check_trace(Trace(run_id=f"n{n}", events=[events[0].model_copy(update={"run_id": f"n{n}"}),
                                              *events[1:]]))
"""


def test_check_trace_keeps_only_the_final_example_of_a_given_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANLOOP_FAILURES", str(pytester.path / "kept"))
    pytester.makepyfile(test_traces=GIVEN_TEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*invariant 1 (a run ends in exactly one terminal state*"])
    assert sorted(p.name for p in (pytester.path / "kept").iterdir()) == ["n3.json", "n3.svg"]
