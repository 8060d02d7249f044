"""How a replayed run differs from the recorded one: state path, transitions, steps, end."""

from __future__ import annotations

from typing import Any

from planloop.engine.result import RunResult
from planloop.engine.trace import StepFinished, Trace, Transitioned

__all__ = ["differences"]


def differences(recorded: Trace, result: RunResult, *, limit: int = 10) -> list[str]:
    """What the replayed run did differently from ``recorded``, one line each."""
    found: list[str] = []
    replayed = result.trace
    if recorded.states != replayed.states:
        found.append(
            f"state path: recorded {' -> '.join(map(str, recorded.states))}; "
            f"replayed {' -> '.join(map(str, replayed.states))}"
        )
    for i, (a, b) in enumerate(zip(recorded.transitions, replayed.transitions, strict=False)):
        if _transition_key(a) != _transition_key(b):
            found.append(f"transition #{i}: recorded {_describe(a)}; replayed {_describe(b)}")
    before, after = _step_results(recorded), _step_results(replayed)
    for key in sorted(before.keys() | after.keys()):
        act, step_id = key
        was, now = before.get(key), after.get(key)
        if was != now:
            found.append(
                f"act {act} step {step_id!r}: recorded {_describe_step(was)}; "
                f"replayed {_describe_step(now)}"
            )
    end_a, end_b = recorded.ended, replayed.ended
    fields = ("status", "stop_reason", "output", "iterations", "error")
    for name in fields:
        x, y = getattr(end_a, name, None), getattr(end_b, name, None)
        if x != y:
            found.append(f"run end {name}: recorded {x!r}; replayed {y!r}")
    if len(found) > limit:
        found[limit:] = [f"... and {len(found) - limit} more"]
    return found


def _transition_key(t: Transitioned) -> tuple[Any, ...]:
    payload = t.payload
    if t.event == "Planned" and isinstance(payload.get("plan"), dict):
        plan = dict(payload["plan"])
        plan["steps"] = [_without_retry_details(s) for s in plan.get("steps", ())]
        payload = {**payload, "plan": plan}
    return (t.source, t.event, t.target, t.iteration, payload)


def _without_retry_details(step: Any) -> Any:
    if isinstance(step, dict) and isinstance(step.get("retry"), dict):
        return {**step, "retry": {"attempts": step["retry"].get("attempts")}}
    return step


def _describe(t: Transitioned) -> str:
    return f"{t.source} --{t.event}--> {t.target} (iteration {t.iteration}, {t.payload!r})"


def _step_results(trace: Trace) -> dict[tuple[int, str], tuple[Any, ...]]:
    return {
        (e.act, e.result.step_id): (
            e.result.status.value,
            e.result.output,
            e.result.error_type,
            e.result.attempts,
        )
        for e in trace.events
        if isinstance(e, StepFinished)
    }


def _describe_step(values: tuple[Any, ...] | None) -> str:
    if values is None:
        return "no such step"
    status, output, error_type, attempts = values
    extra = f", {error_type}" if error_type else ""
    return f"{status} ({output!r}{extra}, {attempts} attempts)"
