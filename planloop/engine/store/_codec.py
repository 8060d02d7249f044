"""What a store writes and reads: events, checkpoints and child traces as redacted JSON.

* **Events.** A body is the event's JSON exactly as
  :meth:`~planloop.Trace.to_json` writes it (values that are not JSON are kept as
  their ``repr``); it is read back through the ``TraceEvent`` union, so a stored
  trace equals the recorded one. Each event is serialized once, when it is
  written: a write costs the same however long the run already is.
* **Checkpoints** are turned into JSON values by pydantic (models, enums,
  datetimes and tuples are understood; anything else becomes its ``repr``), so
  a loaded checkpoint holds plain JSON values.
* **Child traces** (sub-agent runs) are whole JSON documents.
* **Text.** Everything stored is valid UTF-8: a string that holds lone
  surrogates (as ``os.listdir`` gives for a file name that is not UTF-8), in an
  event, a checkpoint, a child trace or a run's name, is stored with each lone
  surrogate replaced by U+FFFD (:func:`~planloop.engine._json.valid_text`), so
  it reads back as ``"report-\\ufffd.txt"``; the run in memory keeps its value.
  A value that cannot be written at all is a :class:`~planloop.errors.TraceError`
  naming the event and field.
* **Redaction.** Everything passes through the store's
  :class:`~planloop.engine.redact.Redactor` before a backend sees it. The events
  of one write are scanned together (:meth:`Redactor.redact_json_many`), and
  only those that may hold a secret are parsed and rewritten; an event class
  whose JSON can only hold known keys, none secret, is scanned for registered
  literals only.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python

from planloop.engine._json import dump_json, valid_text
from planloop.engine.redact import Redactor
from planloop.engine.store._backend import ChildRow, EventRow, RunRow
from planloop.engine.store._protocol import Checkpoint, RunRecord
from planloop.engine.trace import Trace, TraceEvent
from planloop.errors import StoreError

__all__ = ["Encoder", "decode_checkpoint", "decode_children", "decode_events", "decode_run"]

_EVENT = TypeAdapter[Any](TraceEvent)
_PLAIN = frozenset({str, int, float, bool, type(None)})
_FLAT = frozenset({str, int, bool, type(None)})  # no float: NaN and infinities differ
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one, not one per call
_SCALARS = (str, int, float, bool, type(None), datetime, enum.Enum)


class Encoder:
    """Turns what a run saves into the redacted JSON text a backend stores.

    It keeps, for its redactor, which event classes need no scan for secret keys
    and which checkpoint key sets hold none (a run saves the same few each time).
    """

    __slots__ = ("_clean", "_safe", "redactor")

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._safe: dict[type, bool] = {}  # event class -> its keys are known, none secret
        self._clean: dict[tuple[Any, ...], bool] = {}  # checkpoint keys -> none secret

    def events(self, events: Sequence[TraceEvent]) -> list[EventRow]:
        """``(kind, body)`` of each event, redacted (one scan for all of them)."""
        safe = self._safe
        kinds: list[str] = []
        bodies: list[str] = []
        scan: list[bool] = []
        for event in events:
            verdict = safe.get(type(event))
            if verdict is None:
                verdict = self._keys_are_safe(event)
            kinds.append(event.kind)
            bodies.append(dump_json(event))
            scan.append(not verdict)
        if bodies:
            bodies = self.redactor.redact_json_many(bodies, scan)
        return list(zip(kinds, bodies, strict=True))

    def checkpoint(self, state: Mapping[str, Any]) -> str:
        """``state`` as a redacted JSON object."""
        # A run's checkpoint: a few counters and names under the same keys every
        # time. When no key can be secret and no value needs converting, pydantic's
        # encoder writes it (the same text as ``_ENCODER``'s for these values, and
        # faster) unless it holds a registered literal.
        if self._clean_keys(state) and all(type(v) in _FLAT for v in state.values()):
            try:
                text = to_json(state).decode()
            except PydanticSerializationError:
                pass  # a string UTF-8 cannot hold: made valid below
            else:
                if not self.redactor.may_hold_literals(text):
                    return text
        if all(type(v) in _PLAIN for v in state.values()):
            value: Any = dict(state)  # already JSON values: nothing for pydantic to convert
        else:
            value = to_jsonable_python(dict(state), fallback=repr)
        # Python's encoder writes lone surrogates as they are; replacing them in the
        # text replaces them in the strings that hold them.
        return valid_text(_ENCODER.encode(self.redactor.redact(value)))

    def children(self, children: Mapping[str, Trace]) -> list[ChildRow]:
        """``(step id, trace JSON)`` of each child trace, redacted."""
        redact = self.redactor.redact_json
        return [
            (str(name), redact(child.to_json(redact=False))) for name, child in children.items()
        ]

    def _keys_are_safe(self, event: Any) -> bool:
        """Whether the JSON of ``event``'s class can only hold keys, all known, none secret."""
        cls = type(event)
        if not issubclass(cls, BaseModel):
            raise TypeError(f"not a trace event: {event!r}")
        keys = _static_keys(cls)
        safe = keys is not None and not any(self.redactor.is_secret_key(k) for k in keys)
        self._safe[cls] = safe
        return safe

    def _clean_keys(self, state: Mapping[str, Any]) -> bool:
        """Whether ``state`` is a dict whose keys are all strings and none looks secret."""
        if type(state) is not dict:
            return False
        keys = tuple(state)
        clean = self._clean.get(keys)
        if clean is None:
            redactor = self.redactor
            clean = all(type(k) is str and not redactor.is_secret_key(k) for k in keys)
            if len(self._clean) >= 256:
                self._clean.clear()
            self._clean[keys] = clean
        return clean


