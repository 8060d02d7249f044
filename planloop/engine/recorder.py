"""How a run records its trace: :class:`TraceRecorder`, and the payload of a transition.

A run makes a few records per iteration (a transition, a model call, a step's
start and end), and most runs are never asked for their trace while they go.
So while nobody listens, the recorder keeps each event as a *row*: the function
that makes its record and the values it is made from. The records are made,
in order, when the trace is read. A 10,000-step workflow whose trace nobody
reads never makes its 20,000 step records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from planloop.engine._json import json_value
from planloop.engine.events import Acted, Answered, Continued, Event, Planned, ReturnedDirect
from planloop.engine.steps import StepResult
from planloop.engine.trace import (
    StepLog,
    Trace,
    Usage,
    make_finished,
    make_model_called,
    make_started,
    make_transitioned,
)

__all__ = ["TraceRecorder", "payload_of"]

Listener = Callable[[Any], None]


class TraceRecorder(StepLog):
    """Records one run's events and makes its :class:`~planloop.engine.trace.Trace`.

    While the recorder is *quiet* (nobody listens and nobody has read the trace),
    events are kept as rows. :meth:`trace` makes their records, and from then on
    the recorder is *live*: each record is made as it happens, added to the
    trace and given to every listener, so a trace handed out is always complete.
    :meth:`subscribe` makes it live too.

    A row keeps the values it was given, so they must not change afterwards: the
    engine passes values it made itself (frozen events, step results, the
    arguments it resolved), and a payload is made at once when it holds a user's
    value (an answer's output).

    Example:
        >>> from planloop.engine.trace import ModelCalled
        >>> recorder = TraceRecorder("r")
        >>> recorder.model_called(0.5, "m", 0.1, 2, None)
        >>> seen = []
        >>> recorder.subscribe(seen.append)
        >>> recorder.append(ModelCalled(t=0.7, model="m"))
        >>> [e.t for e in recorder.trace().events], [e.t for e in seen]
        ([0.5, 0.7], [0.7])
    """

    __slots__ = ("_rows", "_sink", "run_id")

    def __init__(self, run_id: str, *, trace: Trace | None = None) -> None:
        """``trace``: what a resumed run recorded before (made when first read otherwise)."""
        self.run_id = run_id
        self._sink = _Sink(trace)
        self._rows: list[Any] | None = []
        """Rows waiting to be made, one after another in one flat list (see :func:`_make`),
        or ``None`` once the recorder is live."""
        super().__init__(record=self._sink)

    def trace(self) -> Trace:
        """The trace, with every event recorded so far; it is kept complete from now on."""
        sink = self._sink
        if sink.trace is None:
            sink.trace = Trace(run_id=self.run_id)
        rows = self._rows
        if rows is not None:
            self._rows = None
            sink.trace.events.extend(_make(rows))
        return sink.trace

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(record)`` for every event recorded from now on."""
        self.trace()  # a listener is given records as they are made, never rows
        self._sink.listeners.append(listener)

    def append(self, event: Any) -> None:
        """Record ``event``, a record made already."""
        rows = self._rows
        if rows is None:
            self._sink(event)
        else:
            rows.extend((_made, 1, event))

    def started(
        self,
        t: float,
        act: int,
        step_id: str,
        tool: str,
        args: dict[str, Any],
        attempt: int,
        deps: tuple[str, ...],
    ) -> None:
        """Record a :class:`~planloop.engine.trace.StepStarted` with these fields."""
        rows = self._rows
        if rows is None:
            self._sink(make_started(t, act, step_id, tool, args, attempt, deps))
        else:
            rows.extend((make_started, 7, t, act, step_id, tool, args, attempt, deps))

    def finished(self, t: float, act: int, result: StepResult, deps: tuple[str, ...]) -> None:
        """Record a :class:`~planloop.engine.trace.StepFinished` with these fields."""
        rows = self._rows
        if rows is None:
            self._sink(make_finished(t, act, result, deps))
        else:
            rows.extend((make_finished, 4, t, act, result, deps))

    def transitioned(
        self, t: float, source: str, target: str, event: Event, iteration: int
    ) -> None:
        """Record a :class:`~planloop.engine.trace.Transitioned` fired by ``event``."""
        rows = self._rows
        if rows is not None and type(event) in _LATER:
            rows.extend((_transitioned, 5, t, source, target, event, iteration))
            return
        name, payload = type(event).__name__, payload_of(event)
        if rows is None:
            self._sink(make_transitioned(t, source, target, name, payload, iteration))
        else:
            rows.extend((make_transitioned, 6, t, source, target, name, payload, iteration))

    def later(self, make: Callable[..., Any], *args: Any) -> None:
        """Record ``make(*args)``: at once when live, when the trace is read otherwise.

        ``make`` must not raise for ``args`` (values made or checked already).
        """
        rows = self._rows
        if rows is None:
            self._sink(make(*args))
        else:
            rows.extend((make, len(args), *args))

    def model_called(
        self, t: float, model: str, duration: float, messages: int, usage: Usage | None
    ) -> None:
        """Record a :class:`~planloop.engine.trace.ModelCalled` of a call that returned."""
        rows = self._rows
        if rows is None:
            self._sink(make_model_called(t, model, duration, messages, usage))
        else:
            rows.extend((make_model_called, 5, t, model, duration, messages, usage))


class _Sink:
    """Where a record made at once goes: the trace's events, then each listener.

    Kept apart from the recorder so that the recorder does not hold a method of
    itself: a reference cycle would leave a run's trace to the cyclic garbage
    collector.
    """

    __slots__ = ("listeners", "trace")

    def __init__(self, trace: Trace | None) -> None:
        self.trace = trace
        """Made before the first record comes here (see :meth:`TraceRecorder.trace`)."""
        self.listeners: list[Listener] = []

    def __call__(self, event: Any) -> None:
        assert self.trace is not None
        self.trace.events.append(event)
        for listener in self.listeners:
            listener(event)


def _make(rows: list[Any]) -> list[Any]:
    """The records of ``rows``: each row is a function, how many values it takes, and
    the values. One flat list rather than a tuple per row: the rows of a long run are
    then not objects the cyclic garbage collector visits on each pass while it goes."""
    records = []
    i, end = 0, len(rows)
    while i < end:
        make, count = rows[i], rows[i + 1]
        i += 2
        records.append(make(*rows[i : i + count]))
        i += count
    return records


def _made(event: Any) -> Any:
    return event


def _transitioned(t: float, source: str, target: str, event: Event, iteration: int) -> Any:
    return make_transitioned(t, source, target, type(event).__name__, payload_of(event), iteration)


_LATER = frozenset({Planned, Acted, Continued})
"""The events of every iteration whose payload a row makes when the trace is read:
the engine's own (exactly these classes, not subclasses), frozen, holding values
that do not change once fired (a plan, a tuple of results); :func:`payload_of`
does not raise for them."""


def payload_of(event: Event) -> dict[str, Any]:
    """What a :class:`~planloop.engine.trace.Transitioned` record keeps of ``event``.

    An ``Acted`` keeps its steps counted by status (the results themselves are in
    the ``step_finished`` records); any other event its JSON dump, non-JSON
    values as their ``repr``.

    Example:
        >>> from planloop import StepResult
        >>> payload_of(Acted(results=(StepResult(step_id="a", status="failed"),)))
        {'steps': 1, 'failed': 1}
        >>> payload_of(Answered(output="42"))
        {'output': '42'}
    """
    if isinstance(event, Acted):
        return _counts(event.results)
    if isinstance(event, Continued):
        return {}
    kind = type(event)
    if kind is Planned:
        return _plan_payload(event)  # type: ignore[arg-type]
    if (kind is Answered or kind is ReturnedDirect) and type(event.output) is str:  # type: ignore[attr-defined]
        return {"output": event.output}  # type: ignore[attr-defined]
    return json_value(event)


def _counts(results: Sequence[StepResult]) -> dict[str, Any]:
    counts = Counter(result.status.value for result in results)
    return {"steps": len(results), **dict(sorted(counts.items()))}


def _plan_payload(event: Planned) -> dict[str, Any]:
    # Made when the trace is read, where nothing could handle an error: a value
    # whose repr raises is written as what went wrong.
    try:
        return {"plan": event.plan.model_dump(mode="json", fallback=repr)}
    except Exception as exc:  # noqa: BLE001 - a trace record, not the run, is what failed
        return {"plan": None, "error": f"the plan could not be dumped: {type(exc).__name__}: {exc}"}
