"""Durable runs: what a run writes to its store as it goes, and what resuming reads back.

A run with a store records:

* every trace event, in order (``StepFinished`` events before any other step
  starts and by the end of the event-loop pass, so that a step that completed
  is on disk before anything else happens; the others with the next checkpoint);
* a checkpoint, the state after the latest transition, in the same transaction
  as the events before it, before every state whose handler may have effects
  (see :class:`Recorder`): the machine's state and the run's counters. Everything else a
  resumed run needs (the steps so far, the plan being executed, which of its
  steps completed) is rebuilt from the events, so a checkpoint stays a few
  hundred bytes however long the run is;
* the traces of its sub-agent runs (``trace.children``, by step id), with the
  write that follows their being set (a plan-and-execute step sets its child
  just before it ends, so the child goes out with the step's ``StepFinished``);
* the run's row: ``running`` while it goes, then ``finished``, ``stopped`` or
  ``paused``.

A step that was running when the process died has no ``StepFinished`` event,
so it runs again when the run is resumed; a step that completed is never run
again. Values that are not JSON (a tool's custom return type) come back as
their ``repr``, and redacted secrets come back as ``[redacted]``.

Steps that run Python callables are stored by name only. A workflow gives its
own steps back (``LoopConfig.restore_plan``); a planner that makes callables
itself (plan-and-execute) implements :class:`DurablePlanner` to make them again
from the stored plan, to type stored outputs again, and to turn an
:class:`Edit` into a plan. Without either, resuming such a plan is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from planloop.engine.plan import Plan
from planloop.engine.store import BaseStore, PostgresStore, SQLiteStore, Store, default_store_path
from planloop.engine.store._postgres_schema import is_url
from planloop.engine.trace import StepFinished, StepStarted, Trace
from planloop.errors import DefinitionError

if TYPE_CHECKING:
    from planloop.engine.loop import LoopConfig
    from planloop.engine.planner import RunContext
    from planloop.engine.steps import StepResult

__all__ = [
    "CHECKPOINT_VERSION",
    "Approve",
    "Decision",
    "DurablePlanner",
    "Edit",
    "Recorder",
    "Reject",
    "StoreOption",
    "close_stores",
    "definition_hash",
    "open_store",
]

CHECKPOINT_VERSION = 1

StoreOption = Store | str | os.PathLike[str] | bool | None
"""What ``store=`` accepts: ``None`` (the default store, unless ``PLANLOOP_STORE=off``, or
the database of ``PLANLOOP_STORE=postgresql://...``), ``True`` (the default store),
``False`` (no store), a path, a ``postgresql://user:password@host:port/database`` URL,
or a :class:`Store`."""


class Approve(BaseModel):
    """A decision on a paused run: go on as planned.

    Example:
        >>> Approve()
        Approve()
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["approve"] = "approve"

    def __repr__(self) -> str:
        return "Approve()"


class Edit(BaseModel):
    """A decision on a paused run: execute this plan instead (validated like any plan).

    Give ``plan`` (a :class:`Plan`) for an agent or a workflow, or ``steps``, the
    texts of the steps, for a plan-and-execute run, whose steps are sentences
    that its sub-agent carries out (a ``plan`` whose steps each have a ``step``
    text argument, as the paused plan shows them, is read the same way).

    Example:
        >>> from planloop import Plan, Step
        >>> Edit(plan=Plan([Step(id="a", tool="search", args={"q": "x"})])).plan.steps[0].id
        'a'
        >>> Edit(steps=["Find the population of Oslo", "Double it"]).steps[1]
        'Double it'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    kind: Literal["edit"] = "edit"
    plan: Plan | None = None
    steps: Sequence[str] | None = None

    @field_validator("steps")
    @classmethod
    def _frozen_steps(cls, steps: Sequence[str] | None) -> tuple[str, ...] | None:
        return None if steps is None else tuple(steps)

    @model_validator(mode="after")
    def _one_of(self) -> Edit:
        if (self.plan is None) == (self.steps is None):
            raise ValueError(
                "give either plan= (a Plan) or steps= (step texts, for plan-and-execute), "
                "not both or neither"
            )
        return self

    def as_json(self) -> dict[str, Any]:
        """The decision as JSON, without the field that was not given."""
        return self.model_dump(mode="json", exclude={"steps" if self.steps is None else "plan"})


class Reject(BaseModel):
    """A decision on a paused run: do not do it; ``message`` becomes the observation.

    Example:
        >>> Reject(message="not that table").message
        'not that table'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["reject"] = "reject"
    message: str


Decision = Approve | Edit | Reject
"""What a person decides about a paused run.

Example:
    >>> from planloop import Agent, Approve, tool
    >>> from planloop.models import ToolCall
    >>> from planloop.testing import ScriptedModel
    >>> @tool
    ... def greet(name: str) -> str:
    ...     '''Greet someone.'''
    ...     return f"hello {name}"
    >>> model = ScriptedModel([ToolCall("greet", {"name": "Ada"}), "Greeted Ada."])
    >>> agent = Agent(model, [greet], interrupt_before=["act"])
    >>> agent.run_sync("Greet Ada", run_id="greet-ada").status.value
    'paused'
    >>> agent.resume_sync("greet-ada", Approve()).output
    'Greeted Ada.'
"""


@runtime_checkable
class DurablePlanner(Protocol):
    """A planner whose plans run Python callables it makes itself (plan-and-execute's
    sub-agent steps) and can make again when a stored run is resumed.

    The store keeps a plan's steps by name only; without this a resumed run could
    not run them, nor approve or edit a plan that is waiting for a decision.
    """

    def restore_plan(self, plan: Plan, ctx: RunContext) -> Plan:
        """``plan`` as read back from the store, with its steps' callables made again.

        ``ctx`` holds the run as rebuilt from its events (``all_steps``, ``input``,
        the trace and its ``children``).
        """
        ...

    def restore_result(self, result: StepResult) -> StepResult:
        """A step's result read back from the store (JSON values), its output typed again."""
        ...

    def edited_plan(self, edit: Edit, ctx: RunContext) -> Plan:
        """The plan an :class:`Edit` decision stands for.

        Raises:
            InvalidPlan: the edit does not make a valid plan (every problem listed).
        """
        ...


class Recorder:
    """Writes one run's trace events and checkpoints to a store, a few writes per iteration.

    It listens to the run's trace recorder and keeps events until a write, which stores
    them with the state after the latest transition (the checkpoint), in one
    transaction. The run writes before it enters a state whose handler may have
    effects (a planner's model call, tools, a user's handler; only the built-in
    ``observe`` has none), so checkpoints of transitions into ``observe`` go out
    with the next write: one or two transactions per iteration instead of one per
    transition and per step, and no state a resume could need is lost (what is
    superseded in one transaction was never the latest checkpoint on disk).

    A ``StepFinished`` event is written before any other step starts and at the
    latest at the end of the event-loop pass in which the step ended, so a step
    that completed is on disk before anything else can happen. Given the run's
    ``trace``, each write also stores the child traces (sub-agent runs, in
    ``trace.children``) added or replaced since the last one, in the same
    transaction: a plan-and-execute step sets its child before it ends, so the
    child is on disk with the step's ``StepFinished`` event. After a write
    fails it is ``broken`` and writes nothing more; the error is raised by the
    next :meth:`flush` (the run stops with reason ``error``; what was written
    before stays readable).
    """

    __slots__ = (
        "broken",
        "children",
        "due",
        "error",
        "pending",
        "run_id",
        "scheduled",
        "seq",
        "state",
        "store",
        "trace",
    )

    def __init__(
        self, store: Store, run_id: str, *, seq: int = 0, trace: Trace | None = None
    ) -> None:
        self.store = store
        # The run's trace, read for the sub-run traces it gains.
        self.trace = trace
        # The child traces already in the store (a resumed run's trace has them).
        self.children: dict[str, Trace] = dict(trace.children) if trace is not None else {}
        self.run_id = run_id
        self.seq = seq
        self.pending: list[Any] = []
        self.state: Mapping[str, Any] | None = None
        self.due = False  # a StepFinished event is pending
        self.scheduled = False
        self.error: BaseException | None = None
        self.broken = False

    def __call__(self, event: Any) -> None:
        if self.broken:
            return
        kind = type(event)
        if self.due and kind is StepStarted:
            self._write_now()  # the steps that ended are on disk before another starts
        self.pending.append(event)
        if kind is StepFinished:
            self.due = True
            if not self.scheduled:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # not on an event loop: nothing to wait for
                    self._write_now()
                    return
                self.scheduled = True
                loop.call_soon(self._end_of_pass)

    @property
    def waiting(self) -> bool:
        """Whether events or a checkpoint are waiting to be written."""
        return bool(self.pending) or self.state is not None

    def note(self, checkpoint: Mapping[str, Any]) -> None:
        """Keep ``checkpoint`` (the state after a transition) for the next write."""
        self.state = checkpoint

    def flush(self, checkpoint: Mapping[str, Any] | None = None) -> None:
        """Write the events not yet written, and the latest checkpoint after them.

        Raises:
            Exception: this write failed, or an earlier one made outside the
                run's control (between two steps, at the end of a loop pass) did.
        """
        error, self.error = self.error, None
        if error is not None:
            raise error
        if self.broken:
            return
        if checkpoint is not None:
            self.state = checkpoint
        events, self.pending = self.pending, []
        state, self.state = self.state, None
        self.due = False
        children = self._new_children()
        if not events and state is None and not children:
            return
        try:
            if children:
                self.store.save(
                    self.run_id, events, first_seq=self.seq, checkpoint=state, children=children
                )
                self.children.update(children)
            else:  # without children: a store whose save takes no ``children`` still works
                self.store.save(self.run_id, events, first_seq=self.seq, checkpoint=state)
        except BaseException:
            self.broken = True
            raise
        self.seq += len(events)

    def _new_children(self) -> dict[str, Trace]:
        trace = self.trace
        if trace is None or not trace.children:
            return {}
        written = self.children
        return {k: v for k, v in trace.children.items() if written.get(k) is not v}

    def _write_now(self) -> None:
        # Called from the scheduler's record or a loop callback, where an exception
        # would be taken for a step's failure or lost: kept for the run's next flush.
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - raised again by the run's next flush
            self.error = exc

    def _end_of_pass(self) -> None:
        self.scheduled = False
        if self.due:
            self._write_now()


def definition_hash(config: LoopConfig) -> str:
    """A digest of what defines a run's behaviour, to refuse resuming with another definition.

    It covers the name, the machine, the planner's type, every tool's name and
    schema, and whatever the runnable adds (a workflow's steps). Limits are left
    out on purpose: resuming with a longer time limit is a reasonable thing to do.
    """
    tools = sorted(
        (name, tool.spec.model_dump(mode="json", exclude={"description"}))
        for name, tool in config.tools.items()
    )
    data = {
        "name": config.name,
        "machine": config.spec.summary.model_dump(mode="json"),
        "planner": f"{type(config.planner).__module__}.{type(config.planner).__qualname__}",
        "tools": tools,
        "identity": None if config.identity is None else config.identity(),
    }
    text = json.dumps(data, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_STORES: dict[Path | str, BaseStore] = {}
_STORES_LOCK = threading.Lock()


def close_stores() -> None:
    """Close the stores :func:`open_store` opened (they reopen when next asked for)."""
    with _STORES_LOCK:
        stores = list(_STORES.values())
        _STORES.clear()
    for store in stores:
        store.close()


def open_store(option: StoreOption) -> Store | None:
    """The store a run uses for its ``store=`` option (see :data:`StoreOption`).

    Stores opened from a path or a URL are shared by every run in the process.

    Raises:
        DefinitionError: the option is not one of the accepted kinds.
        StoreError: the file or database cannot be opened as a planloop store.
    """
    if option is False:
        return None
    if option is None:
        setting = os.environ.get("PLANLOOP_STORE", "").strip()
        if setting.lower() in ("off", "0", "false", "no"):
            return None
        option = setting if is_url(setting) else True
    if is_url(option):
        assert isinstance(option, str)
        url = option.strip()
        with _STORES_LOCK:
            found = _STORES.get(url)
            if found is None or found.closed:
                found = _STORES[url] = PostgresStore(url)
        return found
    if option is True:
        path = default_store_path()
    elif isinstance(option, str | os.PathLike):
        path = Path(option)
    elif isinstance(option, Store):
        return option
    else:
        raise DefinitionError(
            f"store={option!r}; use None or True (the default store), False (no store), "
            "a file path, a postgresql:// URL, or a Store"
        )
    key = path.expanduser().absolute()
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None or store.closed:
            store = _STORES[key] = SQLiteStore(key)
    return store
