"""Planners: what runs in the ``plan`` state."""

from __future__ import annotations

from planloop.nodes.planners.function import FunctionPlanner
from planloop.nodes.planners.react import ReActPlanner
from planloop.nodes.planners.tool_calling import ToolCallingPlanner

__all__ = ["FunctionPlanner", "ReActPlanner", "ToolCallingPlanner"]
