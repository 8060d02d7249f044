"""JSON of a run's records that any reader takes, and errors that say what could not be written.

Pydantic writes the records. Two things it cannot write are handled here:

* **Strings UTF-8 cannot hold.** A Python string may hold lone surrogates (as
  ``os.listdir`` gives for a file name that is not UTF-8). They are written
  replaced: each lone surrogate becomes U+FFFD (``"\\ufffd"``, the replacement
  character) and a surrogate pair becomes the character it encodes, so that
  ``"report-\\udc80.txt"`` is written as ``"report-\\ufffd.txt"``. The record in
  memory keeps its value; only its JSON differs. (An escape such as ``\\udc80``
  would keep it, but strict JSON readers, pydantic's among them, refuse it.)
* **Values with no JSON form.** A value that is not JSON is written as its
  ``repr``; when that fails too (a ``repr`` that raises, a list that contains
  itself), a :class:`~planloop.errors.TraceError` names the record and field.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_json

from planloop.errors import TraceError

__all__ = ["dump_json", "json_value", "valid_text"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_UTF8 = "surrogates not allowed"  # how UTF-8's encoder refuses a lone surrogate
_PREFIX = "Error serializing to JSON: "
_FIX = (
    "a value that is not JSON is written as its repr, so give its class a __repr__ that"
    " works (or return JSON values: str, numbers, lists, dicts)"
)


def valid_text(text: str) -> str:
    """``text`` as UTF-8 can hold it: surrogate pairs joined, lone surrogates replaced by U+FFFD.

    Example:
        >>> valid_text("report-\\udc80.txt"), valid_text("\\ud83d\\ude00"), valid_text("plain")
        ('report-\\ufffd.txt', '😀', 'plain')
    """
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def dump_json(model: BaseModel, *, indent: int | None = None) -> str:
    """``model`` as JSON text (values that are not JSON as their ``repr``; see above).

    Raises:
        TraceError: a value of ``model`` has no JSON form (the message names it).
    """
    text = _written(model, indent)
    if isinstance(text, str):
        return text
    run_id = getattr(model, "run_id", None)
    what = f"trace {run_id!r}" if isinstance(run_id, str) else f"the {_name(model, ' event')}"
    raise TraceError(f"{what} cannot be written as JSON: {_where(model, text)}; {_FIX}")


def json_value(model: BaseModel) -> dict[str, Any]:
    """``model`` as JSON values: ``model.model_dump(mode="json", fallback=repr)``, with
    strings UTF-8 cannot hold replaced where pydantic cannot keep them (dict keys)."""
    try:
        return model.model_dump(mode="json", fallback=repr)
    except UnicodeEncodeError:
        valid: BaseModel = _valid(model)
        return valid.model_dump(mode="json", fallback=repr)


def _valid(value: Any) -> Any:
    """A copy of ``value`` whose strings (in models, dicts, lists and tuples) are valid text."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        return value.model_copy(update={name: _valid(getattr(value, name)) for name in fields})
    if isinstance(value, dict):
        return {_valid(k): _valid(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_valid(v) for v in value)
    if isinstance(value, list | set | frozenset):
        return [_valid(v) for v in value]
    return value


def _where(model: BaseModel, exc: Exception) -> str:
    """Which value of ``model`` (at any depth of a trace) cannot be written, and why."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if name == "events" and isinstance(value, list):  # a trace's: say which event
            for index, event in enumerate(value):
                if _failure(event) is not None:
                    return f"event {index} ({_name(event)}), {_where(event, exc)}"
        elif name == "children" and isinstance(value, dict):
            for step_id, child in value.items():
                if _failure(child) is not None:
                    return f"the trace of the sub-agent of step {step_id!r}: {_where(child, exc)}"
        else:
            problem = _failure(value)
            if problem is not None:
                return f"field {name!r}: {problem}"
    return str(exc).removeprefix(_PREFIX)


def _failure(value: Any) -> str | None:
    """Why ``value`` cannot be written, or ``None``."""
    text = _written(value)
    return None if isinstance(text, str) else str(text).removeprefix(_PREFIX)


def _written(value: Any, indent: int | None = None) -> str | Exception:
    """``value`` as JSON text (its strings made valid text if they must be), or why not."""
    try:
        return _dump(value, indent)
    except PydanticSerializationError as exc:
        if _NOT_UTF8 not in str(exc):
            return exc
    try:
        return _dump(_valid(value), indent)
    except (PydanticSerializationError, RecursionError) as exc:  # a cycle: _valid recurses
        return exc


def _dump(value: Any, indent: int | None) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json(indent=indent, fallback=repr)
    return to_json(value, indent=indent, fallback=repr).decode()


def _name(record: BaseModel, noun: str = "") -> str:
    """``step_finished of step 'a'``: a record's kind (and ``noun``), and its step if it has one."""
    kind = getattr(record, "kind", type(record).__name__)
    result = getattr(record, "result", None)
    step_id = getattr(result, "step_id", None) or getattr(record, "step_id", None)
    step = f" of step {step_id!r}" if isinstance(step_id, str) else ""
    return f"{kind}{noun}{step}"
