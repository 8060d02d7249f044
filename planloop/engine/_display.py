"""Inline display for notebooks without the engine importing ``visualize``.

``planloop.visualize`` registers its SVG renderer here when it is imported
(``import planloop`` does that), so engine objects can show themselves while
the dependency still points one way.

Jupyter asks an object for ``_repr_mimebundle_`` first: :func:`mimebundle_of`
answers with ``text/plain`` (the repr) always and ``image/svg+xml`` when
Graphviz can draw the object. Display never raises: a picture that cannot be
drawn is left out and the repr is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any

__all__ = ["SVG", "TEXT", "mimebundle_of", "register_svg_renderer", "svg_of"]

SVG = "image/svg+xml"
TEXT = "text/plain"

_renderer: Callable[[Any], str | None] | None = None


def register_svg_renderer(renderer: Callable[[Any], str | None]) -> None:
    global _renderer
    _renderer = renderer


def svg_of(obj: Any) -> str | None:
    """SVG text for ``obj``, or ``None`` (Jupyter then falls back to the repr)."""
    if _renderer is None:
        return None
    try:
        return _renderer(obj)
    except Exception:  # noqa: BLE001 - displaying an object must never raise
        return None


def mimebundle_of(
    obj: Any,
    text: str,
    include: Container[str] | None = None,
    exclude: Container[str] | None = None,
) -> dict[str, str]:
    """What ``_repr_mimebundle_`` returns: ``text`` as ``text/plain``, and ``obj``'s SVG.

    ``include`` and ``exclude`` are the MIME types Jupyter asks for or refuses;
    the SVG is drawn only when it is wanted. ``text/plain`` is always there (it
    costs nothing, and Jupyter drops what it did not ask for).
    """
    bundle = {TEXT: text}
    if (include is None or SVG in include) and (exclude is None or SVG not in exclude):
        svg = svg_of(obj)
        if svg:
            bundle[SVG] = svg
    return bundle
