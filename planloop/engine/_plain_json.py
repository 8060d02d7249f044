"""Values that are already JSON, copied as pydantic's JSON mode would dump them.

A trace records every plan it runs. A step whose arguments are plain JSON
values (str, int, bool, None, finite floats, lists, tuples and dicts with str
keys) dumps to the same values, so its dump can be written directly and kept
on the step (a step is immutable). Anything else (a value pydantic converts or
``repr``-s) is left to pydantic.
"""

from __future__ import annotations

from typing import Any

__all__ = ["is_finite", "plain_json_dict"]


class _NotPlain(Exception):
    """A value that pydantic's JSON mode would convert, so it is left to pydantic."""


def is_finite(x: float) -> bool:
    """False for inf and nan, which pydantic's JSON mode writes as ``null``."""
    return x - x == 0.0


def plain_json_dict(value: dict[Any, Any]) -> dict[str, Any] | None:
    """A JSON copy of ``value`` if all it holds is plain JSON, else ``None``.

    Example:
        >>> plain_json_dict({"a": (1, [2.5, None])}), plain_json_dict({"a": float("nan")})
        ({'a': [1, [2.5, None]]}, None)
    """
    try:
        return _json_dict(value)
    except _NotPlain:
        return None


def _json_dict(value: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if type(k) is not str:
            raise _NotPlain
        out[k] = _json_value(v)
    return out


def _json_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if is_finite(value):
            return value
        raise _NotPlain
    if kind is dict:
        return _json_dict(value)
    if kind is list or kind is tuple:
        return [_json_value(v) for v in value]
    raise _NotPlain
