"""docs/architecture.md stays true: its picture renders and the modules it names exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planloop.visualize import render_dot

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"
PAGE = (DOCS / "architecture.md").read_text()


def test_every_path_the_page_names_exists() -> None:
    named = set(re.findall(r"`((?:planloop|tests)/[\w/.]*)`", PAGE))
    assert len(named) > 15, "the page should name the modules of each layer"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_the_picture_is_rendered_from_the_dot_file(request: pytest.FixtureRequest) -> None:
    dot = (DOCS / "architecture.dot").read_text()
    svg = render_dot(dot, "svg").decode()
    for label in re.findall(r'label="([^"\\]+)', dot):
        assert label in svg, f"{label!r} is missing from the rendered picture"
    picture = DOCS / "architecture.svg"
    assert "(architecture.svg)" in PAGE
    if request.config.getoption("--update-golden"):
        picture.write_text(svg)
    assert picture.read_text() == svg, (
        "docs/architecture.svg is not the rendering of docs/architecture.dot; rerun "
        "pytest tests/test_architecture_doc.py --update-golden and commit the picture"
    )
