"""Every notebook runs top to bottom in a real kernel, offline, and shows what it says it shows.

Each runs twice in the same folder, as a user reruns it by hand, and leaves nothing there
that git would list as untracked. Set PLANLOOP_UPDATE_NOTEBOOKS=1 to write the fresh
outputs back into the files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WRITTEN_HERE = {"quickstart", "workflows_and_dags", "visualising_runs", "property_testing"}


def _texts(outputs: list[Any]) -> list[str]:
    return [o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in outputs]


def _svgs(outputs: list[Any]) -> list[str]:
    return [o["data"]["image/svg+xml"] for o in outputs if "image/svg+xml" in o.get("data", {})]


def _cell(nb: Any, contains: str) -> list[Any]:
    """The outputs of the one code cell whose source contains ``contains`` (or, if
    several do, of the one whose last line is ``contains``)."""
    cells = [c for c in nb.cells if c.cell_type == "code" and contains in c.source]
    if len(cells) > 1:
        cells = [c for c in cells if c.source.strip().splitlines()[-1] == contains.strip()]
    [cell] = cells
    return list(cell.outputs)


def _quickstart(nb: Any) -> None:
    by_source = {cell.source.strip(): cell.outputs for cell in nb.cells if cell.cell_type == "code"}
    for last_line in ("result.trace", "plan"):  # cells that end by showing an object
        [outputs] = [o for s, o in by_source.items() if s.splitlines()[-1] == last_line]
        assert _svgs(outputs), f"no inline diagram for {last_line}"
    mermaid = [c for s, c in by_source.items() if "to_mermaid" in s]
    assert mermaid and mermaid[0][0]["text"].lstrip().startswith(("---", "flowchart"))


def _workflows(nb: Any) -> None:
    [speed] = _texts(_cell(nb, "one_by_one = makespan"))
    match = re.fullmatch(
        r"sequential ([0-9.]+) s, parallel ([0-9.]+) s, speed-up ([0-9.]+)x\n", speed
    )
    assert match, speed
    # Four 0.2 s naps: under 0.4 s (two naps) only if they all overlapped. Loose enough
    # for a slow, shared machine; the notebook itself checks the same.
    assert float(match[1]) >= 0.8 and float(match[2]) < 0.4 and float(match[3]) >= 2
    assert _svgs(_cell(nb, "SVG(to_svg(wf.plan))"))
    assert "invalid plan (2 problems):" in _texts(_cell(nb, "broken.validate"))[0]
    skipped = _texts(_cell(nb, "fragile.run_sync()"))[0]
    assert "skipped" in skipped and "still fine" in skipped


def _visualising(nb: Any) -> None:
    for source in ("agent.spec", "plan", "SVG(to_svg(result.trace", "SVG(to_svg(stopped"):
        svgs = _svgs(_cell(nb, source))
        assert svgs and "<svg" in svgs[0], source
    assert _texts(_cell(nb, "print(to_mermaid(plan))"))[0].startswith("---")
    assert _texts(_cell(nb, "print(to_dot(agent.spec))"))[0].startswith("digraph")
    assert _texts(_cell(nb, 'Path("runs"'))[-1] == "(['oslo.svg', 'plan.dot'], True)"


def _property_testing(nb: Any) -> None:
    assert "100 scripts, every invariant held" in _texts(_cell(nb, "test_any_script"))[0]
    assert _texts(_cell(nb, "CalculatorMachine.TestCase().runTest()")) == ["passed\n"]
    broken = _texts(_cell(nb, "check_trace(tampered)"))[0]
    assert broken.startswith("invariant 3 (iterations and elapsed time stay within the limits)")
    kept = _texts(_cell(nb, "OverconfidentMachine.TestCase().runTest()"))
    assert "planloop kept the failing run (trace and diagram):" in kept[0]
    assert kept[-1] == "['json', 'svg']"
    assert "<svg" in _svgs(_cell(nb, "shrunk = planloop.Trace.from_json"))[0]


CHECKS = {
    "quickstart": _quickstart,
    "workflows_and_dags": _workflows,
    "visualising_runs": _visualising,
    "property_testing": _property_testing,
}


def _clone(into: Path) -> Path:
    """A git repository holding the notebooks and the checkout's ``.gitignore``, every file
    added, as a user's clone is: its ``notebooks`` folder."""
    (into / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / ".gitignore", into)
    for path in NOTEBOOKS:
        shutil.copy(path, into / "notebooks")
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=into, check=True)
    return into / "notebooks"


def _untracked(repo: Path) -> list[str]:
    """Files in ``repo`` that git lists as untracked (new and not ignored)."""
    listing = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return listing.stdout.splitlines()


def _execute(path: Path, folder: Path) -> Any:
    """``path`` run top to bottom by a kernel working in ``folder``; no cell raised."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert errors == []
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits the environment: no store, diagram or failure directory of ours,
    # so the notebook writes where it would for a user, next to itself.
    for name in ("PLANLOOP_HOME", "PLANLOOP_DIAGRAM_DIR", "PLANLOOP_FAILURES"):
        monkeypatch.delenv(name, raising=False)
    folder = _clone(tmp_path / "clone")
    for _ in range(2):  # the second run finds the first one's files and store
        nb = _execute(path, folder)
        texts = [t for cell in nb.cells if cell.cell_type == "code" for t in _texts(cell.outputs)]
        if path.stem in WRITTEN_HERE:
            assert any(t.strip() == "True" for t in texts), (
                "the JSON round-trip cell should print True"
            )
            CHECKS[path.stem](nb)
            assert not any(str(tmp_path) in t for t in texts), "an output shows a temporary path"
    assert _untracked(folder.parent) == [], "running the notebook left files git would list"
    if os.environ.get("PLANLOOP_UPDATE_NOTEBOOKS") == "1":
        nbformat.write(nb, path)


def test_there_are_notebooks() -> None:
    assert {p.stem for p in NOTEBOOKS} >= WRITTEN_HERE
