"""Every script in examples/ runs and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"


def run(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reflect_state() -> None:
    assert run("reflect_state.py").splitlines() == [
        "plan -> act -> observe -> reflect -> plan -> finish",
        "iteration 1: 0 failed steps",
        "3 words",
    ]


def test_hard_deadline() -> None:
    lines = run("hard_deadline.py").splitlines()
    assert lines[0].startswith("stopped max_execution_time after ")
    assert lines[1] == "[('call_1', 'cancelled')]"
    assert lines[2] == "Agent stopped due to iteration limit or time limit."


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_every_example_is_covered(path: Path) -> None:
    assert path.name in {"reflect_state.py", "hard_deadline.py"}, "add a test for this example"
