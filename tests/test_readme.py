"""The README's code runs exactly as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)


def test_readme_starts_with_exactly_two_commands() -> None:
    text = README.read_text()
    first = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert first is not None
    commands = [line for line in first.group(1).splitlines() if line.strip()]
    assert [c.split("#")[0].strip() for c in commands] == ["./dev demo", "./dev test"]
    assert text.index("```sh") < text.index("## Quickstart")


def test_quickstart_is_short() -> None:
    assert len(BLOCKS[0].strip().splitlines()) <= 20


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(code: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_quickstart_output_and_picture(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKS[0]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == (
        "Oslo has about 2.5 times as many people as Bergen. finished "
        "['plan', 'act', 'observe', 'plan', 'finish']"
    )
    assert (tmp_path / "quickstart.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def run_block(marker: str, tmp_path: Path) -> str:
    """Run the one README block containing ``marker``; its standard output."""
    [block] = [b for b in BLOCKS if marker in b]
    done = subprocess.run(
        [sys.executable, "-c", block],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_workflow_example_prints_its_output(tmp_path: Path) -> None:
    assert run_block('planloop.Workflow("report")', tmp_path) == "TEXT OF HTTPS://EXAMPLE.ORG\n"


def test_diagram_dir_example_writes_the_runs_picture(tmp_path: Path) -> None:
    assert run_block("diagram_dir=pictures", tmp_path) == "check failed\n['nightly-1.svg']\n"


def test_pictures_the_readme_shows_are_in_the_repository() -> None:
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text())
    assert images
    for image in images:
        path = README.parent / image
        assert path.is_file(), image
        assert path.read_bytes().startswith(b"\x89PNG")
