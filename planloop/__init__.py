"""planloop: LLM agents and Python workflows as explicit, typed state machines.

Example:
    >>> import planloop
    >>> from planloop.models import ToolCall
    >>> from planloop.testing import ScriptedModel
    >>> @planloop.tool
    ... def lookup(city: str) -> int:
    ...     '''Population of a city.'''
    ...     return {"Oslo": 709_000}[city]
    >>> agent = planloop.Agent(ScriptedModel([ToolCall("lookup", {"city": "Oslo"}), "709,000"]),
    ...                        [lookup])
    >>> result = agent.run_sync("How many people live in Oslo?")
    >>> result.output, [str(s) for s in result.trace.states]
    ('709,000', ['plan', 'act', 'observe', 'plan', 'finish'])
"""

from __future__ import annotations

from planloop import visualize as _visualize  # registers inline display for engine objects
from planloop.agent import Agent
from planloop.engine import (
    Acted,
    Action,
    Answer,
    Answered,
    Continued,
    Event,
    LoopState,
    MachineSpec,
    Pending,
    PendingStep,
    Plan,
    Planned,
    Planner,
    Rejected,
    ReturnedDirect,
    RunContext,
    RunResult,
    RunStatus,
    Step,
    StepResult,
    StepStatus,
    Stopped,
    StopReason,
    Trace,
    TraceError,
    ref,
)
from planloop.engine._abandoned import AbandonedTools, abandoned_tools
from planloop.engine.approval import Approval
from planloop.engine.durable import Approve, Decision, Edit, Reject
from planloop.engine.planner import StopRun
from planloop.engine.redact import register_secret
from planloop.engine.replay import Replay, ReplayError
from planloop.engine.retry import RetryPolicy
from planloop.engine.store import PostgresStore, SQLiteStore, Store
from planloop.errors import (
    CannotResume,
    DefinitionError,
    DiagramWarning,
    InvalidMessage,
    InvalidPlan,
    InvalidSpec,
    InvalidTool,
    InvalidTransition,
    ModelAuthError,
    ModelError,
    ModelFailed,
    ModelNotFound,
    OutputParserError,
    ParsingFailed,
    PlanloopError,
    PlannerFailed,
    RunError,
    RunLocked,
    StepFailed,
    StoreError,
    ToolArgumentsError,
)
from planloop.nodes import (
    CompilerPlanner,
    FunctionPlanner,
    ReActPlanner,
    Tool,
    ToolCallingPlanner,
    tool,
)
from planloop.nodes.planners.plan_and_execute import PlanningOutputParser, StepResponse
from planloop.plan_and_execute import PlanAndExecute, load_agent_executor, load_chat_planner
from planloop.workflow import StepHandle, Workflow

del _visualize

__version__ = "0.1.0"

__all__ = [
    "AbandonedTools",
    "Acted",
    "Action",
    "Agent",
    "Answer",
    "Answered",
    "Approval",
    "Approve",
    "CannotResume",
    "CompilerPlanner",
    "Continued",
    "Decision",
    "DefinitionError",
    "DiagramWarning",
    "Edit",
    "Event",
    "FunctionPlanner",
    "InvalidMessage",
    "InvalidPlan",
    "InvalidSpec",
    "InvalidTool",
    "InvalidTransition",
    "LoopState",
    "MachineSpec",
    "ModelAuthError",
    "ModelError",
    "ModelFailed",
    "ModelNotFound",
    "OutputParserError",
    "ParsingFailed",
    "Pending",
    "PendingStep",
    "Plan",
    "PlanAndExecute",
    "PlanloopError",
    "Planned",
    "Planner",
    "PlannerFailed",
    "PlanningOutputParser",
    "PostgresStore",
    "ReActPlanner",
    "Reject",
    "Rejected",
    "Replay",
    "ReplayError",
    "RetryPolicy",
    "ReturnedDirect",
    "RunContext",
    "RunError",
    "RunLocked",
    "RunResult",
    "RunStatus",
    "SQLiteStore",
    "Step",
    "StepFailed",
    "StepHandle",
    "StepResponse",
    "StepResult",
    "StepStatus",
    "StopReason",
    "StopRun",
    "Stopped",
    "Store",
    "StoreError",
    "Tool",
    "ToolArgumentsError",
    "ToolCallingPlanner",
    "Trace",
    "TraceError",
    "Workflow",
    "abandoned_tools",
    "load_agent_executor",
    "load_chat_planner",
    "ref",
    "register_secret",
    "tool",
]
