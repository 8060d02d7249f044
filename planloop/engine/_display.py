"""Inline display for notebooks without the engine importing ``visualize``.

``planloop.visualize`` registers its SVG renderer here when it is imported
(``import planloop`` does that), so engine objects can show themselves while
the dependency still points one way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["register_svg_renderer", "svg_of"]

_renderer: Callable[[Any], str | None] | None = None


def register_svg_renderer(renderer: Callable[[Any], str | None]) -> None:
    global _renderer
    _renderer = renderer


def svg_of(obj: Any) -> str | None:
    """SVG text for ``obj``, or ``None`` (Jupyter then falls back to the repr)."""
    if _renderer is None:
        return None
    return _renderer(obj)
