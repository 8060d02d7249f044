"""References from one step's arguments to another step's output.

An argument value ``{"$ref": "fetch"}`` is replaced at run time by the output
of step ``fetch``, keeping its type; ``{"$ref": "fetch.body"}`` by its field
(or key) ``body``. Step ids may contain dots: the longest prefix that is a step
id names the step, the rest the field.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planloop.engine.plan import Plan

__all__ = ["REF", "contains_ref", "ref", "refs_in", "resolve_refs", "split_ref"]

REF = "$ref"
"""The key of a reference: ``{"$ref": "<step id>"}`` or ``{"$ref": "<step id>.<field>"}``."""


def ref(step_id: str, field: str | None = None) -> dict[str, str]:
    """A reference to the output of step ``step_id`` (or one field of it).

    Example:
        >>> ref("fetch")
        {'$ref': 'fetch'}
        >>> ref("fetch", "body")
        {'$ref': 'fetch.body'}
    """
    return {REF: step_id if field is None else f"{step_id}.{field}"}


def refs_in(value: Any, out: list[str]) -> None:
    """Append the target of every reference in ``value`` (nested in dicts, lists, tuples)."""
    if type(value) is dict:
        if len(value) == 1 and REF in value:
            out.append(str(value[REF]))
            return
        for item in value.values():
            refs_in(item, out)
    elif type(value) in (list, tuple):
        for item in value:
            refs_in(item, out)


def contains_ref(value: Any) -> bool:
    """Whether ``value`` holds a reference anywhere."""
    found: list[str] = []
    refs_in(value, found)
    return bool(found)


def split_ref(target: str, ids: Container[str]) -> tuple[str, str | None]:
    """``target`` as (step id, dotted field path or ``None``), given the plan's ``ids``.

    Example:
        >>> split_ref("v1.0.body", {"v1.0"}), split_ref("fetch.body", {"fetch"})
        (('v1.0', 'body'), ('fetch', 'body'))
    """
    if target in ids or "." not in target:
        return target, None
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in ids:
            return head, ".".join(parts[cut:])
    head, field = target.split(".", 1)
    return head, field


def resolve_refs(plan: Plan, value: Any, outputs: Mapping[str, Any]) -> Any:
    """Replace every ``$ref`` in ``value`` by the output it points to, keeping its type.

    Example:
        >>> from planloop.engine.plan import Plan, Step
        >>> plan = Plan([Step(id="fetch", tool="get")])
        >>> resolve_refs(plan, {"n": ref("fetch", "size"), "k": [ref("fetch")]},
        ...              {"fetch": {"size": 3}})
        {'n': 3, 'k': [{'size': 3}]}
    """
    if type(value) is dict:
        if len(value) == 1 and REF in value:
            head, field = split_ref(str(value[REF]), plan.by_id)
            out = outputs[head]
            if field is None:
                return out
            for part in field.split("."):
                out = out[part] if isinstance(out, Mapping) else getattr(out, part)
            return out
        return {k: resolve_refs(plan, v, outputs) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(resolve_refs(plan, v, outputs) for v in value)
    return value
