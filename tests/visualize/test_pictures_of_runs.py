"""Issue 19, item 9: what a run's picture draws (edges, tooltips) and the step ids it shows."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

import planloop
from planloop.visualize import render_dot, to_dot, to_mermaid
from planloop.visualize.dot import ir_to_dot
from planloop.visualize.ir import Diagram, Node


def fetch(url: str) -> str:
    return f"text of {url}"


def shout(text: str) -> str:
    return text.upper()


def edge_labels(dot: str) -> set[str]:
    return {m.group(1).split(" ×")[0] for m in re.finditer(r'-> "s_\w+" \[.*label="([^"]+)"', dot)}


def test_a_workflow_picture_draws_only_the_transitions_a_workflow_can_take() -> None:
    wf = planloop.Workflow("report", store=False)
    wf.step(shout, text=wf.step(fetch, url="https://example.org"))
    dot = to_dot(wf.run_sync(), timings=False)
    assert edge_labels(dot) == {"Planned", "Answered", "Acted", "Continued", "Stopped"}
    assert "Rejected" not in to_mermaid(wf.run_sync(), timings=False)


def test_an_agent_picture_still_draws_every_transition_of_its_machine() -> None:
    agent = planloop.Agent(None, [], planner=planloop.FunctionPlanner(lambda ctx: "hi"))
    labels = edge_labels(to_dot(agent.run_sync("x"), timings=False))
    assert {"Rejected", "ReturnedDirect", "Answered"} <= labels


NASTY = 'fx service unreachable: "rates" at C:\\fx\\ <timeout> & retry\n\tsecond line \\" end \\'


def fx_rates() -> str:
    raise RuntimeError(NASTY)


def svg_titles(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    key = "{http://www.w3.org/1999/xlink}title"
    return [e.attrib[key] for e in root.iter() if key in e.attrib]


def failed_fx_run() -> tuple[planloop.RunResult, planloop.StepFailed]:
    wf = planloop.Workflow("fx", store=False)
    wf.step(fx_rates)
    with pytest.raises(planloop.StepFailed) as failed:
        wf.run_sync()
    assert failed.value.result is not None
    return failed.value.result, failed.value


def test_a_cut_error_is_whole_in_the_svg_tooltip() -> None:
    result, failure = failed_fx_run()
    dot = to_dot(result, timings=False)
    assert 'failed\\nRuntimeError: fx service unreachable: \\"…"' in dot  # the label stays short
    titles = svg_titles(render_dot(dot, "svg").decode())
    error = result.steps[0].error
    assert error is not None and NASTY in error
    assert error.replace("\t", " ") in titles  # the step's error, whole
    assert str(failure).replace("\t", " ") in titles  # the run's error, on its end state


@pytest.mark.parametrize(
    "text",
    [
        'say "hi"',
        "C:\\temp\\",
        "ends in a backslash \\",
        "two\nlines\r\nand more",
        "<b>bold</b> & &amp; &lt;",
        '\\" \\n \\N \\l',
        "\nstarts with a newline",
    ],
)
def test_any_tooltip_text_keeps_the_dot_file_whole(text: str) -> None:
    diagram = Diagram(title="t", nodes=(Node("a", "a", tooltip=text), Node("b", "b")))
    svg = render_dot(ir_to_dot(diagram), "svg").decode()
    assert text.replace("\r\n", "\n").lstrip("\n") in [t.lstrip(" \n") for t in svg_titles(svg)]


@planloop.tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def test_step_ids_are_unique_across_the_iterations_of_a_run() -> None:
    from planloop.models import ToolCall
    from planloop.testing import ScriptedModel

    calls = [ToolCall("add", {"a": 1, "b": 2}), ToolCall("add", {"a": 3, "b": 4})]
    model = ScriptedModel([calls[0], calls, "done"])
    result = planloop.Agent(model, [add], store=False).run_sync("sums")
    assert [s.step_id for s in result.steps] == ["call_1", "call_2", "call_3"]
    assert [a.step_id for a, _ in result.intermediate_steps] == ["call_1", "call_2", "call_3"]
    dot = to_dot(result, timings=False)
    assert all(f'label="call_{n} · add' in dot for n in (1, 2, 3))


def test_a_function_planner_numbers_its_calls_across_the_run() -> None:
    from planloop.models import ToolCall

    def plan(ctx: planloop.RunContext) -> object:
        return ToolCall("add", {"a": ctx.iteration, "b": 1}) if ctx.iteration < 2 else "done"

    result = planloop.Agent(None, [add], planner=planloop.FunctionPlanner(plan)).run_sync("x")
    assert [s.step_id for s in result.steps] == ["call_1", "call_2"]
