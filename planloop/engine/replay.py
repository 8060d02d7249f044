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

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Set
from typing import Any, cast

from pydantic import BaseModel, ConfigDict

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
from planloop.engine.loop import LoopConfig, StateHandler, run_loop
from planloop.engine.plan import Plan
from planloop.engine.planner import Answer, RunContext, StopRun
from planloop.engine.result import RunResult
from planloop.engine.retry import RetryPolicy
from planloop.engine.spec import MachineSpec
from planloop.engine.states import LoopState, RunStatus, StepStatus, StopReason
from planloop.engine.steps import StepResult
from planloop.engine.tooling import ToolLike, ToolSpec
from planloop.engine.trace import (
    ModelCalled,
    RunEnded,
    RunStarted,
    StepFinished,
    StepStarted,
    Trace,
    Transitioned,
    Usage,
)
from planloop.errors import InvalidSpec, OutputParserError, ReplayError, RunError

__all__ = ["Replay", "ReplayError", "replay_trace"]

_BUILTIN_EVENTS: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (Planned, Answered, Rejected, Acted, Continued, ReturnedDirect, Stopped)
}
# The events the loop's own handler of each built-in state can produce; a recorded
# run that left one of these states by another event had a handler there.
_BUILTIN_EXITS: dict[str, frozenset[str]] = {
    LoopState.plan: frozenset({"Planned", "Answered", "Rejected", "Stopped"}),
    LoopState.act: frozenset({"Acted", "Stopped"}),
    LoopState.observe: frozenset({"Continued", "ReturnedDirect", "Stopped"}),
}
_NOT_A_TOOL = re.compile(r" is not a valid tool, try one of \[(.*)\]\.\Z", re.DOTALL)



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
    script = _Script(trace)
    config = script.config()

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


class _Diverged(RunError):
    """The replayed run asked for something the recorded run did not do."""


class _Rejected(OutputParserError):
    """A recorded ``Rejected`` transition, played back through ``handle_parsing_errors``."""


class _Attempt(Exception):
    """A try of a step that the recorded run retried."""


