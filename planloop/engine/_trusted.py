"""Building records the engine made itself without validating them again.

Pydantic validation costs a microsecond or two per record; on a 10,000-step
plan the scheduler makes three records per step, so that time would be most
of the run. The values here come from the engine, with the right types, so
validation would only copy them. ``tests/engine/test_hot_path.py`` checks that
each record built this way equals the same record validated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["share_fields_set", "trusted", "trusted_maker", "trusted_many"]

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
# BaseModel's slots, set through their descriptors: a third faster than setattr by name.
_slots = vars(BaseModel)
_set_dict = _slots["__dict__"].__set__
_set_fields_set = _slots["__pydantic_fields_set__"].__set__
_set_extra = _slots["__pydantic_extra__"].__set__
_set_private = _slots["__pydantic_private__"].__set__


def trusted(
    cls: type[M],
    fields: dict[str, Any],
    *,
    private: dict[str, Any] | None = None,
    fields_set: set[str] | None = None,
) -> M:
    """An instance of ``cls`` holding ``fields`` as they are.

    ``fields`` must name every field of ``cls`` with a value of its type (the
    caller's promise, checked by the tests), and ``private`` every private
    attribute it has. Without ``fields_set`` (the fields a validated instance
    would say were given) ``cls`` must be frozen: its instances share one set
    of field names, which nothing then changes.
    """
    obj = _new(cls)
    _set_dict(obj, fields)
    if fields_set is None:
        try:
            fields_set = _FIELDS_SET[cls]
        except KeyError:
            fields_set = _FIELDS_SET[cls] = set(cls.model_fields)
    _set_fields_set(obj, fields_set)
    _set_extra(obj, None)
    _set_private(obj, private)
    return obj


def trusted_maker(cls: type[M]) -> Callable[[dict[str, Any]], M]:
    """:func:`trusted` for one class, for a loop that makes many records of it.

    The class's lookups are done once, here, rather than once per record.
    """
    fields_set = _FIELDS_SET.get(cls)
    if fields_set is None:
        fields_set = _FIELDS_SET[cls] = set(cls.model_fields)
    new, set_dict, set_fields_set, set_extra, set_private = (
        _new,
        _set_dict,
        _set_fields_set,
        _set_extra,
        _set_private,
    )

    def make(fields: dict[str, Any]) -> M:
        obj = new(cls)
        set_dict(obj, fields)
        set_fields_set(obj, fields_set)
        set_extra(obj, None)
        set_private(obj, None)
        return obj

    return make


def trusted_many(cls: type[M], fields: Iterable[dict[str, Any]]) -> list[M]:
    """:func:`trusted` for each of ``fields``, in one loop (no call per record)."""
    fields_set = _FIELDS_SET.get(cls)
    if fields_set is None:
        fields_set = _FIELDS_SET[cls] = set(cls.model_fields)
    new, set_dict, set_fields_set, set_extra, set_private = (
        _new,
        _set_dict,
        _set_fields_set,
        _set_extra,
        _set_private,
    )
    out: list[M] = []
    add = out.append
    for record in fields:
        obj = new(cls)
        set_dict(obj, record)
        set_fields_set(obj, fields_set)
        set_extra(obj, None)
        set_private(obj, None)
        add(obj)
    return out


def share_fields_set(obj: BaseModel) -> None:
    """Give ``obj`` its class's one set of field names if it set every field.

    A validated model keeps a set of the fields it was given, one per instance,
    and each set is an object the garbage collector visits on every full pass.
    ``obj``'s class must be frozen (nothing then changes the set; copies copy it).
    """
    cls = type(obj)
    shared = _FIELDS_SET.get(cls)
    if shared is None:
        shared = _FIELDS_SET[cls] = set(cls.model_fields)
    if obj.__pydantic_fields_set__ == shared:
        _set_fields_set(obj, shared)


# One set per class rather than one per record: a run of 10,000 steps makes
# 40,000 records, and every set is an object the garbage collector must visit.
_FIELDS_SET: dict[type[BaseModel], set[str]] = {}
