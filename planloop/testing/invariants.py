"""``check_trace``: the loop invariants of planloop, checked on one recorded trace.

1. A run ends in exactly one terminal state, and ``stop_reason`` is set if and
   only if it stopped. A paused run (``interrupt_before``, an approval step)
   ends in no terminal state, by design: its last event is ``run_paused``.
2. Every consecutive pair of states is a transition of the run's spec.
3. Iterations never exceed ``max_iterations``; elapsed time never exceeds
   ``max_execution_time`` by more than a small slack.
4. No step starts before all its dependencies (``depends_on`` and ``$ref``
   arguments) succeeded; a step runs at most once per act (retries are numbered
   attempts of that run); every step that started ends in a terminal status.
5. The run is isolated: one start and at most one end, its own run id
   throughout, counters that start from zero (nothing carried over from earlier
   runs), every pause followed by its resume.
6. Replaying the trace reproduces the same state path, step results and end
   without calling a model or a tool.

A broken invariant raises :class:`InvariantViolation` (an ``AssertionError``)
whose message names the invariant and shows the offending events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from planloop.engine._sync import run_sync
from planloop.engine.plan import Plan
from planloop.engine.replay import replay_trace
from planloop.engine.states import RunStatus, StepStatus, StopReason
from planloop.engine.trace import (
    ModelCalled,
    RunEnded,
    RunPaused,
    RunResumed,
    RunStarted,
    StepFinished,
    StepStarted,
    Trace,
    Transitioned,
)
from planloop.errors import InvariantViolation, ReplayError
from planloop.testing.failures import in_final_example, note_failure

__all__ = ["INVARIANTS", "InvariantViolation", "check_trace"]

INVARIANTS = {
    1: "a run ends in exactly one terminal state, stop_reason set iff it stopped",
    2: "every consecutive pair of states is a transition of the spec",
    3: "iterations and elapsed time stay within the limits",
    4: "steps start after their dependencies succeeded, run once per act, and end",
    5: "the run is isolated: one start, one end, its own ids and counters",
    6: "replaying the trace reproduces its state path, step results and end",
}
"""The invariants :func:`check_trace` asserts, by number (ARCHITECTURE §8).

Example:
    >>> INVARIANTS[2]
    'every consecutive pair of states is a transition of the spec'
