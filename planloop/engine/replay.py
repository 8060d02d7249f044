"""Replay: run a recorded trace again through the real loop, calling no model and no tool.

Loop invariant 6: a replay reproduces the state path and the outputs of the
recorded run. :func:`replay_trace` builds a :class:`LoopConfig` from the trace
alone and drives :func:`~planloop.engine.loop.run_loop` with it, store off:

* the machine is rebuilt from the trace's :class:`SpecSummary` (event types
  that are not built in become plain events carrying their recorded payload);
* a planner plays back each decision recorded out of ``plan``: the plan of a
  ``Planned`` transition, the output of ``Answered``, the feedback of
  ``Rejected`` (through ``handle_parsing_errors``), the error of a run that
  stopped there, and the final answer of a stopped run; it records the same
  model calls (names, usage, errors), so budgets stop the replay where they
  stopped the run;
* tools of the recorded names return each step's recorded output, or raise an
  error of the recorded type and message, by act and step id (a replay tool
  reads the step id from the ``step_started`` event recorded just before it is
  called); retried steps fail as many times as they were tried;
* states with their own handlers return the recorded event.

The result, :class:`Replay`, holds the replayed run and the differences found
between the two traces (state path, transitions and their payloads, every
step's status, output, error type and attempts, and how the run ended).

A replay never waits for anything outside it: one that has not ended after
:func:`bound` seconds (the recorded time limit, if any, plus time for its size)
raises :class:`ReplayError`, and so does a trace that contradicts itself (two
ends, a cancelled step no time limit explains).

What does not replay exactly:

* a run that has not ended (paused, or its process died): resume it first;
* a cancelled run, and a run stopped by its time limit in a state other than
  ``plan``, ``act`` or a handler's (the stop depends on how long things took):
  :class:`ReplayError`. A time stop that does replay waits for the recorded
  time limit, as the run did;
* a pause and its resume replay as one run, without ``run_paused`` /
  ``run_resumed`` events; a step an approval rejected fails with its recorded
  output, but its error text is prefixed with ``Rejected:``;
* sub-agent runs (a step's child trace) are not replayed, only the step's output;
* values that were not JSON come back as their ``repr``, so a reference into
  such an output may resolve differently;
* timings, and the order in which parallel steps end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from planloop.engine._replay_config import replay_config
from planloop.engine._replay_diff import differences
from planloop.engine._replay_script import Script
from planloop.engine.loop import run_loop
from planloop.engine.result import RunResult
from planloop.engine.trace import Trace
from planloop.errors import ReplayError, RunError

__all__ = ["SLACK", "Replay", "ReplayError", "bound", "replay_trace"]

SLACK = 10.0
"""Seconds any replay may take, beyond its recorded time limit and its size's share."""

PER_EVENT = 0.002
"""Seconds a replay may take per recorded event (about twenty times what it takes)."""


def bound(trace: Trace) -> float:
    """The seconds a replay of ``trace`` may take before it is called stuck.

    A replay calls no model and no tool, so nothing outside it can make it wait;
    only a run stopped by its time limit replays by waiting for that limit.

    Example:
        >>> bound(Trace(run_id="r", events=[]))
        10.0
    """
    started = trace.started
    limit = started.limits.max_execution_time if started is not None else None
    return (limit or 0.0) + SLACK + PER_EVENT * len(trace.events)


class Replay(BaseModel):
    """A replayed run next to the recorded one.

    Attributes:
        recorded: the trace that was replayed.
        result: the replayed run's result (its ``trace`` is the new trace).
        differences: what the replay did differently, one line each; empty when
            it reproduced the run.

    Example:
        >>> import planloop
        >>> wf = planloop.Workflow("double", store=False)
        >>> _ = wf.step(lambda: 21 * 2, id="answer")
        >>> replay = wf.run_sync().trace.replay()  # calls no step: plays the recorded outputs
        >>> replay.matches, replay.result.output, replay.differences
        (True, 42, ())
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    recorded: Trace
    result: RunResult
    differences: tuple[str, ...] = ()

    @property
    def trace(self) -> Trace:
        """The replayed run's trace."""
        return self.result.trace

    @property
    def matches(self) -> bool:
        """Whether the replay reproduced the state path, step results and end."""
        return not self.differences

    def __repr__(self) -> str:
        found = "matches" if self.matches else f"{len(self.differences)} differences"
        return f"Replay(run_id={self.recorded.run_id!r}, {found})"


async def replay_trace(
    trace: Trace,
    *,
    run_id: str | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> Replay:
    """Run ``trace`` again through the loop with recorded decisions and step results.

    Args:
        trace: a recorded run that ended (finished or stopped).
        run_id: the replayed run's id (default: the recorded run's).
        on_event: sees every event of the replayed run as it is recorded.

    Raises:
        ReplayError: the trace cannot be replayed; the message says why.

    Example:
        >>> from planloop import Agent, FunctionPlanner
        >>> agent = Agent(None, [], planner=FunctionPlanner(lambda ctx: "done"), store=False)
        >>> from planloop.engine._sync import run_sync
        >>> replayed = run_sync(replay_trace(agent.run_sync("x").trace))
        >>> replayed.matches, replayed.result.output
        (True, 'done')
    """
    script = Script(trace)
    config = replay_config(script)

    def listen(event: Any) -> None:
        script.observe(event)
        if on_event is not None:
            on_event(event)

    limit = bound(trace)
    try:
        async with asyncio.timeout(limit):
            result = await run_loop(
                config, script.started.input, run_id=run_id or trace.run_id, on_event=listen
            )
    except RunError as exc:  # a run that stopped with an error replays as one
        if exc.result is None:
            raise
        result = exc.result
    except TimeoutError:
        raise ReplayError(
            f"the replay of run {trace.run_id!r} did not end within {limit:.3g} s (its "
            "time limit, if any, plus the time a replay of its size may take); the trace "
            "is inconsistent with itself",
            run_id=trace.run_id,
        ) from None
    return Replay(recorded=trace, result=result, differences=tuple(differences(trace, result)))
