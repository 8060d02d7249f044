"""A LangChain tool (any ``langchain_core`` ``BaseTool``) as a planloop :class:`Tool`.

:func:`planloop.nodes.tool.as_tool` comes here only when LangChain is already
loaded, so this module may import it at the top.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from functools import cached_property
from typing import Any

from langchain_core.tools import BaseTool, ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, create_model

from planloop.engine.tooling import ToolSpec
from planloop.errors import ToolArgumentsError
from planloop.nodes.tool import Tool

__all__ = ["LangChainTool"]


class LangChainTool(Tool):
    """Runs a LangChain tool with the arguments a planloop step gives it.

    The name, description, argument schema (``tool_call_schema``, as LangChain
    sends it to a model) and ``return_direct`` come from the LangChain tool.
    Arguments are checked against the schema before the tool runs (a mismatch
    is a :class:`~planloop.errors.ToolArgumentsError`, which the planner is
    shown); then the tool runs through its own ``ainvoke``, so its
    ``handle_tool_error`` and ``handle_validation_error`` apply as in LangChain.
    A ``ToolException`` it leaves unhandled is handled here by the same rule.

    Example:
        >>> from langchain_core.tools import tool as lc_tool
        >>> @lc_tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two integers.'''
        ...     return a + b
        >>> t = LangChainTool(add)
        >>> t.name, t.description, t.invoke({"a": 2, "b": "3"})
        ('add', 'Add two integers.', 5)
    """

    def __init__(self, lc_tool: BaseTool) -> None:
        self.lc_tool = lc_tool
        schema = lc_tool.tool_call_schema
        model: type[BaseModel]
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            model, self._checked = schema, True
        else:
            # A JSON-schema dict or a pydantic v1 model: LangChain checks the
            # arguments itself when the tool runs.
            model = create_model(
                f"{type(lc_tool).__name__}Args", __config__=ConfigDict(extra="allow")
            )
            self._checked = False
        super().__init__(
            self._run,
            name=lc_tool.name,
            description=lc_tool.description,
            args_schema=model,
            return_direct=lc_tool.return_direct,
            handle_tool_error=_handler(lc_tool.handle_tool_error),
        )

    async def _run(self, **kwargs: Any) -> Any:
        return await self.lc_tool.ainvoke(kwargs)

    @cached_property
    def spec(self) -> ToolSpec:
        function = convert_to_openai_tool(self.lc_tool)["function"]
        return ToolSpec(
            name=self.name,
            description=self.description,
            parameters=function.get("parameters") or {"type": "object", "properties": {}},
        )

    def validate_args(
        self, args: Mapping[str, Any], *, partial: Set[str] = frozenset()
    ) -> dict[str, Any]:
        if not isinstance(args, Mapping):
            raise ToolArgumentsError(
                self.name, [f"arguments must be an object, got {type(args).__name__}"]
            )
        if self._checked:
            super().validate_args(args, partial=partial)
        else:
            self._check_names(args, partial)
        # The tool gets the arguments as given (JSON), not pydantic's conversion
        # of them: LangChain converts them itself, and injected arguments pass.
        return dict(args)

    def _check_names(self, args: Mapping[str, Any], partial: Set[str]) -> None:
        # Without a pydantic model only the names are checked here; LangChain
        # checks the values when the tool runs.
        schema = self.spec.parameters
        known = schema.get("properties") or {}
        errors = [
            f"{name}: missing (this argument is required)"
            for name in schema.get("required") or ()
            if name not in args and name not in partial
        ]
        if known:
            errors += [f"{name}: unexpected argument" for name in args if name not in known]
        if errors:
            raise ToolArgumentsError(self.name, errors)

    def handle_error(self, error: BaseException) -> Any | None:
        if not isinstance(error, ToolException):
            return None
        return super().handle_error(error)

    def __repr__(self) -> str:
        return f"LangChainTool(name={self.name!r})"


def _handler(value: Any) -> Any:
    if value is None or value is False:
        return False
    if value is True:
        # LangChain's text for a ToolException without a message.
        return lambda exc: exc.args[0] if exc.args else "Tool execution error"
    return value