"""

_CONTEXT = 2  # events shown on either side of an offending one
# Every time in a trace is one counter less the run's start; a resumed run's start
# is moved back by a time read from the store, which float rounding may leave a
# fraction of a nanosecond off. Nothing more is allowed out of order.
_CLOCK_SLACK = 1e-9
_REPLAY_PATIENCE = 10.0  # seconds a replay may take beyond the recorded run's duration


def check_trace(trace: Trace, *, time_slack: float = 0.5, replay: bool = True) -> None:
    """Assert the six loop invariants on ``trace`` (see :data:`INVARIANTS`).

    The trace may be of a run that ended (finished or stopped) or of one that
    paused (``interrupt_before``, an approval step), which ends without a
    terminal state by design; a resumed run's trace is checked across its
    pauses. Invariant 6 replays runs that ended, except those whose end depends
    on timing: stopped by ``max_execution_time``, cancelled, or with a step cancelled
    by a deadline. A replay that has not ended 10 s after the recorded run's
    duration breaks invariant 6 (nothing hangs).

    Args:
        trace: the trace of a run that ended or paused.
        time_slack: seconds a run may exceed ``max_execution_time``.
        replay: check invariant 6 too (it runs the loop once more, with no
            model and no tools).

    Raises:
        InvariantViolation: an ``AssertionError`` naming the invariant broken and
            showing the offending events. In the final (shrunk) example of a
            hypothesis test, the trace and its diagram are also written to
            ``$PLANLOOP_FAILURES`` (default ``.planloop/failures``) and named in
            a note on the error.

    Example:
        >>> from planloop import Agent, FunctionPlanner
        >>> agent = Agent(None, [], planner=FunctionPlanner(lambda ctx: "done"))
        >>> check_trace(agent.run_sync("x").trace)
    """
    try:
        _isolated(trace)
        _terminal(trace)
        _transitions(trace)
        _limits(trace, time_slack)
        _steps(trace)
        if replay:
            _replays(trace)
    except InvariantViolation as exc:
        if in_final_example():
            note_failure(exc, trace)
        raise


def _fail(number: int, detail: str, trace: Trace, *events: int) -> InvariantViolation:
    positions = tuple(sorted(set(events)))
    message = f"invariant {number} ({INVARIANTS[number]}) broken in run {trace.run_id!r}: {detail}"
    excerpt = _excerpt(trace, positions)
    return InvariantViolation(
        f"{message}\n{excerpt}" if excerpt else message,
        invariant=number,
        detail=detail,
        run_id=trace.run_id,
        events=positions,
    )


def _isolated(trace: Trace) -> None:
    events = trace.events
    if not events:
        raise _fail(5, "the trace has no events; a run's trace starts with run_started", trace)
    if not isinstance(events[0], RunStarted):
        raise _fail(5, f"the first event is {events[0].kind}, not run_started", trace, 0)
    starts = [i for i, e in enumerate(events) if isinstance(e, RunStarted)]
    ends = [i for i, e in enumerate(events) if isinstance(e, RunEnded)]
    if len(starts) != 1:
        raise _fail(5, f"run_started appears {len(starts)} times (events {starts})", trace, *starts)
    if len(ends) > 1 or (ends and ends[0] != len(events) - 1):
        raise _fail(
            5, f"run_ended must appear once, as the last event; found at {ends}", trace, *ends
        )
    if not ends and not isinstance(events[-1], RunPaused):
        raise _fail(
            1,
            f"the run neither ended nor paused: its last event is {events[-1].kind}, not "
            "run_ended or run_paused (was the trace read while the run went on, or did its "
            "process die? resume it first)",
            trace,
            len(events) - 1,
        )
    started = events[0]
    assert isinstance(started, RunStarted)
    if started.run_id != trace.run_id:
        raise _fail(
            5, f"run_started names run {started.run_id!r} inside trace {trace.run_id!r}", trace, 0
        )
    last = 0.0
    for i, e in enumerate(events):
        if e.t + _CLOCK_SLACK < last:
            raise _fail(5, f"event #{i} ({e.kind}) has t={e.t:.6f}, before {last:.6f}", trace, i)
        last = max(last, e.t)
    _pauses(trace)
    acts = [(i, e.act) for i, e in enumerate(events) if isinstance(e, StepStarted | StepFinished)]
    numbers = sorted({a for _, a in acts})
    if numbers and numbers != list(range(1, len(numbers) + 1)):
        first_bad = next(
            a for a, b in zip(numbers, range(1, len(numbers) + 1), strict=False) if a != b
        )
        where = [i for i, a in acts if a == first_bad][:1]
        raise _fail(5, f"act numbers {numbers} do not count up from 1", trace, *where)
    ended = trace.ended
    if ended is not None and ended.iterations != trace.iterations:
        raise _fail(
            5,
            f"run_ended reports {ended.iterations} iterations but the trace passes through "
            f"observe {trace.iterations} times",
            trace,
            len(events) - 1,
        )


def _pauses(trace: Trace) -> None:
    events = trace.events
    for i, e in enumerate(events):
        if isinstance(e, RunPaused) and i + 1 < len(events):
            after = events[i + 1]
            if not (isinstance(after, RunResumed) and after.after == "pause"):
                raise _fail(
                    5,
                    f"event #{i} pauses the run, but the next event is {after.kind}, not "
                    "run_resumed after the pause",
                    trace,
                    i,
                    i + 1,
                )
        if isinstance(e, RunResumed) and e.after == "pause":
            before = events[i - 1]
            if not isinstance(before, RunPaused):
                raise _fail(
                    5,
                    f"event #{i} resumes the run after a pause, but event #{i - 1} is "
                    f"{before.kind}, not run_paused",
                    trace,
                    i - 1,
                    i,
                )


def _terminal(trace: Trace) -> None:
    machine = trace.machine
    assert machine is not None
    states = [str(s) for s in trace.states]
    terminal = set(machine.terminal)
    hits = [i for i, s in enumerate(states) if s in terminal]
    positions = _transition_positions(trace)
    where = [positions[h - 1] for h in hits if h > 0]
    ended = trace.ended
    last = len(trace.events) - 1
    if ended is None:  # paused, by _isolated
        paused = trace.events[-1]
        assert isinstance(paused, RunPaused)
        if hits:
            raise _fail(
                1,
                f"the run paused after reaching terminal state {states[hits[0]]!r} "
                f"(path {_path(states)})",
                trace,
                *where,
                last,
            )
        current = states[-1]
        if paused.reason == "interrupt":
            event = paused.pending.get("event")
            rules = {(r.source, r.event, r.target) for r in machine.transitions}
            if (current, event, paused.state) not in rules:
                raise _fail(
                    1,
                    f"the run paused in {current!r} before {event} into {paused.state!r}, "
                    "which is not a transition of the spec",
                    trace,
                    last,
                )
        return
    if hits != [len(states) - 1]:
        raise _fail(
            1,
            f"terminal states at positions {hits} of the path {_path(states)}; "
            "a run ends in exactly one, as its last state",
            trace,
            *where,
            last,
        )
    final = states[-1]
    if ended.status is RunStatus.paused:
        raise _fail(
            1, "run_ended has status 'paused'; a paused run ends with run_paused", trace, last
        )
    if (ended.status is RunStatus.stopped) != (final == "stopped"):
        raise _fail(1, f"status {str(ended.status)!r} but the path ends in {final!r}", trace, last)
    if (ended.stop_reason is not None) != (ended.status is RunStatus.stopped):
        raise _fail(
            1, f"status {str(ended.status)!r} with stop_reason {ended.stop_reason!r}", trace, last
        )


def _transitions(trace: Trace) -> None:
    machine = trace.machine
    assert machine is not None
    rules = {(r.source, r.event, r.target) for r in machine.transitions}
    current = machine.initial
    for i, e in enumerate(trace.events):
        if isinstance(e, RunResumed) and e.state != current:
            raise _fail(
                2, f"event #{i} resumes in {e.state!r} but the machine was in {current!r}", trace, i
            )
        if not isinstance(e, Transitioned):
            continue
        if e.source != current:
            raise _fail(
                2, f"event #{i} leaves {e.source!r} but the machine was in {current!r}", trace, i
            )
        if (e.source, e.event, e.target) not in rules:
            raise _fail(
                2, f"event #{i}: {e.source} --{e.event}--> {e.target} is not in the spec", trace, i
            )
        current = e.target


def _limits(trace: Trace, slack: float) -> None:
    started = trace.started
    assert started is not None
    limits = started.limits
    if limits.max_iterations is not None and trace.iterations > limits.max_iterations:
        into_observe = [
            i
            for i, e in enumerate(trace.events)
            if isinstance(e, Transitioned) and e.target == "observe"
        ]
        raise _fail(
            3,
            f"{trace.iterations} iterations with max_iterations={limits.max_iterations}",
            trace,
            *into_observe[limits.max_iterations :][:1],
        )
    if limits.max_execution_time is not None:
        over = trace.duration - limits.max_execution_time
        if over > slack:
            late = [i for i, e in enumerate(trace.events) if e.t > limits.max_execution_time]
            raise _fail(
                3,
                f"the run took {trace.duration:.3f} s with max_execution_time="
                f"{limits.max_execution_time:g} s ({over:.3f} s over; slack {slack:g} s)",
                trace,
                *late[:1],
            )


def _steps(trace: Trace) -> None:
    plans = _plans_by_act(trace)
    for act in sorted({e.act for e in trace.events if isinstance(e, StepStarted | StepFinished)}):
        plan = plans.get(act)
        finished: dict[str, tuple[StepStatus, int]] = {}
        started: dict[str, int] = {}
        attempts: dict[str, int] = {}
        for i, e in enumerate(trace.events):
            if not isinstance(e, StepStarted | StepFinished) or e.act != act:
                continue
            if isinstance(e, StepStarted):
                sid = e.step_id
                if sid in finished:
                    raise _fail(
                        4,
                        f"act {act}: step {sid!r} started again after it ended",
                        trace,
                        finished[sid][1],
                        i,
                    )
                if e.attempt != attempts.get(sid, 0) + 1:
                    raise _fail(
                        4,
                        f"act {act}: step {sid!r} started attempt {e.attempt} after "
                        f"attempt {attempts.get(sid, 0)} (a step runs once per act; "
                        "retries are numbered attempts of that run)",
                        trace,
                        i,
                    )
                attempts[sid] = e.attempt
                if e.attempt > 1:
                    continue
                started[sid] = i
                for dep in _dependencies(plan, sid, e.depends_on):
                    done = finished.get(dep)
                    if done is None or done[0] is not StepStatus.succeeded:
                        state = done[0].value if done else "not finished"
                        raise _fail(
                            4,
                            f"act {act}: step {sid!r} started while its dependency {dep!r} "
                            f"was {state}",
                            trace,
                            *([done[1]] if done else []),
                            i,
                        )
            else:
                sid = e.result.step_id
                if sid in finished:
                    raise _fail(
                        4, f"act {act}: step {sid!r} finished twice", trace, finished[sid][1], i
                    )
                if not e.result.status.terminal:
                    raise _fail(
                        4, f"act {act}: step {sid!r} ended {e.result.status.value}", trace, i
                    )
                finished[sid] = (e.result.status, i)
        never = sorted(set(started) - set(finished))
        if never:
            raise _fail(
                4,
                f"act {act}: steps {never} started but never ended",
                trace,
                *(started[s] for s in never),
            )


def _plans_by_act(trace: Trace) -> dict[int, Plan]:
    """The plan each act executed, read from the transition into ``act`` before it."""
    plans: dict[int, Plan] = {}
    act = 0
    for e in trace.events:
        if isinstance(e, Transitioned) and e.target == "act":
            act += 1
            payload = e.payload.get("plan")
            if isinstance(payload, Mapping):
                # A custom event's payload may not be a plan: the recorded depends_on holds.
                with contextlib.suppress(ValidationError):
                    plans[act] = Plan.model_validate(payload)
    return plans


def _dependencies(plan: Plan | None, step_id: str, recorded: tuple[str, ...]) -> list[str]:
    deps = dict.fromkeys(recorded)
    if plan is not None and step_id in plan.by_id:
        deps.update(dict.fromkeys(plan.dependencies(plan.by_id[step_id])))
    return list(deps)


def _replays(trace: Trace) -> None:
    ended = trace.ended
    if ended is None:
        return  # a paused run replays once it has been resumed to its end
    if ended.stop_reason in (StopReason.max_execution_time, StopReason.cancelled) or any(
        isinstance(e, StepFinished) and e.result.status is StepStatus.cancelled
        for e in trace.events
    ):
        return  # where these stop depends on timing; replay does not reproduce it
    # Replay the trace as it is kept (JSON): values that are not JSON are compared in
    # the form a stored trace has them, which is the form a replay reproduces.
    kept = Trace.from_json(trace.to_json(redact=False))
    patience = trace.duration + _REPLAY_PATIENCE
    try:
        replayed = run_sync(asyncio.wait_for(replay_trace(kept), patience))
    except ReplayError as exc:
        raise _fail(6, f"the trace cannot be replayed: {exc}", trace) from exc
    except TimeoutError:
        raise _fail(
            6,
            f"the replay did not end within {patience:.1f} s (the run took {trace.duration:.3f} s)",
            trace,
        ) from None
    if replayed.differences:
        lines = "\n".join(f"    - {d}" for d in replayed.differences)
        raise _fail(6, f"the replay differs from the recorded run:\n{lines}", trace)


def _transition_positions(trace: Trace) -> list[int]:
    return [i for i, e in enumerate(trace.events) if isinstance(e, Transitioned)]


def _path(states: list[str]) -> str:
    return " -> ".join(str(s) for s in states)


def _excerpt(trace: Trace, offending: tuple[int, ...]) -> str:
    """The offending events (marked ``>``) with a little context, one line each."""
    events = trace.events
    shown: set[int] = set()
    for i in offending:
        shown.update(range(max(0, i - _CONTEXT), min(len(events), i + _CONTEXT + 1)))
    lines: list[str] = []
    previous = -1
    for i in sorted(shown):
        if previous >= 0 and i != previous + 1:
            lines.append("     ...")
        mark = ">" if i in offending else " "
        lines.append(f"  {mark} #{i:<3} t={events[i].t:7.3f}  {_describe(events[i])}")
        previous = i
    return "\n".join(lines)


def _describe(e: Any) -> str:
    if isinstance(e, RunStarted):
        return f"run_started {e.run_id!r} limits={e.limits.model_dump(exclude_none=True)}"
    if isinstance(e, Transitioned):
        return f"transitioned {e.source} --{e.event}--> {e.target} (iteration {e.iteration})"
    if isinstance(e, StepStarted):
        deps = f" after {list(e.depends_on)}" if e.depends_on else ""
        return f"step_started act {e.act} {e.step_id!r} ({e.tool}) attempt {e.attempt}{deps}"
    if isinstance(e, StepFinished):
        r = e.result
        error = f": {_short(r.error)}" if r.error else ""
        return f"step_finished act {e.act} {r.step_id!r} {r.status.value}{error}"
    if isinstance(e, ModelCalled):
        return f"model_called {e.model!r}" + (f" error: {_short(e.error)}" if e.error else "")
    if isinstance(e, RunPaused):
        if e.reason == "approval":
            return f"run_paused in {e.state!r} for approval {sorted(e.pending.get('approval', {}))}"
        return f"run_paused before {e.pending.get('event', '?')} into {e.state!r}"
    if isinstance(e, RunResumed):
        return f"run_resumed in {e.state!r} after {e.after}"
    if isinstance(e, RunEnded):
        reason = f" ({e.stop_reason.value})" if e.stop_reason else ""
        return f"run_ended {e.status.value}{reason}, {e.iterations} iterations"
    return str(getattr(e, "kind", type(e).__name__))


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
