"""Tools: Python functions with a name, a description and a typed argument schema."""

from __future__ import annotations

import contextlib
import inspect
import re
import sys
import weakref
from collections.abc import Callable, Mapping, Set
from functools import cached_property
from types import FunctionType
from typing import Any, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from planloop.engine._sync import run_sync
from planloop.engine.tooling import ToolSpec
from planloop.errors import InvalidTool, ToolArgumentsError

__all__ = ["Tool", "tool"]

ErrorHandler = bool | str | Callable[[Exception], Any]


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


class Tool:
    """A callable the agent can use, with a pydantic schema for its arguments.

    Args:
        fn: the function (sync or async) that does the work.
        name: defaults to the function's name.
        description: defaults to the docstring's summary.
        args_schema: defaults to a model built from the signature and the
            docstring's ``Args:`` section.
        return_direct: when the tool is the only step of a plan, its output
            ends the run as the answer.
        handle_tool_error: ``True`` (the error's text), a string, or a function
            of the exception: what the planner is shown instead of the run
            stopping with an error.

    Example:
        >>> def add(a: int, b: int) -> int:
        ...     '''Add two integers.
        ...
        ...     Args:
        ...         a: the first one.
        ...         b: the second one.
        ...     '''
        ...     return a + b
        >>> t = Tool(add)
        >>> t.name, t.description
        ('add', 'Add two integers.')
        >>> t.invoke({"a": 2, "b": "3"})
        5
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        args_schema: type[BaseModel] | None = None,
        return_direct: bool = False,
        handle_tool_error: ErrorHandler = False,
    ) -> None:
        if not callable(fn):
            raise InvalidTool(f"a tool needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self._name: str = name or str(getattr(fn, "__name__", ""))
        if not _NAME.match(self._name):
            raise InvalidTool(
                f"tool name {self._name!r} is not usable: use 1-64 letters, digits, '_', "
                "'-' or '.', starting with a letter or '_' (pass name=...)"
            )
        summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        self.args_schema = args_schema or _schema_for(fn, self._name, arg_docs)
        self._return_direct = return_direct
        self.handle_tool_error = handle_tool_error
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            type(fn).__call__
        )
        self._fields = tuple(self.args_schema.model_fields)
        # The JSON schema is built here, once, so that the first run of an agent does
        # not pay for it (its cost is in benchmarks/README.md). A schema pydantic
        # cannot express (an arbitrary type) is left to ``spec``, which raises only
        # if a model is ever offered the tool. A subclass with its own ``spec``
        # builds it its own way.
        if type(self).spec is Tool.spec:
            with contextlib.suppress(Exception):  # raised again by ``spec`` when it is used
                self.__dict__["spec"] = self._make_spec()

    @property
    def name(self) -> str:
        return self._name

    @property
    def return_direct(self) -> bool:
        return self._return_direct

    @property
    def is_async(self) -> bool:
        return self._is_async

    @cached_property
    def spec(self) -> ToolSpec:
        """Name, description and JSON schema, as sent to a model."""
        return self._make_spec()

    def _make_spec(self) -> ToolSpec:
        schema = self.args_schema.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            if isinstance(prop, dict):
                prop.pop("title", None)
        return ToolSpec(name=self._name, description=self.description, parameters=schema)

    @property
    def arg_names(self) -> tuple[str, ...]:
        return self._fields

    def validate_args(
        self, args: Mapping[str, Any], *, partial: Set[str] = frozenset()
    ) -> dict[str, Any]:
        if type(args) is not dict:
            if not isinstance(args, Mapping):
                raise ToolArgumentsError(
                    self._name, [f"arguments must be an object, got {type(args).__name__}"]
                )
            args = dict(args)
        try:
            model = self.args_schema.model_validate(args)
        except ValidationError as exc:
            errors = [
                _describe(err)
                for err in exc.errors()
                if not (err["type"] == "missing" and err["loc"] and err["loc"][0] in partial)
            ]
            if errors:
                raise ToolArgumentsError(self._name, errors) from None
            return dict(args)
        return {name: getattr(model, name) for name in self._fields}

    def call(self, kwargs: dict[str, Any]) -> Any:
        return self.fn(**kwargs)

    def handle_error(self, error: BaseException) -> Any | None:
        handler = self.handle_tool_error
        if handler is False or not isinstance(error, Exception):
            return None
        if handler is True:
            return str(error) or f"{type(error).__name__} (no message)"
        if isinstance(handler, str):
            return handler
        return handler(error)

    async def ainvoke(self, args: Mapping[str, Any]) -> Any:
        """Validate ``args`` and run the tool (no error handling)."""
        value = self.call(self.validate_args(args))
        if inspect.isawaitable(value):
            value = await value
        return value

    def invoke(self, args: Mapping[str, Any]) -> Any:
        """Sync form of :meth:`ainvoke`."""
        return run_sync(self.ainvoke(args))

    def __repr__(self) -> str:
        return f"Tool(name={self._name!r})"


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    name: str | None = None,
    /,
    *,
    description: str | None = None,
    args_schema: type[BaseModel] | None = None,
    return_direct: bool = False,
    handle_tool_error: ErrorHandler = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn_or_name: Callable[..., Any] | str | None = None,
    /,
    *,
    description: str | None = None,
    args_schema: type[BaseModel] | None = None,
    return_direct: bool = False,
    handle_tool_error: ErrorHandler = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` from a function: ``@tool``, ``@tool("name")`` or ``@tool(...)``.

    Example:
        >>> @tool(return_direct=True)
        ... async def shout(text: str) -> str:
        ...     '''Repeat text loudly.'''
        ...     return text.upper()
        >>> shout.name, shout.return_direct, shout.is_async
        ('shout', True, True)
    """
    if callable(fn_or_name):
        return Tool(fn_or_name)

    def wrap(fn: Callable[..., Any]) -> Tool:
        return Tool(
            fn,
            name=fn_or_name,
            description=description,
            args_schema=args_schema,
            return_direct=return_direct,
            handle_tool_error=handle_tool_error,
        )

    return wrap


