"""Drop-in ``AgentExecutor`` and ``PlanAndExecute`` for LangChain users (``planloop[langchain]``).

Change one import and keep working code::

    # from langchain_classic.agents import AgentExecutor
    from planloop.compat.langchain import AgentExecutor

Each run also keeps a planloop :class:`~planloop.Trace` (``executor.last_trace``)
that can be drawn. The names here import LangChain on first use, so importing
this package costs nothing until one is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planloop.compat.langchain._executor import AgentExecutor, AgentExecutorIterator
    from planloop.compat.langchain._pe_parts import (
        BaseExecutor,
        BasePlanner,
        ChainExecutor,
        LLMPlanner,
        PlanningOutputParser,
        StepResponse,
    )
    from planloop.compat.langchain._plan_and_execute import (
        PlanAndExecute,
        load_agent_executor,
        load_chat_planner,
    )

__all__ = [
    "AgentExecutor",
    "AgentExecutorIterator",
    "BaseExecutor",
    "BasePlanner",
    "ChainExecutor",
    "LLMPlanner",
    "PlanAndExecute",
    "PlanningOutputParser",
    "StepResponse",
    "load_agent_executor",
    "load_chat_planner",
]

_WHERE = {
    "AgentExecutor": "_executor",
    "AgentExecutorIterator": "_executor",
    "BaseExecutor": "_pe_parts",
    "BasePlanner": "_pe_parts",
    "ChainExecutor": "_pe_parts",
    "LLMPlanner": "_pe_parts",
    "PlanningOutputParser": "_pe_parts",
    "StepResponse": "_pe_parts",
    "PlanAndExecute": "_plan_and_execute",
    "load_agent_executor": "_plan_and_execute",
    "load_chat_planner": "_plan_and_execute",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'planloop.compat.langchain' has no attribute {name!r}")
    try:
        module = importlib.import_module(f"planloop.compat.langchain.{where}")
    except ImportError as exc:
        if exc.name is not None and exc.name.startswith("langchain"):
            raise ImportError(
                f"planloop.compat.langchain.{name} needs LangChain: "
                "pip install 'planloop[langchain]'"
            ) from exc
        raise
    value = getattr(module, name)
    globals()[name] = value
    return value
