"""The loop's entry points check what a run is given before anything is recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import planloop
from planloop.engine.loop import LoopConfig, run_loop
from planloop.errors import DefinitionError


def _planner() -> planloop.FunctionPlanner:
    return planloop.FunctionPlanner(lambda ctx: planloop.Answer("ok"))


def test_a_config_names_a_name_or_limits_of_the_wrong_type() -> None:
    bad: Any = {"name": 7, "limits": {"max_iterations": 3}}
    with pytest.raises(DefinitionError) as info:
        LoopConfig(planner=_planner(), tools={}, **bad)
    assert str(info.value) == (
        "invalid agent loop:\n"
        "  - name=7; the name must be a string\n"
        "  - limits={'max_iterations': 3}; pass a planloop Limits"
    )


def test_a_run_id_that_is_not_a_string_is_refused_before_the_run_starts() -> None:
    seen: list[Any] = []
    config = LoopConfig(planner=_planner(), tools={})
    with pytest.raises(TypeError, match=r"run_id=7; a run id is a string"):
        asyncio.run(run_loop(config, "x", run_id=7, on_event=seen.append))  # type: ignore[arg-type]
    assert seen == []
    result = asyncio.run(run_loop(config, "x", run_id="r-1", on_event=seen.append))
    assert result.run_id == result.trace.run_id == "r-1"
    assert [e.kind for e in seen] == ["run_started", "transitioned", "run_ended"]
