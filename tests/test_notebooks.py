"""Every notebook runs top to bottom in a real kernel.

Set PLANLOOP_UPDATE_NOTEBOOKS=1 to write the fresh outputs back into the files.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert errors == []
    texts = [
        out.get("data", {}).get("text/plain", "") + out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    ]
    assert any(t.strip() == "True" for t in texts), "the JSON round-trip cell should print True"
    if path.name == "quickstart.ipynb":
        by_source = {
            cell.source.strip(): cell.outputs for cell in nb.cells if cell.cell_type == "code"
        }
        for last_line in ("result.trace", "plan"):  # cells that end by showing an object
            [outputs] = [o for s, o in by_source.items() if s.splitlines()[-1] == last_line]
            drawn = [o for o in outputs if "image/svg+xml" in o.get("data", {})]
            assert drawn, f"no inline diagram for {last_line}"
        mermaid = [c for s, c in by_source.items() if "to_mermaid" in s]
        assert mermaid and mermaid[0][0]["text"].lstrip().startswith(("---", "flowchart"))
    if os.environ.get("PLANLOOP_UPDATE_NOTEBOOKS") == "1":
        nbformat.write(nb, path)


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS
