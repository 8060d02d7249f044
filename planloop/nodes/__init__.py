"""What a step or a state does: tools and planners."""

from __future__ import annotations

from planloop.nodes.planners import (
    CompilerPlanner,
    FunctionPlanner,
    ReActPlanner,
    ToolCallingPlanner,
)
from planloop.nodes.tool import Tool, tool

__all__ = [
    "CompilerPlanner",
    "FunctionPlanner",
    "ReActPlanner",
    "Tool",
    "ToolCallingPlanner",
    "tool",
]
