"""Driving a run through its states to a terminal one, and turning how it ended
into its result: :func:`drive_to_end`.

Where it stops and why:

* a limit (a guard in :mod:`planloop.engine._builtin`) raises ``StopRun``;
* ``max_execution_time`` is also a hard deadline around the whole run: what is
  in flight is cancelled (sync tools are abandoned, not waited for);
* an exception in a state handler, the planner or the model, an unreadable
  model output with parsing errors not handled, or a tool error nothing
  handled stops the run with reason ``error`` and raises a
  :class:`~planloop.errors.RunError` carrying the partial result.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

from planloop.engine._builtin import BUILTIN, stop_output
from planloop.engine._run import Run
from planloop.engine.events import Event, Stopped
from planloop.engine.planner import StopRun
from planloop.engine.result import RunResult
from planloop.engine.states import LoopState, StopReason
from planloop.errors import PauseForApproval

__all__ = ["drive_to_end"]


async def drive_to_end(run: Run) -> RunResult:
    """Drive ``run`` until it ends or pauses, record its end and return its result.

    Raises:
        RunError: the run stopped with reason ``error`` (its result is on the error).
        asyncio.CancelledError: the run was cancelled (it is recorded as stopped, reason
            ``cancelled``, in its trace and its store first).
    """
    run.driving = True
    try:
        reason, output = await _drive_within_deadline(run)
    except asyncio.CancelledError:
        run.keep_cancelled_steps()
        run.stop_now(StopReason.cancelled, None)
        result = run.result()
        run.record_end(result)  # the store says stopped/cancelled, as the trace does
        _end_cancelled(run, result)
        raise
    stopped = run.last_event
    if reason is None and isinstance(stopped, Stopped) and run.paused is None:
        # A handler returned Stopped: the run ends as that event says.
        reason, output = stopped.reason, stopped.output
    elif reason is not None and output is None:
        try:
            output = await stop_output(run, reason)
        except Exception as exc:  # noqa: BLE001 - the generate call failed: still a stopped run
            run.fail_from(exc)
            reason, output = StopReason.error, None
    if reason is not None:
        run.stop_now(reason, output)
    result = run.result()
    run.record_end(result)
    if run.cfg.on_end is not None:
        run.cfg.on_end(result)
    if run.failure is not None:
        run.failure.result = result
        raise run.failure
    return result


async def _drive_within_deadline(run: Run) -> tuple[StopReason | None, Any]:
    """Drive the run; why it must stop (``None``: it did not) and its output, if given."""
    try:
        if run.deadline is None:
            await _drive(run)
            return None, None
        # asyncio.timeout takes loop time; the deadline is kept in perf_counter time.
        offset = asyncio.get_running_loop().time() - time.perf_counter()
        scope = asyncio.timeout_at(run.deadline + offset)
        try:
            async with scope:
                await _drive(run)
        except TimeoutError:
            if not scope.expired():  # raised by a planner or handler: an error
                raise
            run.keep_cancelled_steps()
            return StopReason.max_execution_time, None
    except StopRun as req:
        return req.reason, req.output
    except Exception as exc:  # noqa: BLE001 - the boundary: a failure becomes a stopped run
        run.fail_from(exc)
        return StopReason.error, None
    return None, None


async def _drive(run: Run) -> None:
    machine = run.machine
    handlers = run.cfg.handlers
    ctx = run.ctx
    interrupt = run.cfg.interrupt_before
    while not machine.terminal:
        state = machine.state
        handler = handlers.get(state)
        store = run.store
        if (
            store is not None
            and store.waiting
            and (handler is not None or state is not LoopState.observe)
        ):
            run.write()  # what happened is on disk before a handler with effects runs
        try:
            if handler is None:
                event = await BUILTIN[state](run, ctx)
            else:
                given = handler(ctx)
                event = await given if inspect.isawaitable(given) else given
        except PauseForApproval as pause:
            run.pause_for_approval(pause.questions)
            return
        if not isinstance(event, Event):
            raise TypeError(
                f"the handler of state {state!r} returned {type(event).__name__}; "
                "it must return an Event"
            )
        if interrupt:
            target = machine.spec.next_state(state, event)
            if target in interrupt and not isinstance(event, Stopped):
                run.pause(state, target, event)
                return
        run.fire(event)


def _end_cancelled(run: Run, result: RunResult) -> None:
    on_end = run.cfg.on_end
    if on_end is None:
        return
    try:
        on_end(result)
    except Exception as exc:  # noqa: BLE001 - the cancellation goes on; the error is reported
        asyncio.get_running_loop().call_exception_handler(
            {"message": "planloop: on_end raised while a run was cancelled", "exception": exc}
        )
