"""The agent loop: drive a machine through its states until it reaches a terminal one.

Each run gets its own machine, context and trace, so an object that starts
runs (an :class:`~planloop.Agent`) keeps no state between them. This module is
the entry point: :func:`run_loop` starts a run, :func:`resume_loop` continues a
stored one. A run's state is a :class:`~planloop.engine._run.Run`; the built-in
states are in :mod:`planloop.engine._builtin`, and how a run is driven and why
it stops in :mod:`planloop.engine._drive`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from planloop.engine._drive import drive_to_end
from planloop.engine._resume import restore
from planloop.engine._run import Run
from planloop.engine.config import (
    FORCE_STOP_MESSAGE,
    INVALID_RESPONSE,
    LoopConfig,
    ParsingErrorHandler,
    StateHandler,
    TrimSteps,
)
from planloop.engine.durable import Decision, definition_hash
from planloop.engine.planner import StopRun
from planloop.engine.result import RunResult
from planloop.engine.states import RunStatus
from planloop.engine.store import RunRecord
from planloop.engine.store._lease import Leasing, holding, new_owner
from planloop.errors import CannotResume, StoreError

__all__ = [
    "FORCE_STOP_MESSAGE",
    "INVALID_RESPONSE",
    "LoopConfig",
    "ParsingErrorHandler",
    "StateHandler",
    "StopRun",
    "TrimSteps",
    "resume_loop",
    "run_loop",
]


async def run_loop(
    config: LoopConfig,
    input: Any,
    *,
    run_id: str | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> RunResult:
    """Run the loop once on ``input`` and return its result."""
    if run_id is not None and not isinstance(run_id, str):
        raise TypeError(f"run_id={run_id!r}; a run id is a string")
    store = config.store
    owner = new_owner() if isinstance(store, Leasing) else None
    run = Run(config, input, run_id or uuid.uuid4().hex, on_event, owner=owner)
    with holding(store, run.run_id, owner, take=False):  # created holding it by begin
        run.begin()
        return await drive_to_end(run)


async def resume_loop(
    config: LoopConfig,
    run_id: str,
    *,
    decision: Decision | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> RunResult:
    """Continue the stored run ``run_id`` from its last checkpoint.

    See :mod:`planloop.engine.durable` for what is stored and what runs again.

    The process takes the run's lease first (see :mod:`planloop.engine.store._lease`),
    renews it while the run goes and releases it when the run ends or pauses.

    Raises:
        RunLocked: another process is running the run (its lease is alive).
        CannotResume: the run already ended, was started by another definition,
            is paused and no decision was given (or a decision was given for a
            run that is not paused), or the decision does not fit what is pending.
        InvalidPlan: an :class:`Edit` decision's plan is invalid (the run stays paused).
        StoreError: no store is configured, the run is unknown, or what is stored is corrupt.
    """
    store = config.store
    if store is None:
        raise StoreError(
            f"cannot resume run {run_id!r}: this runnable has no store (store=False or "
            "PLANLOOP_STORE=off); use the store the run was recorded in"
        )
    record = store.get_run(run_id)
    _check_resumable(record, config, decision)
    owner = new_owner() if isinstance(store, Leasing) else None
    with holding(store, run_id, owner, take=True):
        # Held now: what the run's row says cannot change under this process, and a
        # process that held it before may have ended or paused it since it was read.
        if owner is not None:
            _check_resumable(store.get_run(run_id), config, decision)
        checkpoint = store.load_checkpoint(run_id)
        trace = store.load_trace(run_id)
        if checkpoint is None or trace.started is None:
            raise CannotResume(
                f"run {run_id!r} has no checkpoint to resume from; start a new run instead",
                run_id=run_id,
            )
        if trace.ended is not None:  # its process stopped after recording the end, not the row
            end = trace.ended
            how = f"{end.status}, {end.stop_reason}" if end.stop_reason else str(end.status)
            raise CannotResume(
                f"run {run_id!r} already ended ({how}): its trace records its end, though its "
                "row in the store says running. Start a new run instead",
                run_id=run_id,
            )
        run = Run(config, trace.input, run_id, on_event, trace=trace)
        restore(run, checkpoint.state, decision)
        return await drive_to_end(run)


def _check_resumable(record: RunRecord, config: LoopConfig, decision: Decision | None) -> None:
    """Raise :class:`CannotResume` unless the run of ``record`` can be resumed with
    ``config`` and ``decision``."""
    run_id = record.run_id
    if record.status not in ("running", RunStatus.paused):
        reason = f", {record.stop_reason}" if record.stop_reason else ""
        raise CannotResume(
            f"run {run_id!r} already ended ({record.status}{reason}); only a paused run or "
            "one whose process died can be resumed. Start a new run instead",
            run_id=run_id,
        )
    if record.definition_hash is not None and record.definition_hash != definition_hash(config):
        raise CannotResume(
            f"run {run_id!r} was started by another definition of {record.name!r} (its tools, "
            "machine, planner or steps differ from this one); resume it with the same "
            "agent or workflow it was started with",
            run_id=run_id,
        )
    paused = record.status == RunStatus.paused
    if paused and decision is None:
        raise CannotResume(
            f"run {run_id!r} is paused, waiting for a decision; pass Approve(), "
            "Edit(plan=...) or Reject(message=...)",
            run_id=run_id,
        )
    if not paused and decision is not None:
        raise CannotResume(
            f"run {run_id!r} is not paused, so there is nothing to decide; resume it "
            "without a decision",
            run_id=run_id,
        )