def _static_keys(cls: Any) -> frozenset[str] | None:
    """Every dict key the JSON of an instance of ``cls`` can hold, or ``None`` when
    values of any shape can appear in it (``Any``, a dict)."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        if cls.model_config.get("extra") == "allow" or cls.model_computed_fields:
            return None  # keys beyond the declared fields
        keys = set(cls.model_fields)
        for info in cls.model_fields.values():
            if info.alias is not None or info.serialization_alias is not None:
                return None  # dumped under another name: not worth following
            inner = _static_keys(info.annotation)
            if inner is None:
                return None
            keys |= inner
        return frozenset(keys)
    if isinstance(cls, type) and issubclass(cls, _SCALARS):
        return frozenset()
    origin = typing.get_origin(cls)
    if origin is typing.Literal:
        return frozenset()
    if origin in (typing.Union, types.UnionType, tuple, list, frozenset, set):
        found: set[str] = set()
        for arg in typing.get_args(cls):
            if arg is Ellipsis:
                continue
            inner = _static_keys(arg)
            if inner is None:
                return None
            found |= inner
        return frozenset(found)
    return None


def decode_events(run_id: str, location: str, rows: Sequence[tuple[int, str]]) -> list[TraceEvent]:
    """The events of ``rows`` (``(seq, body)`` by ``seq``), which must number 0, 1, ...

    Raises:
        StoreError: an event is missing or does not validate (the message names
            the run and the event number).
    """
    events: list[TraceEvent] = []
    for index, (seq, body) in enumerate(rows):
        if seq != index:
            raise StoreError(
                f"run {run_id!r} in {location}: event {index} is missing (the next"
                f" stored event is number {seq}); the stored trace is incomplete"
            )
        try:
            events.append(_EVENT.validate_json(body))
        except (ValidationError, TypeError, ValueError) as exc:
            raise StoreError(
                f"run {run_id!r} in {location}: event seq {seq} is corrupt and cannot"
                f" be read: {_first_error(exc)}"
            ) from None
    return events


def decode_children(run_id: str, location: str, rows: Sequence[ChildRow]) -> dict[str, Trace]:
    """The child traces of ``rows``, by step id, in their order.

    Raises:
        StoreError: a child trace does not validate (the message names the step).
    """
    children = {}
    for name, body in rows:
        try:
            children[name] = Trace.model_validate_json(body)
        except (ValidationError, TypeError, ValueError) as exc:
            raise StoreError(
                f"run {run_id!r} in {location}: the trace of the sub-agent run of step"
                f" {name!r} is corrupt and cannot be read: {_first_error(exc)}"
            ) from None
    return children


def decode_checkpoint(run_id: str, location: str, seq: int, body: str) -> Checkpoint:
    """The checkpoint stored as ``body`` after ``seq`` events.

    Raises:
        StoreError: ``body`` is not a JSON object.
    """
    try:
        state = json.loads(body)
    except (TypeError, ValueError) as exc:
        state = exc
    if not isinstance(state, dict):
        raise StoreError(
            f"run {run_id!r} in {location}: the checkpoint at seq {seq} is corrupt"
            " (not a JSON object)"
        )
    return Checkpoint(run_id=run_id, seq=int(seq), state=state)


def decode_run(row: RunRow) -> RunRecord:
    """The :class:`RunRecord` of a backend's row.

    Raises:
        StoreError: a value of the row is not of its field's type.
    """
    run_id = row[0]
    try:
        return RunRecord(
            run_id=run_id,
            name=row[1],
            status=row[2],
            stop_reason=row[3],
            iterations=int(row[4]),
            started_at=_time(row[5]),
            ended_at=None if row[6] is None else _time(row[6]),
            definition=row[7],
            definition_hash=row[8],
            lease_owner=row[9],
            last_seen=None if row[10] is None else _time(row[10]),
            lease_expires=None if row[11] is None else _time(row[11]),
        )
    except (TypeError, ValueError, IndexError) as exc:
        raise StoreError(f"run {run_id!r}: its row in the runs table is corrupt: {exc}") from None


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = exc.error_count() - 1
        extra = f" (and {more} more)" if more > 0 else ""
        return f"at {where}: {err['msg']}{extra}"
    return str(exc)
