"""The README's way to the ``planloop`` command, from a fresh copy of the repository and
the user's own folder: ``path/to/planloop/dev planloop ...``, or the command that ``dev``
installed in ``.venv``. Relative paths and the default store (``./.planloop``) are the
user's, not the repository's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._cli_agents import AGENTS

REPO = Path(__file__).parents[1]


def fresh_copy(to: Path) -> Path:
    """The files a clone of the repository has (with this working tree's changes, and the
    files not yet committed that git does not ignore), copied to ``to``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.decode().strip()}")
    for name in listed.stdout.decode().split("\0"):
        source = REPO / name
        if name and source.is_file():  # a file deleted in the working tree is not copied
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    return to


def users_environment(tmp_path: Path) -> dict[str, str]:
    """A shell's environment: uv on PATH, and nothing of this test run's uv or venv."""
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` sets UV to itself
    if uv is None:
        pytest.skip("no uv program to run ./dev with")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").symlink_to(uv)
    ours = str(Path(sys.executable).parent)
    path = [str(bin_dir), *(p for p in os.environ["PATH"].split(os.pathsep) if p != ours)]
    dropped = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_RUN_RECURSION_DEPTH")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in dropped and not k.startswith(("UV_INTERNAL", "PLANLOOP_"))
    }
    env["PATH"] = os.pathsep.join(path)
    return env


def test_dev_runs_planloop_in_the_users_folder_with_the_users_store(tmp_path: Path) -> None:
    clone = fresh_copy(tmp_path / "planloop")
    user = tmp_path / "work"
    user.mkdir()
    (user / "agents.py").write_text(AGENTS)
    env = users_environment(tmp_path)

    def shell(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", command], cwd=user, env=env, capture_output=True, text=True, timeout=300
        )

    done = shell(f"{clone}/dev planloop run agents.py:helper --input Oslo?")
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stdout.split("run: ", 1)[1].split()[0]
    assert (user / ".planloop" / "planloop.db").is_file()
    assert not (clone / ".planloop").exists()

    listed = shell(f"{clone}/dev planloop runs")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[:2] == [run_id, "helper"]

    # After ./dev, the command is in the repository's .venv: activated, it is on PATH.
    shown = shell(f". {clone}/.venv/bin/activate && planloop show {run_id[:8]} -o run.json")
    assert shown.returncode == 0, shown.stderr
    assert f"definition: {user / 'agents.py'}:helper" in shown.stdout
    assert (user / "run.json").is_file()