def as_tool(obj: Tool | Callable[..., Any] | Any) -> Tool:
    """A :class:`Tool` as it is, a LangChain tool adapted, or a plain function made into one."""
    if isinstance(obj, Tool):
        return obj
    # Only a program that loaded LangChain can pass a LangChain tool; the
    # adapter (and LangChain) is imported for it alone.
    if "langchain_core" in sys.modules:
        from langchain_core.tools import BaseTool

        if isinstance(obj, BaseTool):
            from planloop.nodes._langchain_tool import LangChainTool

            return LangChainTool(obj)
    return Tool(obj)


_SCHEMAS: weakref.WeakKeyDictionary[Callable[..., Any], dict[Any, type[BaseModel]]] = (
    weakref.WeakKeyDictionary()
)
"""Argument models made for plain functions, by function, then name, docs and signature."""


def _schema_for(fn: Callable[..., Any], name: str, docs: Mapping[str, str]) -> type[BaseModel]:
    """:func:`_schema_from_signature`, made once per function, name, docs and signature.

    An app that builds its tools for each request (or a test, for each case) would
    otherwise make a pydantic model class per tool each time (its cost is in
    benchmarks/README.md), and a class is a cycle of objects that only the cyclic
    garbage collector frees, in some later run's time. Only plain functions are
    remembered (by identity, weakly: a closure made per request is forgotten with it).
    """
    if type(fn) is not FunctionType:
        return _schema_from_signature(fn, name, docs)
    try:
        key = (name, tuple(docs.items()), str(inspect.signature(fn)))
    except (TypeError, ValueError):  # no signature: let the builder say so
        return _schema_from_signature(fn, name, docs)
    known = _SCHEMAS.get(fn)
    if known is None:
        known = _SCHEMAS[fn] = {}
    schema = known.get(key)
    if schema is None:
        schema = known[key] = _schema_from_signature(fn, name, docs)
    return schema


def _schema_from_signature(
    fn: Callable[..., Any], name: str, docs: Mapping[str, str]
) -> type[BaseModel]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise InvalidTool(f"cannot read the signature of tool {name!r}: {exc}") from exc
    try:
        hints = get_type_hints(fn)
    except Exception as exc:  # a forward reference the tool's module cannot resolve
        raise InvalidTool(
            f"cannot resolve the type hints of tool {name!r}: {exc}; "
            "import the types it names at module level"
        ) from exc
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InvalidTool(
                f"tool {name!r} takes *{pname}; tools need named parameters "
                "(or pass args_schema=...)"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise InvalidTool(
                f"tool {name!r} has positional-only parameter {pname!r}; "
                "tools are called with keyword arguments"
            )
        annotation = hints.get(pname, Any)
        default = ... if param.default is param.empty else param.default
        fields[pname] = (annotation, Field(default, description=docs.get(pname)))
    model_name = "".join(p.capitalize() for p in re.split(r"[^A-Za-z0-9]", name) if p) + "Args"
    return create_model(
        model_name or "ToolArgs",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Raises|Yields|Example|Examples):\s*$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary (text before the first section) and Google-style ``Args:`` entries."""
    lines = doc.splitlines()
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    args_indent = 0
    for line in lines:
        stripped = line.strip()
        header = _SECTION.match(stripped)
        if header and not line.startswith((" ", "\t")):
            section = header.group(1)
            current = None
            continue
        if section is None:
            summary.append(line)
        elif section in ("Args", "Arguments", "Parameters") and stripped:
            m = re.match(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$", stripped)
            indent = len(line) - len(line.lstrip())
            if m and (current is None or indent <= args_indent):
                current = m.group(1).lstrip("*")
                args_indent = indent
                args[current] = m.group(3).strip()
            elif current is not None:
                args[current] = f"{args[current]} {stripped}".strip()
    text = "\n".join(summary).strip()
    return re.sub(r"\s*\n\s*", " ", text) if "\n\n" not in text else text, args


def _describe(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(arguments)"
    if err["type"] == "missing":
        return f"{loc}: missing (this argument is required)"
    if err["type"] == "extra_forbidden":
        return f"{loc}: unexpected argument"
    got = err.get("input")
    shown = repr(got)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{loc}: {err['msg']} (got {shown})"
