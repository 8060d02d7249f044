"""The test session fails when a test leaves a file in the checkout (tests/_hygiene.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from planloop.engine.store import default_store_path
from tests._hygiene import left_behind, snapshot

ROOT = Path(__file__).parents[1]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git checkout with one tracked file and the project's ``.gitignore``."""
    checkout = tmp_path / "checkout"
    write(checkout / "module.py", "x = 1\n")
    shutil.copy(ROOT / ".gitignore", checkout)
    git(checkout, "init", "-q")
    git(checkout, "add", "-A")
    return checkout


def test_a_snapshot_holds_untracked_and_ignored_files_but_not_tool_caches(repo: Path) -> None:
    for name in (
        ".planloop/planloop.db",
        "notes.txt",
        "notebooks/runs/r.svg",
        ".venv/lib/site.py",
        ".pytest_cache/v/cache",
        ".hypothesis/examples/e",
        ".mypy_cache/3.11/m.json",
        ".ruff_cache/c",
        "pkg/__pycache__/m.cpython-311.pyc",
    ):
        write(repo / name, "x")
    files = snapshot(repo)
    assert files is not None
    assert sorted(files) == [".planloop/planloop.db", "notebooks/runs/r.svg", "notes.txt"]


def test_what_is_left_behind_is_new_changed_or_deleted(repo: Path) -> None:
    write(repo / ".planloop/planloop.db", "one run")
    write(repo / "notes.txt", "mine")
    before = snapshot(repo)
    write(repo / ".planloop/planloop.db", "one run and another")
    write(repo / "out.svg", "<svg/>")
    (repo / "notes.txt").unlink()
    write(repo / "module.py", "x = 2\n")  # tracked: rewriting golden files is allowed
    after = snapshot(repo)
    assert before is not None and after is not None
    assert left_behind(before, before) == []
    assert left_behind(before, after) == [".planloop/planloop.db", "notes.txt (deleted)", "out.svg"]


def test_outside_a_git_checkout_there_is_nothing_to_compare(tmp_path: Path) -> None:
    assert snapshot(tmp_path) is None


def test_the_default_store_of_a_test_is_outside_the_checkout() -> None:
    assert not default_store_path().is_relative_to(ROOT)


CLEAN = """
from pathlib import Path

import planloop
from planloop.testing import ScriptedModel


def test_a_file_in_its_own_directory(tmp_path) -> None:
    (tmp_path / "fine.txt").write_text("x")
"""
LEAVES = """

def test_a_file_in_the_working_directory() -> None:
    Path("left.txt").write_text("x")


def test_a_run_in_the_default_store(monkeypatch) -> None:
    monkeypatch.delenv("PLANLOOP_HOME")  # as a child process started with env={...} does
    planloop.Agent(ScriptedModel(["hi"])).run_sync("hello")
"""


@pytest.mark.parametrize("leaves", [True, False], ids=["leaves-files", "clean"])
def test_a_session_that_leaves_files_in_the_checkout_fails_naming_them(
    repo: Path, leaves: bool
) -> None:
    # The suite's own conftest files, in a checkout holding one test file.
    shutil.copy(ROOT / "conftest.py", repo)
    for name in ("conftest.py", "_hygiene.py"):
        write(repo / "tests" / name, (ROOT / "tests" / name).read_text())
    write(repo / "tests" / "test_here.py", CLEAN + LEAVES if leaves else CLEAN)
    write(repo / "pytest.ini", "[pytest]\n")
    git(repo, "add", "-A")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    message = "the tests left files in the checkout (or something else wrote there meanwhile):"
    if leaves:
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"{message}\n    .planloop/planloop.db\n    left.txt\n" in done.stdout
        assert "3 passed" in done.stdout  # the tests passed; the session failed
    else:
        assert done.returncode == 0, done.stdout + done.stderr
        assert message not in done.stdout