class _Script:
    """What the recorded trace says, indexed for the replay, and where the replay is."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        run_id = trace.run_id
        started, ended = trace.started, trace.ended
        if started is None:
            raise ReplayError(
                f"trace {run_id!r} does not start with a run_started event; only a recorded "
                "run can be replayed",
                run_id=run_id,
            )
        if ended is None:
            raise ReplayError(
                f"run {run_id!r} has not ended (it is paused, or its process died); resume "
                "it to its end, then replay it",
                run_id=run_id,
            )
        if ended.stop_reason is StopReason.cancelled:
            raise ReplayError(
                f"run {run_id!r} was cancelled; a cancelled run cannot be replayed",
                run_id=run_id,
            )
        self.started: RunStarted = started
        self.ended: RunEnded = ended
        self.transitions: list[Transitioned] = []
        self.model_calls: list[list[ModelCalled]] = [[]]
        self.results: dict[tuple[int, str], StepResult] = {}
        self.ended_before: dict[tuple[int, str], tuple[int, str]] = {}
        self.act_results: dict[int, list[StepResult]] = {}
        self.direct: set[str] = set()
        names: dict[str, None] = {}
        listed: list[str] | None = None
        acts = 0
        for event in trace.events:
            if isinstance(event, Transitioned):
                self.transitions.append(event)
                self.model_calls.append([])
                if event.target == LoopState.act:
                    acts += 1
                if event.event == "ReturnedDirect":
                    self.direct.update(r.tool for r in self.act_results.get(acts, ()))
            elif isinstance(event, ModelCalled):
                self.model_calls[-1].append(event)
            elif isinstance(event, StepStarted):
                names.setdefault(event.tool)
            elif isinstance(event, StepFinished):
                result = event.result
                key = (event.act, result.step_id)
                before = self.act_results.setdefault(event.act, [])
                if before and key not in self.results:
                    self.ended_before[key] = (event.act, before[-1].step_id)
                self.results[key] = result
                before.append(result)
                if result.error_type == "ToolNotFound":
                    found = _NOT_A_TOOL.search(str(result.output))
                    if found is not None and listed is None:
                        listed = [n for n in found.group(1).split(", ") if n]
                    names.pop(result.tool, None)
                elif result.started_at is not None:
                    names.setdefault(result.tool)
        self.tool_names = [*(listed or []), *(n for n in names if n not in (listed or ()))]
        # A cancelled step waits in the replay until what cancelled it strikes again: a
        # step that failed, or the time limit. The run may then have ended for another
        # reason (the final answer after the deadline failed), so the limit is kept
        # whenever a step was cancelled: without it such a step would wait forever.
        self.deadline_struck = started.limits.max_execution_time is not None and any(
            r.status is StepStatus.cancelled for r in self.results.values()
        )
        self.spec = self._spec()
        self._check_path()
        self.seen = 0
        self.models_done = 0
        self.step: tuple[int, str, int] | None = None
        self.finished: dict[tuple[int, str], asyncio.Future[None]] = {}

    # --- building the configuration --------------------------------------------

    def _spec(self) -> MachineSpec:
        summary = self.started.machine
        types: dict[str, type[Event]] = {}
        for rule in summary.transitions:
            if rule.event not in types:
                types[rule.event] = _BUILTIN_EVENTS.get(rule.event) or _event_type(rule.event)
        edges: dict[type[Event], dict[str, str]] = {}
        for rule in summary.transitions:
            edges.setdefault(types[rule.event], {})[rule.source] = rule.target
        self.event_types = types
        try:
            return MachineSpec(
                states=summary.states,
                transitions=edges,
                initial=summary.initial,
                terminal=summary.terminal,
            )
        except InvalidSpec as exc:
            raise ReplayError(
                f"run {self.trace.run_id!r} records a machine that is not valid: {exc}",
                run_id=self.trace.run_id,
            ) from None

    def _check_path(self) -> None:
        run_id = self.trace.run_id
        summary = self.started.machine
        rules = {(r.source, r.event, r.target) for r in summary.transitions}
        state = summary.initial
        for i, t in enumerate(self.transitions):
            for name in (t.source, t.target):
                if name not in summary.states:
                    raise ReplayError(
                        f"run {run_id!r}: transition #{i} names state {name!r}, which its "
                        f"machine does not have (states: {', '.join(summary.states)})",
                        run_id=run_id,
                    )
            if t.source != state:
                raise ReplayError(
                    f"run {run_id!r}: transition #{i} leaves {t.source!r}, but the run was in "
                    f"{state!r}; the trace is corrupt",
                    run_id=run_id,
                )
            if (t.source, t.event, t.target) not in rules:
                raise ReplayError(
                    f"run {run_id!r}: transition #{i} {t.source} --{t.event}--> {t.target} is "
                    "not a transition of its machine",
                    run_id=run_id,
                )
            state = t.target
        last = self.transitions[-1] if self.transitions else None
        if self.ended.stop_reason is StopReason.max_execution_time:
            where = last.source if last is not None else summary.initial
            if self.started.limits.max_execution_time is None or where == LoopState.observe:
                raise ReplayError(
                    f"run {run_id!r} stopped at its time limit in state {where!r}, which a "
                    "replay cannot reproduce (it depends on how long the run took there)",
                    run_id=run_id,
                )

    def config(self) -> LoopConfig:
        limits = self.started.limits
        if self.ended.stop_reason is not StopReason.max_execution_time and not self.deadline_struck:
            limits = limits.model_copy(update={"max_execution_time": None})
        handlers: dict[str, StateHandler] = {}
        for state in self.spec.states:
            if state in self.spec.terminal:
                continue
            builtin = _BUILTIN_EXITS.get(state)
            exits = {t.event for t in self.transitions if t.source == state}
            if builtin is None or not exits <= builtin:
                handlers[state] = self._handler(state)
        stopping = self._failed_step_that_stopped()
        tools = _Tools({n: _ReplayTool(n, self) for n in self.tool_names})
        if stopping is not None and _TOOL_HINT not in (self.ended.error or ""):
            # It ran a Python callable of the plan (a workflow step), not one of the
            # runnable's tools, and the loop words that failure without the hint.
            tools.unlisted.add(stopping.tool)
        return LoopConfig(
            planner=_ReplayPlanner(self),
            tools=tools,
            spec=self.spec,
            limits=limits,
            early_stopping_method="generate",
            handle_parsing_errors=_feedback,
            handlers=handlers,
            on_tool_error="stop" if stopping is not None else "observe",
            max_plan_steps=None,
            name=self.started.name,
        )

    def _failed_step_that_stopped(self) -> StepResult | None:
        """The step whose failure stopped the run (``on_tool_error="stop"``), if one did."""
        last = self.transitions[-1] if self.transitions else None
        error = self.ended.error or ""
        if last is None or last.source != LoopState.observe or last.event != "Stopped":
            return None
        acts = sum(1 for t in self.transitions if t.target == LoopState.act)
        return next(
            (
                r
                for r in self.act_results.get(acts, ())
                if r.fatal and error.startswith(f"step {r.step_id!r} ({r.tool}) raised ")
            ),
            None,
        )

    # --- following the replay ---------------------------------------------------

    def observe(self, event: Any) -> None:
        kind = type(event)
        if kind is StepStarted:
            self.step = (event.act, event.step_id, event.attempt)
        elif kind is Transitioned:
            self.seen += 1
        elif kind is StepFinished:
            done = self.finished_future((event.act, event.result.step_id))
            if not done.done():
                done.set_result(None)

    def finished_future(self, key: tuple[int, str]) -> asyncio.Future[None]:
        done = self.finished.get(key)
        if done is None:
            done = self.finished[key] = asyncio.get_running_loop().create_future()
        return done

    async def in_recorded_order(self, key: tuple[int, str]) -> None:
        """Wait until the step that ended just before ``key`` in the recorded act has ended.

        Parallel steps then end in the recorded order, so that what depends on it
        (which failure stops the run, the order of observations) is reproduced.
        """
        before = self.ended_before.get(key)
        if before is not None:
            await self.finished_future(before)

    def next_transition(self, state: str) -> Transitioned:
        """The recorded transition the replay is about to make, out of ``state``."""
        k = self.seen
        if k >= len(self.transitions):
            raise _Diverged(
                f"replay diverged: the replay is in state {state!r} after {k} transitions, "
                f"where the recorded run had ended"
            )
        recorded = self.transitions[k]
        if recorded.source != state:
            raise _Diverged(
                f"replay diverged: transition #{k} leaves {state!r} in the replay but "
                f"{recorded.source!r} in the recorded run"
            )
        return recorded

    async def replay_model_calls(self, ctx: RunContext) -> None:
        """Record the model calls the recorded run made before its next transition."""
        upto = min(self.seen, len(self.model_calls) - 1)
        while self.models_done <= upto:
            for call in self.model_calls[self.models_done]:
                with contextlib.suppress(_Replayed):
                    await ctx.record_model_call(
                        call.model, _model_call(call), messages=call.messages
                    )
            self.models_done += 1

    def event_for(self, recorded: Transitioned) -> Event:
        """The event behind a recorded transition, for a state with its own handler."""
        name, payload = recorded.event, recorded.payload
        if name == "Planned":
            return Planned(plan=self.plan_from(payload))
        if name == "Acted":
            acts = sum(1 for t in self.transitions[: self.seen] if t.target == LoopState.act)
            return Acted(results=tuple(self.act_results.get(acts, ())))
        return self.event_types[name].model_validate(payload)

    def plan_from(self, payload: Mapping[str, Any]) -> Plan:
        data = dict(payload["plan"])
        steps = []
        for step in data.get("steps", ()):
            step = dict(step)
            retry = step.get("retry")
            if isinstance(retry, dict):
                # The recorded policy's exception types were stored as text; a replayed
                # step only has to be tried as often, without waiting: the stand-in
                # failures of the tries before the recorded last one are retried, the
                # recorded error itself never (the run may have stopped retrying it).
                step["retry"] = RetryPolicy(
                    attempts=int(retry.get("attempts", 1)),
                    initial_interval=0,
                    max_interval=0,
                    jitter=0,
                    retry_on=(_Attempt,),
                )
            steps.append(step)
        data["steps"] = steps
        return Plan.model_validate(data)

    async def end_here(self, recorded: Transitioned) -> Any:
        """Raise what stopped the recorded run at ``recorded`` (a ``Stopped`` transition)."""
        reason = recorded.payload.get("reason")
        if reason == StopReason.error:
            raise RunError(self.ended.error or "the recorded run stopped with an error")
        if reason == StopReason.max_execution_time:
            await asyncio.Event().wait()  # until the replay's own deadline stops it
        if reason is not None:  # a planner or a handler asked for this stop (StopRun, Stopped)
            raise StopRun(reason, recorded.payload.get("output"))
        raise _Diverged(
            f"replay diverged: the recorded run stopped ({reason}) at transition "
            f"#{self.seen}, where the replay did not"
        )

    def _handler(self, state: str) -> StateHandler:
        async def handle(ctx: RunContext) -> Event:
            recorded = self.next_transition(state)
            await self.replay_model_calls(ctx)
            last = self.seen == len(self.transitions) - 1
            if recorded.event == "Stopped" and last and self.ended.status is RunStatus.stopped:
                await self.end_here(recorded)
            return self.event_for(recorded)

        return handle


class _ReplayPlanner:
    """Plays back the decisions recorded out of the ``plan`` state."""

    def __init__(self, script: _Script) -> None:
        self.script = script

    async def plan(self, ctx: RunContext) -> Plan | Answer:
        script = self.script
        recorded = script.next_transition(LoopState.plan)
        await script.replay_model_calls(ctx)
        name, payload = recorded.event, recorded.payload
        if name == "Planned":
            return script.plan_from(payload)
        if name == "Answered":
            return Answer(payload.get("output"))
        if name == "Rejected":
            raise _Rejected(
                str(payload.get("error", "")),
                llm_output=str(payload.get("llm_output", "")),
                observation=str(payload.get("feedback", "")),
            )
        return cast(Answer, await script.end_here(recorded))

    async def final_answer(self, ctx: RunContext) -> Answer:
        script = self.script
        await script.replay_model_calls(ctx)
        if script.ended.stop_reason is StopReason.error:  # the final answer failed
            raise RunError(script.ended.error or "the recorded final answer failed")
        return Answer(script.ended.output)


def _feedback(exc: OutputParserError) -> str:
    return exc.observation or ""


_TOOL_HINT = "; set handle_tool_error on the tool"


class _Tools(Mapping[str, ToolLike]):
    """The replay's tools; ``unlisted`` ones run but are not among the runnable's tools."""

    def __init__(self, tools: dict[str, ToolLike]) -> None:
        self.tools = tools
        self.unlisted: set[str] = set()

    def __getitem__(self, name: str) -> ToolLike:
        return self.tools[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tools and name not in self.unlisted

    def __iter__(self) -> Iterator[str]:
        return (n for n in self.tools if n not in self.unlisted)

    def __len__(self) -> int:
        return sum(1 for n in self.tools if n not in self.unlisted)


class _ReplayTool:
    """A tool of a recorded name: each call gives back that step's recorded result."""

    def __init__(self, name: str, script: _Script) -> None:
        self._name = name
        self._script = script
        self._spec = ToolSpec(name=name)

    @property
    def name(self) -> str:
        return self._name

    @property
    def return_direct(self) -> bool:
        return self._name in self._script.direct

    @property
    def is_async(self) -> bool:
        # Async, so that the scheduler calls it right after recording the step's
        # start, in the same task: that start says which step is being called.
        return True

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    def _recorded(self) -> tuple[StepResult | None, int]:
        step = self._script.step
        if step is None:
            return None, 1
        act, step_id, attempt = step
        return self._script.results.get((act, step_id)), attempt

    def validate_args(
        self, args: Mapping[str, Any], *, partial: Set[str] = frozenset()
    ) -> dict[str, Any]:
        recorded, _ = self._recorded()
        if recorded is not None and recorded.error_type == "ToolArgumentsError" and not partial:
            from planloop.errors import ToolArgumentsError

            error = ToolArgumentsError(self._name, ())
            error.args = (recorded.error or "",)
            raise error
        return dict(args)

    def call(self, kwargs: dict[str, Any]) -> Any:
        recorded, attempt = self._recorded()
        return _play(self._script, recorded, attempt, self._script.step)

    def handle_error(self, error: BaseException) -> Any | None:
        recorded = error.recorded if isinstance(error, _Replayed) else None
        if recorded is not None and not recorded.fatal:
            return recorded.output
        return None


