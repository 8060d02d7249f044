"""What a run of the agent loop is given besides its input: :class:`LoopConfig`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from planloop.engine.events import Event
from planloop.engine.plan import DEFAULT_MAX_STEPS, Plan
from planloop.engine.planner import Planner, RunContext
from planloop.engine.result import RunResult
from planloop.engine.spec import MachineSpec
from planloop.engine.states import LoopState
from planloop.engine.steps import Action
from planloop.engine.store import Store
from planloop.engine.tooling import ToolLike
from planloop.engine.trace import Limits
from planloop.errors import DefinitionError, OutputParserError

__all__ = [
    "FORCE_STOP_MESSAGE",
    "INVALID_RESPONSE",
    "LoopConfig",
    "ParsingErrorHandler",
    "StateHandler",
    "TrimSteps",
]

FORCE_STOP_MESSAGE = "Agent stopped due to iteration limit or time limit."
INVALID_RESPONSE = "Invalid or incomplete response"

StateHandler = Callable[[RunContext], Event | Awaitable[Event]]
"""Runs in a user-defined state and returns the event that leaves it."""

ParsingErrorHandler = bool | str | Callable[[OutputParserError], str]
TrimSteps = int | Callable[[list[tuple[Action, Any]]], Sequence[tuple[Action, Any]]]


@dataclass(frozen=True)
class LoopConfig:
    """Everything a run needs besides its input. Immutable, shared by runs."""

    planner: Planner
    tools: Mapping[str, ToolLike]
    spec: MachineSpec = field(default_factory=MachineSpec.default)
    limits: Limits = field(default_factory=Limits)
    early_stopping_method: Literal["force", "generate"] = "force"
    handle_parsing_errors: ParsingErrorHandler = False
    trim_intermediate_steps: TrimSteps = -1
    handlers: Mapping[str, StateHandler] = field(default_factory=dict)
    """A handler per user-defined state. One named ``plan``, ``act`` or ``observe``
    replaces that built-in state, its limit checks included (a replay does this to
    give back recorded events); :class:`~planloop.Agent` refuses such names."""
    max_concurrency: int | None = None
    on_tool_error: Literal["stop", "observe"] = "stop"
    max_plan_steps: int | None = DEFAULT_MAX_STEPS
    name: str = ""
    store: Store | None = None
    """Where the run's events, checkpoints and status are written (``None``: nowhere)."""
    interrupt_before: frozenset[str] = frozenset()
    """States the run pauses before entering, until a decision resumes it (needs a store)."""
    restore_plan: Callable[[Plan], Plan] | None = None
    """Turns a plan read back from the store (tools as names) into one that can run
    (a workflow's callables); ``None``: the plan runs as read."""
    identity: Callable[[], Any] | None = None
    """Gives JSON data that, with the name, machine, planner and tools, defines the
    runnable (a workflow's steps); a resumed run must have the same. Called only when
    the run has a store."""
    on_resume: Callable[[int], None] | None = None
    """Called when a stored run is resumed, once its recording is read back and
    before it goes on, with the number of model calls the recorded run made (an
    agent passes its model's ``resumed_after``; see
    :class:`~planloop.models.ResumableModel`)."""
    definition: str | None = None
    """Where the runnable is defined (``FILE.py:NAME``), recorded for ``planloop resume``."""
    on_end: Callable[[RunResult], None] | None = None
    """Called with the result when a run ends, however it ends: finished, stopped
    (when cancelled, just before ``CancelledError`` goes on), or failed (just before
    the :class:`~planloop.errors.RunError` is raised). What it raises is raised in
    place of the result (during a cancellation it goes to the event loop's exception
    handler instead), so a hook that must not change the run catches its own errors."""

    def __post_init__(self) -> None:
        problems: list[str] = []
        builtin = {LoopState.plan, LoopState.act, LoopState.observe}
        for state in self.spec.states:
            if state in self.spec.terminal:
                continue
            if state not in builtin and state not in self.handlers:
                problems.append(
                    f"state {state!r} has no handler; pass handlers={{{state!r}: fn}} "
                    "where fn(ctx) returns the event that leaves it"
                )
            if "Stopped" not in self.spec.accepted(state):
                problems.append(
                    f"state {state!r} does not accept Stopped, so a limit or an error "
                    f"could not end the run there; add Stopped: {{{state!r}: 'stopped'}}"
                )
        if not isinstance(self.name, str):
            problems.append(f"name={self.name!r}; the name must be a string")
        if not isinstance(self.limits, Limits):
            problems.append(f"limits={self.limits!r}; pass a planloop Limits")
        if self.on_tool_error not in ("stop", "observe"):
            problems.append(f"on_tool_error={self.on_tool_error!r}; use 'stop' or 'observe'")
        unknown = sorted(s for s in self.interrupt_before if s not in self.spec.states_by_name)
        if unknown:
            problems.append(
                f"interrupt_before names {unknown}, which are not states of the machine; "
                f"use some of {sorted(str(s) for s in self.spec.states)}"
            )
        if self.early_stopping_method not in ("force", "generate"):
            problems.append(
                f"early_stopping_method={self.early_stopping_method!r}; use 'force' or 'generate'"
            )
        if problems:
            raise DefinitionError("invalid agent loop:\n" + "\n".join(f"  - {p}" for p in problems))
