"""The engine: the machine, the loop, plans, the scheduler, the trace and the store.

Nothing here imports the rest of planloop; everything else builds on it.
"""

from __future__ import annotations

from planloop.engine.events import (
    Acted,
    Answered,
    Continued,
    Event,
    Planned,
    Rejected,
    ReturnedDirect,
    Stopped,
)
from planloop.engine.loop import FORCE_STOP_MESSAGE, LoopConfig, StateHandler, run_loop
from planloop.engine.machine import Machine
from planloop.engine.pending import Pending, PendingStep
from planloop.engine.plan import Plan, Step, ref
from planloop.engine.planner import Answer, Planner, RunContext
from planloop.engine.redact import Redactor, register_secret
from planloop.engine.result import RunResult
from planloop.engine.spec import MachineSpec, SpecSummary, TransitionRule
from planloop.engine.states import LoopState, RunStatus, StepStatus, StopReason
from planloop.engine.steps import Action, StepResult
from planloop.engine.store import Checkpoint, RunRecord, SQLiteStore, Store
from planloop.engine.tooling import ToolLike, ToolSpec
from planloop.engine.trace import Limits, Trace, TraceError, TraceEvent, Usage
from planloop.errors import StoreError

__all__ = [
    "FORCE_STOP_MESSAGE",
    "Acted",
    "Action",
    "Answer",
    "Answered",
    "Checkpoint",
    "Continued",
    "Event",
    "Limits",
    "LoopConfig",
    "LoopState",
    "Machine",
    "MachineSpec",
    "Pending",
    "PendingStep",
    "Plan",
    "Planned",
    "Planner",
    "Redactor",
    "Rejected",
    "ReturnedDirect",
    "RunContext",
    "RunRecord",
    "RunResult",
    "RunStatus",
    "SQLiteStore",
    "SpecSummary",
    "StateHandler",
    "Step",
    "StepResult",
    "StepStatus",
    "StopReason",
    "Stopped",
    "Store",
    "StoreError",
    "ToolLike",
    "ToolSpec",
    "Trace",
    "TraceError",
    "TraceEvent",
    "TransitionRule",
    "Usage",
    "ref",
    "register_secret",
    "run_loop",
]
