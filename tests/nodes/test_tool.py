from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from planloop import InvalidTool, Tool, ToolArgumentsError, tool


def test_schema_from_signature_and_docstring() -> None:
    @tool
    def search(query: str, limit: int = 5) -> list[str]:
        """Search the catalogue.

        Longer text that is not the summary.

        Args:
            query: what to look for,
                over two lines.
            limit: how many results.
        """
        return [query] * limit

    assert search.name == "search"
    assert search.description == "Search the catalogue.\n\nLonger text that is not the summary."
    assert search.spec.parameters == {
        "additionalProperties": False,
        "properties": {
            "query": {"description": "what to look for, over two lines.", "type": "string"},
            "limit": {"default": 5, "description": "how many results.", "type": "integer"},
        },
        "required": ["query"],
        "type": "object",
    }
    assert search.invoke({"query": "x", "limit": "2"}) == ["x", "x"]


def test_decorator_forms() -> None:
    @tool("lookup-v2", return_direct=True, handle_tool_error="sorry")
    async def lookup(key: str) -> str:
        """Find a key."""
        return key

    assert (lookup.name, lookup.return_direct, lookup.is_async) == ("lookup-v2", True, True)
    assert lookup.handle_error(RuntimeError("x")) == "sorry"
    assert asyncio.run(lookup.ainvoke({"key": "k"})) == "k"


def test_explicit_schema() -> None:
    class Args(BaseModel):
        n: int

    t = Tool(lambda n: n * 2, name="double", description="Double.", args_schema=Args)
    assert t.invoke({"n": 4}) == 8
    with pytest.raises(ToolArgumentsError) as info:
        t.validate_args({"n": "many"})
    assert info.value.tool == "double"
    assert info.value.errors == (
        "n: Input should be a valid integer, unable to parse string as an integer (got 'many')",
    )


def test_partial_arguments_skip_missing_checks_for_references() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    assert add.validate_args({"a": 1}, partial={"b"}) == {"a": 1}
    with pytest.raises(ToolArgumentsError, match="b: missing"):
        add.validate_args({"a": 1})
    with pytest.raises(ToolArgumentsError, match="arguments must be an object, got list"):
        add.validate_args([1, 2])  # type: ignore[arg-type]


def test_bad_tools_are_refused_clearly() -> None:
    def star(*args: int) -> int:
        return sum(args)

    with pytest.raises(InvalidTool, match=r"tool 'star' takes \*args; tools need named"):
        Tool(star)
    with pytest.raises(InvalidTool, match="tool name 'has space' is not usable"):
        Tool(lambda: 1, name="has space")
    with pytest.raises(InvalidTool, match="a tool needs a callable, got int"):
        Tool(3)  # type: ignore[arg-type]


def test_handle_tool_error_forms() -> None:
    def f() -> None:
        """Nothing."""

    err = ValueError("bad value")
    assert Tool(f).handle_error(err) is None
    assert Tool(f, handle_tool_error=True).handle_error(err) == "bad value"
    assert Tool(f, handle_tool_error=True).handle_error(ValueError()) == "ValueError (no message)"
    assert Tool(f, handle_tool_error=lambda e: f"<{e}>").handle_error(err) == "<bad value>"
    assert Tool(f, handle_tool_error=True).handle_error(KeyboardInterrupt()) is None


def test_tools_of_one_function_share_its_argument_model_until_it_changes() -> None:
    import gc

    def lookup(key: str, limit: int = 3) -> str:
        """Find a key.

        Args:
            key: what to find.
        """
        return key

    first, again = Tool(lookup), Tool(lookup)
    assert first.args_schema is again.args_schema  # made once for the function
    assert Tool(lookup, name="other").args_schema is not first.args_schema
    lookup.__doc__ = "Find a key.\n\nArgs:\n    key: the key to look up.\n"
    redocumented = Tool(lookup)
    assert redocumented.args_schema is not first.args_schema
    assert redocumented.spec.parameters["properties"]["key"]["description"] == "the key to look up."
    lookup.__defaults__ = (5,)
    assert Tool(lookup).args_schema.model_fields["limit"].default == 5

    def made(n: int) -> int:
        return n

    fresh = [Tool(lambda x: x, name="echo") for _ in range(2)]  # two lambdas: two functions
    assert fresh[0].args_schema is not fresh[1].args_schema
    schema = Tool(made).args_schema
    assert Tool(made).args_schema is schema
    from planloop.nodes.tool import _SCHEMAS

    del made, fresh
    gc.collect()
    assert all(getattr(f, "__name__", "") != "made" for f in _SCHEMAS)  # forgotten with it
    assert schema.model_validate({"n": 1}).n == 1
