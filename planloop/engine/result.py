"""The result of one run."""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from typing import Any, Generic, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    PrivateAttr,
    TypeAdapter,
    computed_field,
    model_validator,
)

from planloop.engine.pending import Pending
from planloop.engine.states import RunStatus, StopReason
from planloop.engine.steps import Action, StepResult
from planloop.engine.trace import Trace

__all__ = ["RunResult"]


class RunResult(BaseModel):
    """What a run produced.

    Attributes:
        output: the final answer, or the stopped output.
        status: ``finished`` or ``stopped``.
        stop_reason: set if and only if the run stopped.
        iterations: passes through ``observe``.
        intermediate_steps: ``(action, observation)`` pairs in execution order.
        steps: every step result, in the order the steps ended. Tool calls the
            model gave no id are numbered across the run (``call_1``, ``call_2``
            ...), so an id names one step of the run, whatever its iteration.
        trace: the full typed record of the run.
        run_id: the run's id (in the store, and in the trace).
        pending: what a paused run waits for a decision on (the plan about to
            run, or the questions of its approval steps); ``None`` unless
            ``status`` is ``paused``. ``Pending.of(trace)`` reads it from a
            trace, one loaded from a store too.

    Example:
        >>> from planloop import Agent, tool
        >>> from planloop.models import ToolCall
        >>> from planloop.testing import ScriptedModel
        >>> @tool
        ... def square(x: int) -> int:
        ...     '''Square a number.'''
        ...     return x * x
        >>> model = ScriptedModel([ToolCall("square", {"x": 7}), "7 squared is 49."])
        >>> result = Agent(model, [square], store=False).run_sync("7 squared?", run_id="sq")
        >>> result.run_id, result.output, result.status.value, result.stop_reason, result.iterations
        ('sq', '7 squared is 49.', 'finished', None, 1)
        >>> [(action.tool, observation) for action, observation in result.intermediate_steps]
        [('square', 49)]
        >>> [(step.step_id, step.tool, step.status.value, step.attempts) for step in result.steps]
        [('call_1', 'square', 'succeeded', 1)]
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    run_id: str
    output: Any
    status: RunStatus
    stop_reason: StopReason | None = None
    iterations: int = 0
    steps: list[StepResult]
    pending: Pending | None = None
    # ``trace`` and ``intermediate_steps`` are made when first read: most runs never
    # read them, and a 10,000-step run would make 20,000 trace records and 20,000
    # pairs for them. They are still given to the constructor, compared, copied,
    # pickled and dumped like fields.
    _lazy: tuple[_Later[Trace], _Later[list[tuple[Action, Any]]]] = PrivateAttr()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def trace(self) -> Trace:
        """The full typed record of the run."""
        return self._lazy[0].get()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def intermediate_steps(self) -> list[tuple[Action, Any]]:
        """``(action, observation)`` pairs in execution order."""
        return self._lazy[1].get()

    @model_validator(mode="wrap")
    @classmethod
    def _take_made(cls, data: Any, handler: ModelWrapValidatorHandler[RunResult]) -> RunResult:
        if not isinstance(data, dict):
            return handler(data)
        data = dict(data)
        pairs = data.pop("intermediate_steps", [])
        trace = data.pop("trace", _MISSING)
        result = handler(data)
        if not isinstance(trace, _Later):
            given = {} if trace is _MISSING else {"trace": trace}
            trace = _Later(None, _TraceField.model_validate(given).trace)
        if not isinstance(pairs, _Later):
            pairs = _Later(None, _PAIRS.validate_python(pairs))
        result._lazy = (trace, pairs)
        return result

    @classmethod
    def _later(
        cls,
        trace: Callable[[], Trace],
        pairs: Callable[[], list[tuple[Action, Any]]],
        **fields: Any,
    ) -> RunResult:
        """A result whose trace and pairs ``trace`` and ``pairs`` make when first read."""
        fields["trace"] = _Later(trace, None)
        fields["intermediate_steps"] = _Later(pairs, None)
        return cls.model_validate(fields)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; ``update`` may replace ``trace`` and ``intermediate_steps`` too."""
        fields = dict(update or {})
        trace = fields.pop("trace", _MISSING)
        pairs = fields.pop("intermediate_steps", _MISSING)
        copied = super().model_copy(update=fields, deep=deep)
        if trace is not _MISSING or pairs is not _MISSING:
            kept_trace, kept_pairs = copied._lazy
            copied._lazy = (
                kept_trace if trace is _MISSING else _Later(None, trace),
                kept_pairs if pairs is _MISSING else _Later(None, pairs),
            )
        return copied

    def __repr__(self) -> str:
        output = repr(self.output)
        if len(output) > 80:
            output = output[:77] + "..."
        reason = f", stop_reason={self.stop_reason.value!r}" if self.stop_reason else ""
        return (
            f"RunResult(run_id={self.run_id!r}, status={self.status.value!r}{reason}, "
            f"iterations={self.iterations}, steps={len(self.steps)}, output={output})"
        )

    def _repr_svg_(self) -> str | None:
        from planloop.engine._display import svg_of

        return svg_of(self.trace)

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, str]:
        from planloop.engine._display import mimebundle_of

        return mimebundle_of(self.trace, repr(self), include, exclude)


T = TypeVar("T")


class _Later(Generic[T]):
    """A value made on first read; equal, copied and pickled as the value it makes."""

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], T] | None, value: T | None) -> None:
        self._make = make
        self._value = value

    def get(self) -> T:
        value = self._value
        if value is None:
            assert self._make is not None
            value = self._value = self._make()
            self._make = None  # what it read is no longer kept alive
        return value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Later):
            return NotImplemented
        return bool(self.get() == other.get())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Later, (None, self.get()))

    def __deepcopy__(self, memo: dict[int, Any]) -> _Later[T]:
        from copy import deepcopy

        return _Later(None, deepcopy(self.get(), memo))


_MISSING: Any = object()


class _TraceField(BaseModel):
    """Validates a result's ``trace`` as the field it is to callers."""

    model_config = ConfigDict(extra="forbid")

    trace: Trace


_PAIRS: TypeAdapter[list[tuple[Action, Any]]] = TypeAdapter(list[tuple[Action, Any]])
