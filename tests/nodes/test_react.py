from __future__ import annotations

import pytest

from planloop import OutputParserError, tool
from planloop.nodes.planners.react import (
    MISSING_ACTION_AFTER_THOUGHT,
    MISSING_ACTION_INPUT_AFTER_ACTION,
    parse_react,
    tool_args,
)


@tool
def add(a: int, b: int) -> int:
    """Add."""
    return a + b


@tool
def search(query: str) -> str:
    """Search."""
    return query


def test_action_and_answer() -> None:
    assert parse_react('Thought: x\nAction: search\nAction Input: "cats"') == ("search", "cats")
    assert parse_react("Thought: done\nFinal Answer: it is 4\n") == "it is 4"


def test_missing_parts_give_the_langchain_feedback() -> None:
    with pytest.raises(OutputParserError) as info:
        parse_react("Thought: I should think")
    assert info.value.observation == MISSING_ACTION_AFTER_THOUGHT
    assert info.value.llm_output == "Thought: I should think"
    assert str(info.value) == "Could not parse LLM output: `Thought: I should think`"
    with pytest.raises(OutputParserError) as info:
        parse_react("Thought: x\nAction: search")
    assert info.value.observation == MISSING_ACTION_INPUT_AFTER_ACTION


def test_answer_and_action_together_is_an_error() -> None:
    with pytest.raises(OutputParserError, match="both a final answer and a parse-able action"):
        parse_react("Action: search\nAction Input: x\nFinal Answer: y")


def test_action_input_json_or_single_argument() -> None:
    assert tool_args('{"a": 1, "b": 2}', add) == {"a": 1, "b": 2}
    assert tool_args("cats and dogs", search) == {"query": "cats and dogs"}
    assert tool_args("{not json", search) == {"query": "{not json"}
    assert tool_args("x", None) == {"input": "x"}
