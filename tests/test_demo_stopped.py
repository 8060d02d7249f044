"""A demo run that stops says why, not only the stopped output."""

from __future__ import annotations

from pathlib import Path

from planloop.demo import run_demo
from planloop.models import ToolCall
from planloop.testing import ScriptedModel


def test_a_stopped_demo_run_prints_its_stop_reason(tmp_path: Path) -> None:
    lines: list[str] = []
    model = ScriptedModel([ToolCall("lookup_city", {"name": "Oslo"})] * 9)
    result, _ = run_demo("Oslo?", out_dir=tmp_path, echo=lines.append, model=model)
    assert result.stop_reason == "max_iterations"
    why = lines.index("stopped: max_iterations (the run reached its limit of 8 iterations)")
    assert why < lines.index("answer: Agent stopped due to iteration limit or time limit.")
