"""``check_trace``: the loop invariants of planloop, checked on one recorded trace.

1. A run ends in exactly one terminal state, and ``stop_reason`` is set if and
   only if it stopped.
2. Every consecutive pair of states is a transition of the run's spec.
3. Iterations never exceed ``max_iterations``; elapsed time never exceeds
   ``max_execution_time`` by more than a small slack.
4. No step starts before all its dependencies succeeded; a step runs at most
   once per act; every step that started ends in a terminal status.
5. The run is isolated: one start and one end, its own run id throughout,
   counters that start from zero (nothing carried over from earlier runs).
"""

from __future__ import annotations

from planloop.engine.states import RunStatus, StepStatus
from planloop.engine.trace import (
    RunEnded,
    RunStarted,
    StepFinished,
    StepStarted,
    Trace,
    Transitioned,
)

__all__ = ["INVARIANTS", "check_trace"]

INVARIANTS = {
    1: "a run ends in exactly one terminal state, stop_reason set iff it stopped",
    2: "every consecutive pair of states is a transition of the spec",
    3: "iterations and elapsed time stay within the limits",
    4: "steps start after their dependencies succeeded, run once per act, and end",
    5: "the run is isolated: one start, one end, its own ids and counters",
}


def _fail(number: int, detail: str) -> AssertionError:
    return AssertionError(f"invariant {number} ({INVARIANTS[number]}) broken: {detail}")


def check_trace(trace: Trace, *, time_slack: float = 0.5) -> None:
    """Assert the loop invariants on ``trace``.

    Args:
        trace: a finished run's trace.
        time_slack: seconds a run may exceed ``max_execution_time``.

    Raises:
        AssertionError: naming the invariant broken and the offending part.

    Example:
        >>> from planloop import Agent, FunctionPlanner
        >>> agent = Agent(None, [], planner=FunctionPlanner(lambda ctx: "done"))
        >>> check_trace(agent.run_sync("x").trace)
    """
    _isolated(trace)
    _terminal(trace)
    _transitions(trace)
    _limits(trace, time_slack)
    _steps(trace)


def _isolated(trace: Trace) -> None:
    events = trace.events
    if not events or not isinstance(events[0], RunStarted):
        raise _fail(5, "the first event is not run_started")
    starts = [i for i, e in enumerate(events) if isinstance(e, RunStarted)]
    ends = [i for i, e in enumerate(events) if isinstance(e, RunEnded)]
    if len(starts) != 1:
        raise _fail(5, f"run_started appears {len(starts)} times (events {starts})")
    if len(ends) != 1 or ends[0] != len(events) - 1:
        raise _fail(5, f"run_ended must appear once, as the last event; found at {ends}")
    started = events[0]
    assert isinstance(started, RunStarted)
    if started.run_id != trace.run_id:
        raise _fail(5, f"run_started names run {started.run_id!r} inside trace {trace.run_id!r}")
    last = 0.0
    for i, e in enumerate(events):
        if e.t + 1e-9 < last:
            raise _fail(5, f"event #{i} ({e.kind}) has t={e.t:.6f}, earlier than {last:.6f}")
        last = max(last, e.t)
    acts = sorted({e.act for e in events if isinstance(e, StepStarted | StepFinished)})
    if acts and acts != list(range(1, len(acts) + 1)):
        raise _fail(5, f"act numbers {acts} do not count up from 1")
    ended = events[-1]
    assert isinstance(ended, RunEnded)
    if ended.iterations != trace.iterations:
        raise _fail(
            5,
            f"run_ended reports {ended.iterations} iterations but the trace passes through "
            f"observe {trace.iterations} times",
        )


def _terminal(trace: Trace) -> None:
    machine = trace.machine
    assert machine is not None
    states = trace.states
    terminal = set(machine.terminal)
    hits = [i for i, s in enumerate(states) if s in terminal]
    if hits != [len(states) - 1]:
        raise _fail(1, f"terminal states at positions {hits} of the path {_path(states)}")
    ended = trace.ended
    assert ended is not None
    final = states[-1]
    if (ended.status is RunStatus.stopped) != (final == "stopped"):
        raise _fail(1, f"status {ended.status.value!r} but the path ends in {final!r}")
    if (ended.stop_reason is not None) != (ended.status is RunStatus.stopped):
        raise _fail(1, f"status {ended.status.value!r} with stop_reason {ended.stop_reason!r}")


def _transitions(trace: Trace) -> None:
    machine = trace.machine
    assert machine is not None
    rules = {(r.source, r.event, r.target) for r in machine.transitions}
    current = machine.initial
    for i, e in enumerate(trace.events):
        if not isinstance(e, Transitioned):
            continue
        if e.source != current:
            raise _fail(2, f"event #{i} leaves {e.source!r} but the machine was in {current!r}")
        if (e.source, e.event, e.target) not in rules:
            raise _fail(2, f"event #{i}: {e.source} --{e.event}--> {e.target} is not in the spec")
        current = e.target


def _limits(trace: Trace, slack: float) -> None:
    started = trace.started
    assert started is not None
    limits = started.limits
    if limits.max_iterations is not None and trace.iterations > limits.max_iterations:
        raise _fail(3, f"{trace.iterations} iterations with max_iterations={limits.max_iterations}")
    if limits.max_execution_time is not None:
        over = trace.duration - limits.max_execution_time
        if over > slack:
            raise _fail(
                3,
                f"the run took {trace.duration:.3f} s with max_execution_time="
                f"{limits.max_execution_time:g} s ({over:.3f} s over; slack {slack:g} s)",
            )


def _steps(trace: Trace) -> None:
    for act, events in trace.iter_acts():
        finished: dict[str, StepStatus] = {}
        started: set[str] = set()
        attempts: dict[str, int] = {}
        for e in events:
            if isinstance(e, StepStarted):
                if e.step_id in finished:
                    raise _fail(4, f"act {act}: step {e.step_id!r} started again after it ended")
                if e.attempt != attempts.get(e.step_id, 0) + 1:
                    raise _fail(
                        4,
                        f"act {act}: step {e.step_id!r} started attempt {e.attempt} after "
                        f"attempt {attempts.get(e.step_id, 0)} (a step runs once per act; "
                        "retries are numbered attempts of that run)",
                    )
                attempts[e.step_id] = e.attempt
                if e.attempt > 1:
                    continue
                started.add(e.step_id)
                for dep in e.depends_on:
                    if finished.get(dep) is not StepStatus.succeeded:
                        state = finished.get(dep)
                        raise _fail(
                            4,
                            f"act {act}: step {e.step_id!r} started while its dependency "
                            f"{dep!r} was {state.value if state else 'not finished'}",
                        )
            else:
                sid = e.result.step_id
                if sid in finished:
                    raise _fail(4, f"act {act}: step {sid!r} finished twice")
                if not e.result.status.terminal:
                    raise _fail(4, f"act {act}: step {sid!r} ended {e.result.status.value}")
                finished[sid] = e.result.status
        never = sorted(started - set(finished))
        if never:
            raise _fail(4, f"act {act}: steps {never} started but never ended")


def _path(states: list[str]) -> str:
    return " -> ".join(str(s) for s in states)
