"""Errors about a recorded trace: not a trace (or not writable), not replayable, or breaking
a loop invariant."""

from __future__ import annotations

from collections.abc import Sequence

from planloop.errors._root import PlanloopError

__all__ = ["InvariantViolation", "ReplayError", "TraceError"]


class TraceError(PlanloopError, ValueError):
    """A trace file or JSON text is not a valid planloop trace, or a trace holds a
    value that cannot be written as JSON (the message names the event and field).

    Example:
        >>> from planloop import Trace
        >>> try:
        ...     Trace.from_json('{"events": 3}')
        ... except TraceError as err:
        ...     print(err)
        not a valid planloop trace:
          - at run_id: Field required
          - at events: Input should be a valid array
    """


class ReplayError(PlanloopError, ValueError):
    """A trace cannot be replayed: it is incomplete, inconsistent, or of a kind replay
    does not reproduce (see :mod:`planloop.engine.replay`). ``run_id`` names the run.

    Example:
        >>> from planloop import ReplayError, Trace
        >>> try:
        ...     Trace(run_id="empty").replay()
        ... except ReplayError as err:
        ...     print(err.run_id, "-", str(err).split(";")[0])
        empty - trace 'empty' does not start with a run_started event
    """

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class InvariantViolation(PlanloopError, AssertionError):
    """A trace broke a loop invariant (raised by :func:`planloop.testing.check_trace`).

    An :class:`AssertionError` too, so test runners report it as a failed check.

    Attributes:
        invariant: its number in :data:`planloop.testing.INVARIANTS`.
        detail: what was wrong, in one line.
        events: the positions in ``trace.events`` of the offending events.
        run_id: the run whose trace it is.

    Example:
        >>> from planloop import Trace
        >>> from planloop.testing import check_trace
        >>> try:
        ...     check_trace(Trace(run_id="empty"))
        ... except InvariantViolation as err:
        ...     print(err.invariant, err.detail)
        5 the trace has no events; a run's trace starts with run_started
    """

    def __init__(
        self, message: str, *, invariant: int, detail: str, run_id: str, events: Sequence[int] = ()
    ) -> None:
        super().__init__(message)
        self.invariant = invariant
        self.detail = detail
        self.events = tuple(events)
        self.run_id = run_id
