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

__all__ = ["Replay", "ReplayError", "replay_trace"]


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

    try:
        result = await run_loop(
            config, script.started.input, run_id=run_id or trace.run_id, on_event=listen
        )
    except RunError as exc:  # a run that stopped with an error replays as one
        if exc.result is None:
            raise
        result = exc.result
    return Replay(recorded=trace, result=result, differences=tuple(differences(trace, result)))
