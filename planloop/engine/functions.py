"""Plain callables as steps: the scheduler's view of a function with no schema."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Set
from typing import Any

from planloop.engine.plan import callable_name
from planloop.engine.tooling import ToolSpec
from planloop.errors import ToolArgumentsError

__all__ = ["FunctionTool"]


class FunctionTool:
    """Runs a callable with the step's arguments, checked against its signature only.

    Values pass through untouched (outputs of earlier steps keep their types).
    """

    __slots__ = ("_bindable", "_is_async", "_name", "_signature", "fn")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self._name = callable_name(fn)
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            type(fn).__call__
        )
        self._signature: inspect.Signature | None = None
        # Keyword binding depends only on the names given, so each set of names that
        # bound once is remembered and later calls skip the check.
        self._bindable: set[frozenset[str]] = set()

    @property
    def name(self) -> str:
        return self._name

    @property
    def return_direct(self) -> bool:
        return False

    @property
    def is_async(self) -> bool:
        return self._is_async

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name=self._name, description=inspect.getdoc(self.fn) or "")

    def validate_args(
        self, args: Mapping[str, Any], *, partial: Set[str] = frozenset()
    ) -> dict[str, Any]:
        kwargs = dict(args)
        names = frozenset(kwargs.keys() | partial) if partial else frozenset(kwargs)
        if names not in self._bindable:
            signature = self._read_signature()
            if signature is not None:
                try:
                    signature.bind(**dict.fromkeys(names))
                except TypeError as exc:
                    raise ToolArgumentsError(self._name, [str(exc)]) from None
            self._bindable.add(names)
        return kwargs

    def _read_signature(self) -> inspect.Signature | None:
        """The callable's signature, read on the first check; ``None`` when it has none."""
        if self._signature is None:
            try:
                self._signature = inspect.signature(self.fn)
            except (TypeError, ValueError):  # some builtins have none: call as given
                return None
        return self._signature

    def call(self, kwargs: dict[str, Any]) -> Any:
        return self.fn(**kwargs)

    def handle_error(self, error: BaseException) -> Any | None:
        return None
