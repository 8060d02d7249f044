"""The ``planloop`` command, run as users run it: the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from planloop import Trace
from planloop.testing import check_trace

PLANLOOP = str(Path(sys.executable).parent / "planloop")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLANLOOP, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_demo_runs_offline_and_writes_a_diagram(tmp_path: Path) -> None:
    done = run("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "planner: rule-based Python (not an LLM)" in out
    assert "plan --Planned--> act (5 steps)" in out
    assert "start  lookup_oslo: lookup_city(name='Oslo')" in out
    assert "answer: Oslo: 1580.9 people/km²; Stockholm: 5238.0 people/km²; " in out
    assert "Stockholm is denser, 3.31× Oslo" in out
    svg = Path(out.split("diagram: ")[1].strip())
    assert svg.is_absolute() or (tmp_path / svg).exists()
    svg_path = svg if svg.is_absolute() else tmp_path / svg
    assert "<svg" in svg_path.read_text()
    trace = Trace.from_json(svg_path.with_suffix(".json").read_text())
    check_trace(trace)
    # the two lookups ran in parallel: the second started before the first ended
    events = [e for e in trace.events if e.kind in ("step_started", "step_finished")]
    order = [(e.kind, getattr(e, "step_id", None) or e.result.step_id) for e in events]
    assert order[:2] == [("step_started", "lookup_oslo"), ("step_started", "lookup_stockholm")]


def test_demo_with_an_unknown_city_explains(tmp_path: Path) -> None:
    done = run("demo", "--question", "What about Paris?", cwd=tmp_path)
    assert done.returncode == 0
    assert "answer: I know these cities: Bergen, Copenhagen," in done.stdout


def test_render_prints_dot_and_rejects_bad_traces(tmp_path: Path) -> None:
    run("demo", "--out", "out", cwd=tmp_path)
    [trace_file] = (tmp_path / "out").glob("*.json")
    done = run("render", str(trace_file), "--format", "dot", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("digraph")
    done = run("render", str(trace_file), "-o", "run.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run.png").read_bytes().startswith(b"\x89PNG")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"run_id": 3, "events": [{"kind": "nope"}]}))
    done = run("render", str(bad), cwd=tmp_path)
    assert done.returncode == 1
    assert "not a valid planloop trace" in done.stderr
