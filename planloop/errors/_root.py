"""The root of planloop's exception tree."""

from __future__ import annotations

__all__ = ["PlanloopError"]


class PlanloopError(Exception):
    """Root of every error planloop raises on purpose.

    Example:
        >>> import planloop
        >>> try:
        ...     planloop.Trace.from_json("not json")
        ... except PlanloopError as err:
        ...     print(type(err).__name__, isinstance(err, ValueError))
        TraceError True
        >>> issubclass(planloop.StepFailed, PlanloopError)
        True
    """
