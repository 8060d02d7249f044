"""What a test session leaves in the checkout: files git does not track that are new or changed.

``tests/conftest.py`` takes a :func:`snapshot` when the session starts and another when it
finishes, and fails the session with :func:`left_behind` if they differ. Tracked files are
not compared (``--update-golden`` and ``PLANLOOP_UPDATE_NOTEBOOKS=1`` rewrite them on
purpose); untracked and ignored ones are, file by file, so a run added to a ``.planloop``
store that was there before counts too.

Not compared, because the tools the suite runs under make them wherever they run:
:data:`TOOL_DIRS` at the top of the checkout, and every ``__pycache__`` directory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["TOOL_DIRS", "Snapshot", "left_behind", "snapshot"]

TOOL_DIRS = frozenset({".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"})
"""uv's environment, and the caches of pytest, mypy, ruff and hypothesis."""

Snapshot = dict[str, tuple[int, int]]
"""Each untracked or ignored file, as a path relative to the checkout, with its size and
modification time in nanoseconds."""


def _made_by_tools(relative: Path) -> bool:
    return relative.parts[0] in TOOL_DIRS or "__pycache__" in relative.parts


def _untracked(root: Path) -> list[str] | None:
    """The untracked and ignored paths git lists (a directory stands for all it holds), or
    ``None`` when ``root`` is not in a git checkout."""
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--ignored", "-z"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # no git
        return None
    if status.returncode != 0:
        return None
    paths, entries = [], iter(status.stdout.split("\0"))
    for entry in entries:
        if entry[:2] in ("??", "!!"):
            paths.append(entry[3:])
        elif entry[:1] in ("R", "C"):
            next(entries, None)  # a rename or copy is followed by its source path
    return paths


def snapshot(root: Path) -> Snapshot | None:
    """The files in the checkout at ``root`` that git does not track, except those made by
    tools; ``None`` when ``root`` is not in a git checkout (nothing to compare)."""
    listed = _untracked(root)
    if listed is None:
        return None
    files: Snapshot = {}
    for entry in listed:
        top = root / entry
        for path in [top] if not top.is_dir() else (p for p in top.rglob("*") if p.is_file()):
            relative = path.relative_to(root)
            if _made_by_tools(relative):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed since it was listed
                continue
            files[relative.as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return files


def left_behind(before: Snapshot, after: Snapshot) -> list[str]:
    """The files of ``after`` that are new since ``before`` or changed, and those it lost."""
    changed = [path for path, seen in after.items() if before.get(path) != seen]
    gone = [f"{path} (deleted)" for path in before if path not in after]
    return sorted(changed + gone)
