"""Inline display in Jupyter: ``_repr_mimebundle_`` of traces, results, plans and specs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import planloop
from planloop import MachineSpec, Plan, RunResult, Step
from planloop.engine import _display
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from tests._child import run_without_dot

SVG = "image/svg+xml"
TEXT = "text/plain"
SVG_NS = "{http://www.w3.org/2000/svg}"


@planloop.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def run() -> RunResult:
    model = ScriptedModel([ToolCall("add", {"a": 2, "b": 3}), "five"])
    return planloop.Agent(model, [add], name="display me").run_sync("2 + 3?")


def texts_of(svg: str) -> set[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    return {t.text or "" for t in root.iter(f"{SVG_NS}text")}


def objects() -> list[tuple[str, Any, str]]:
    """(kind, object, a text its picture must show)."""
    result = run()
    plan = Plan([Step(id="first", tool="add"), Step(id="second", tool="add", depends_on=["first"])])
    return [
        ("RunResult", result, "call_1 · add"),
        ("Trace", result.trace, "call_1 · add"),
        ("Plan", plan, "second · add"),
        ("MachineSpec", MachineSpec.default(), "observe"),
    ]


@pytest.mark.parametrize("index", range(4), ids=["RunResult", "Trace", "Plan", "MachineSpec"])
def test_mimebundle_has_the_repr_and_real_svg(index: int) -> None:
    kind, obj, shown = objects()[index]
    assert type(obj).__name__ == kind
    bundle = obj._repr_mimebundle_()
    assert set(bundle) == {SVG, TEXT}
    assert bundle[TEXT] == repr(obj)
    assert shown in texts_of(bundle[SVG])


def test_a_run_results_picture_is_its_traces_and_its_text_its_own_repr() -> None:
    result = run()
    bundle = result._repr_mimebundle_()
    assert bundle[TEXT].startswith("RunResult(")
    assert "display me · finished · 1 iteration" in "".join(texts_of(bundle[SVG]))
    assert texts_of(bundle[SVG]) == texts_of(result.trace._repr_mimebundle_()[SVG])


def test_include_and_exclude_skip_the_picture_but_keep_the_text() -> None:
    spec = MachineSpec.default()
    assert spec._repr_mimebundle_(exclude=[SVG]) == {TEXT: repr(spec)}
    assert spec._repr_mimebundle_(include=[TEXT]) == {TEXT: repr(spec)}
    assert set(spec._repr_mimebundle_(include=[SVG, TEXT])) == {SVG, TEXT}


def test_ipython_displays_every_kind_as_svg_with_the_repr() -> None:
    formatters = pytest.importorskip("IPython.core.formatters")
    formatter = formatters.DisplayFormatter()
    for _kind, obj, shown in objects():
        data, _metadata = formatter.format(obj)
        assert data[TEXT] == repr(obj)
        assert shown in texts_of(data[SVG])


def test_a_renderer_that_raises_leaves_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(obj: Any) -> str:
        raise ValueError("drawing went wrong")

    monkeypatch.setattr(_display, "_renderer", broken)
    for _kind, obj, _shown in objects():
        assert obj._repr_mimebundle_() == {TEXT: repr(obj)}
        assert obj._repr_svg_() is None


def test_without_graphviz_the_bundle_is_the_text_and_nothing_raises(tmp_path: Path) -> None:
    # A process with neither a `dot` program on PATH nor pygraphviz importable.
    code = """
import sys
sys.modules["pygraphviz"] = None
import planloop
from planloop.testing import ScriptedModel
result = planloop.Agent(ScriptedModel(["hello"])).run_sync("x")
plan = planloop.Plan([planloop.Step(id="a", tool="t")])
for obj in (result, result.trace, plan, planloop.MachineSpec.default()):
    bundle = obj._repr_mimebundle_()
    assert bundle == {"text/plain": repr(obj)}, bundle
    print(type(obj).__name__, sorted(bundle))
"""
    done = run_without_dot(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:4] == [
        "RunResult ['text/plain']",
        "Trace ['text/plain']",
        "Plan ['text/plain']",
        "MachineSpec ['text/plain']",
    ]
