"""Plain callables as steps: the scheduler's view of a function with no schema."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Set
from types import FunctionType
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
        self._is_async = (
            bool(fn.__code__.co_flags & inspect.CO_COROUTINE)
            if type(fn) is FunctionType  # what inspect reads for a plain function
            else inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
        )
        self._signature: inspect.Signature | bool | None = False  # False: not read yet
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
        if names in self._bindable:
            return kwargs
        if not _binds_fast(self.fn, names):  # unsure or no: ask inspect, for its message
            if self._signature is False:
                try:
                    self._signature = inspect.signature(self.fn)
                except (TypeError, ValueError):  # some builtins have none: call as given
                    self._signature = None
            if isinstance(self._signature, inspect.Signature):
                try:
                    self._signature.bind(**dict.fromkeys(names))
                except TypeError as exc:
                    raise ToolArgumentsError(self._name, [str(exc)]) from None
        self._bindable.add(names)
        return kwargs

    def call(self, kwargs: dict[str, Any]) -> Any:
        return self.fn(**kwargs)

    def handle_error(self, error: BaseException) -> Any | None:
        return None


def _binds_fast(fn: Callable[..., Any], names: frozenset[str]) -> bool:
    """Whether ``fn(**{name: ...})`` binds, read from the code object; False when unsure.

    ``inspect.signature`` costs about 15 µs, and a workflow may hold thousands of
    distinct closures. Only plain functions are read here; anything else (and
    every call that would fail) goes to ``inspect``, which words the error.
    """
    # A plain function's attributes are in its own __dict__: looking there is cheaper
    # than hasattr, which raises and catches for each attribute that is missing.
    if type(fn) is not FunctionType:
        return False
    attrs = fn.__dict__
    if attrs and ("__wrapped__" in attrs or "__signature__" in attrs):
        return False
    code = fn.__code__
    n_args, n_posonly, n_kwonly = code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount
    params = code.co_varnames[:n_args]
    kwonly = code.co_varnames[n_args : n_args + n_kwonly]
    defaults = fn.__defaults__ or ()
    kwdefaults = fn.__kwdefaults__ or {}
    n_required = n_args - len(defaults)
    if n_posonly and (n_required or not names.isdisjoint(params[:n_posonly])):
        return False  # positional-only parameters cannot be given by keyword
    for name in params[n_posonly:n_required]:
        if name not in names:
            return False
    for name in kwonly:
        if name not in names and name not in kwdefaults:
            return False
    if code.co_flags & inspect.CO_VARKEYWORDS:
        return True
    accepted = set(params[n_posonly:])
    accepted.update(kwonly)
    return names <= accepted
