"""Planners: what runs in the ``plan`` state."""

from __future__ import annotations

from planloop.nodes.planners.compiler import CompilerPlanner
from planloop.nodes.planners.function import FunctionPlanner
from planloop.nodes.planners.react import ReActPlanner
from planloop.nodes.planners.tool_calling import ToolCallingPlanner

__all__ = [
    "CompilerPlanner",
    "FunctionPlanner",
    "ReActPlanner",
    "ToolCallingPlanner",
]