async def _play(
    script: _Script, recorded: StepResult | None, attempt: int, step: tuple[int, str, int] | None
) -> Any:
    if recorded is None or step is None:
        raise _Diverged(f"replay diverged: step {step} did not run in the recorded run")
    if recorded.status is StepStatus.cancelled:
        await asyncio.Event().wait()  # it was running when the time limit struck
    if attempt < recorded.attempts:
        raise _Attempt(f"try {attempt} of {recorded.attempts}")
    await script.in_recorded_order(step[:2])
    if recorded.status is StepStatus.succeeded:
        return recorded.output
    raise _recorded_error(recorded)


class _Replayed(Exception):
    """Base of the stand-ins for recorded errors (named as the recorded type)."""

    recorded: StepResult | None = None


_ERROR_TYPES: dict[str, type[_Replayed]] = {}


def _replayed_error(name: str, text: str) -> _Replayed:
    """An error that reads as the recorded ``"<name>: <message>"`` text."""
    cls = _ERROR_TYPES.get(name)
    if cls is None:
        cls = _ERROR_TYPES[name] = type(name, (_Replayed,), {"__module__": __name__})
    if text.startswith(f"{name}: "):
        text = text[len(name) + 2 :]
    elif text == name:
        text = ""
    return cls(text)


def _recorded_error(recorded: StepResult) -> Exception:
    error = _replayed_error(recorded.error_type or "Exception", recorded.error or "")
    error.recorded = recorded
    return error


class _ModelAnswer:
    __slots__ = ("usage",)

    def __init__(self, usage: Usage | None) -> None:
        self.usage = usage


async def _model_call(call: ModelCalled) -> _ModelAnswer:
    if call.error is not None:
        name, _, _ = call.error.partition(": ")
        raise _replayed_error(name, call.error)
    return _ModelAnswer(call.usage)


def _event_type(name: str) -> type[Event]:
    config = ConfigDict(frozen=True, extra="allow", arbitrary_types_allowed=True)
    return cast(type[Event], type(name, (Event,), {"model_config": config, "__module__": __name__}))


# ---------------------------------------------------------------------------
# Comparing


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
