"""The act state: event-driven, parallel, retries, timeouts, failures, never hanging."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planloop import (
    Agent,
    Answer,
    FunctionPlanner,
    Plan,
    RetryPolicy,
    RunContext,
    RunResult,
    Step,
    StepStatus,
    StopReason,
    ref,
    tool,
)
from planloop.testing import check_trace, flaky_tool, hanging_tool, slow_tool


def run_plan(plan: Plan, tools: list[Any], time_slack: float = 0.5, **options: Any) -> RunResult:
    def decide(ctx: RunContext) -> Plan | Answer:
        return plan if not ctx.all_steps else Answer("done")

    agent = Agent(None, tools, planner=FunctionPlanner(decide), on_tool_error="observe", **options)
    result = agent.run_sync("go")
    check_trace(result.trace, time_slack=time_slack)
    return result


def order(result: RunResult) -> list[tuple[str, str]]:
    out = []
    for e in result.trace.events:
        if e.kind == "step_started":
            out.append(("start", e.step_id))
        elif e.kind == "step_finished":
            out.append(("end", e.result.step_id))
    return out


def test_a_step_starts_when_its_own_dependencies_are_done() -> None:
    gate = threading.Event()

    @tool
    def slow_a() -> str:
        """Waits until b's dependent has started."""
        gate.wait(5)
        return "a"

    @tool
    def quick(x: str = "") -> str:
        """Returns at once."""
        return x + "!"

    @tool
    def opens(x: str) -> str:
        """Opens the gate."""
        gate.set()
        return x

    plan = Plan(
        [
            Step(id="a", tool="slow_a"),
            Step(id="b", tool="quick", args={"x": "b"}),
            Step(id="c", tool="opens", args={"x": ref("b")}),
            Step(id="d", tool="quick", args={"x": ref("a")}),
        ]
    )
    result = run_plan(plan, [slow_a, quick, opens])
    seq = order(result)
    assert seq.index(("start", "c")) < seq.index(("end", "a"))
    assert {r.step_id: r.output for r in result.steps} == {
        "a": "a",
        "b": "b!",
        "c": "b!",
        "d": "a!",
    }


def test_failure_skips_transitive_dependents_and_other_branches_go_on() -> None:
    @tool
    def boom() -> str:
        """Raises."""
        raise ValueError("nope")

    @tool
    def ok(x: Any = None) -> str:
        """Fine."""
        return "ok"

    plan = Plan(
        [
            Step(id="bad", tool="boom"),
            Step(id="child", tool="ok", args={"x": ref("bad")}),
            Step(id="grandchild", tool="ok", depends_on=("child",)),
            Step(id="other", tool="ok"),
            Step(id="after_other", tool="ok", depends_on=("other",)),
        ]
    )
    result = run_plan(plan, [boom, ok])
    status = {r.step_id: r.status for r in result.steps}
    assert status == {
        "bad": StepStatus.failed,
        "child": StepStatus.skipped,
        "grandchild": StepStatus.skipped,
        "other": StepStatus.succeeded,
        "after_other": StepStatus.succeeded,
    }
    skipped = {r.step_id: r.error for r in result.steps if r.status is StepStatus.skipped}
    assert skipped == {
        "child": "dependency 'bad' failed",
        "grandchild": "dependency 'child' skipped",
    }
    observations = {a.step_id: o for a, o in result.intermediate_steps}
    assert observations["bad"] == "Error: ValueError: nope"
    assert observations["child"] == "Skipped: dependency 'bad' failed"


def test_retries_are_attempts_of_one_run() -> None:
    flaky = flaky_tool(fails=2)
    retry = RetryPolicy(attempts=3, initial_interval=0.001, jitter=0)
    result = run_plan(Plan([Step(id="f", tool="flaky", retry=retry)]), [flaky])
    [step] = result.steps
    assert (step.status, step.output, step.attempts) == (StepStatus.succeeded, "ok", 3)
    starts = [e.attempt for e in result.trace.events if e.kind == "step_started"]
    assert starts == [1, 2, 3]


def test_retries_give_up_and_respect_retry_on() -> None:
    policy = RetryPolicy(attempts=2, initial_interval=0, jitter=0)
    result = run_plan(Plan([Step(id="f", tool="flaky", retry=policy)]), [flaky_tool(fails=5)])
    assert (result.steps[0].status, result.steps[0].attempts) == (StepStatus.failed, 2)
    only_value_errors = RetryPolicy(attempts=5, initial_interval=0, retry_on=(ValueError,))
    result = run_plan(
        Plan([Step(id="f", tool="flaky", retry=only_value_errors)]), [flaky_tool(fails=5)]
    )
    assert result.steps[0].attempts == 1


def test_step_timeout_ends_a_hanging_tool() -> None:
    for sync in (False, True):
        hang = hanging_tool(sync=sync)
        try:
            result = run_plan(Plan([Step(id="h", tool="hanging", timeout=0.05)]), [hang])
        finally:
            hang.release()
        [step] = result.steps
        assert step.status is StepStatus.failed
        assert step.error == "TimeoutError: timed out after 0.05 s"


def test_default_pool_runs_fifty_sync_steps_at_once() -> None:
    barrier = threading.Barrier(50, timeout=10)

    @tool
    def wait_for_all(i: int) -> int:
        """Passes only when all 50 calls are running together."""
        barrier.wait()
        return i

    plan = Plan([Step(id=f"s{i}", tool="wait_for_all", args={"i": i}) for i in range(50)])
    result = run_plan(plan, [wait_for_all])
    assert sorted(r.output for r in result.steps) == list(range(50))


def test_max_concurrency_bounds_parallelism() -> None:
    plan = Plan([Step(id=f"s{i}", tool="slow") for i in range(4)])
    result = run_plan(plan, [slow_tool(0.01)], max_concurrency=1)
    seq = order(result)
    assert seq == [(k, f"s{i}") for i in range(4) for k in ("start", "end")]


def test_every_async_step_runs_in_a_task_of_its_own_at_the_time() -> None:
    # Tasks are reused along chains; a step must still see a task, be able to
    # use asyncio.timeout, and never share its task with a step running alongside.
    seen: dict[int, asyncio.Task[Any] | None] = {}
    active: dict[asyncio.Task[Any], int] = {}

    @tool
    async def probe(i: int) -> int:
        """Records the task it runs in."""
        task = asyncio.current_task()
        assert task is not None and task not in active
        active[task] = i
        seen[i] = task
        async with asyncio.timeout(5):
            await asyncio.sleep(0)
        del active[task]
        return i

    steps = [
        Step(
            id=f"c{c}_{i}",
            tool="probe",
            args={"i": c * 10 + i},
            depends_on=(f"c{c}_{i - 1}",) if i else (),
        )
        for c in range(3)
        for i in range(10)
    ]
    result = run_plan(Plan(steps), [probe])
    assert all(r.status is StepStatus.succeeded for r in result.steps)
    assert len(seen) == 30 and all(t is not None for t in seen.values())


def test_a_deadline_stops_a_chain_of_steps_that_never_suspend() -> None:
    @tool
    async def busy(i: int) -> int:
        """Blocks the event loop for a millisecond without ever awaiting."""
        time.sleep(0.001)
        return i

    steps = [
        Step(id=f"s{i}", tool="busy", args={"i": i}, depends_on=(f"s{i - 1}",) if i else ())
        for i in range(900)
    ]
    # What is tested is that the deadline is served at all; how promptly it is on this
    # shared machine (hundreds of steps end cancelled after it) is not.
    result = run_plan(Plan(steps), [busy], time_slack=3.0, max_execution_time=0.3)
    assert result.stop_reason is StopReason.max_execution_time
    statuses = Counter(r.status for r in result.steps)
    assert statuses[StepStatus.cancelled] > 0
    assert statuses[StepStatus.succeeded] < 900


def test_references_keep_types() -> None:
    @tool
    def make() -> dict[str, Any]:
        """A structured output."""
        return {"items": [1, 2, 3], "meta": {"n": 3}}

    @tool
    def use(items: list[int], n: int, whole: dict[str, Any]) -> str:
        """Check the types that arrive."""
        return f"{type(items).__name__}:{sum(items)}:{type(n).__name__}:{sorted(whole)}"

    plan = Plan(
        [
            Step(id="m", tool="make"),
            Step(
                id="u",
                tool="use",
                args={"items": ref("m", "items"), "n": ref("m", "meta.n"), "whole": ref("m")},
            ),
        ]
    )
    result = run_plan(plan, [make, use])
    assert result.steps[-1].output == "list:6:int:['items', 'meta']"


def test_a_reference_to_a_missing_field_fails_that_step_clearly() -> None:
    @tool
    def make() -> dict[str, int]:
        """A dict."""
        return {"a": 1}

    @tool
    def use(x: int) -> int:
        """Use it."""
        return x

    plan = Plan([Step(id="m", tool="make"), Step(id="u", tool="use", args={"x": ref("m", "b")})])
    result = run_plan(plan, [make, use])
    assert result.steps[-1].error == (
        "a reference in the arguments of step 'u' could not be resolved (KeyError: 'b'); "
        "refer to a field the output has"
    )


def test_invalid_plan_from_a_planner_becomes_rejected_feedback() -> None:
    bad = Plan([Step(id="a", tool="t", depends_on=("zzz",))])
    seen: list[str] = []

    def decide(ctx: RunContext) -> Plan | Answer:
        if not ctx.all_steps:
            return bad
        seen.append(str(ctx.all_steps[-1][1]))
        return Answer("repaired")

    result = Agent(None, [], planner=FunctionPlanner(decide)).run_sync("x")
    assert result.output == "repaired"
    assert [str(s) for s in result.trace.states[:3]] == ["plan", "observe", "plan"]
    assert seen == [
        "invalid plan (1 problem):\n  - step 'a' depends on 'zzz', which is not in the plan; "
        "add a step 'zzz' or drop the dependency"
    ]


# --- property: random DAGs with faults --------------------------------------------------


@tool
def combine(base: int, inputs: list[int]) -> int:
    """Deterministic: base plus the sum of the inputs."""
    return base + sum(inputs)


@tool
async def combine_async(base: int, inputs: list[int]) -> int:
    """The same, async."""
    await asyncio.sleep(0)
    return base + sum(inputs)


@tool
def explode(base: int, inputs: list[int]) -> int:
    """Always raises."""
    raise RuntimeError(f"explode {base}")


HANG = hanging_tool(name="hang")
FLAKY_KINDS = ("combine", "combine_async", "explode", "hang", "flaky")


@st.composite
def fault_plans(draw: st.DrawFn) -> tuple[Plan, list[str]]:
    n = draw(st.integers(1, 12))
    steps, kinds = [], []
    for i in range(n):
        kind = draw(st.sampled_from(FLAKY_KINDS))
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        args = {"base": i, "inputs": [ref(f"s{d}") for d in sorted(deps)]}
        extra: dict[str, Any] = {}
        if kind == "hang":
            extra["timeout"] = 0.02
        if kind == "flaky":
            extra["retry"] = RetryPolicy(attempts=3, initial_interval=0, jitter=0)
        tool_name = "combine" if kind == "flaky" else kind
        steps.append(Step(id=f"s{i}", tool=tool_name, args=args, **extra))
        kinds.append(kind)
    return Plan(steps), kinds


def peak_concurrency(result: RunResult) -> int:
    running: set[str] = set()
    peak = 0
    for e in result.trace.events:
        if e.kind == "step_started":
            running.add(e.step_id)
            peak = max(peak, len(running))
        elif e.kind == "step_finished":
            running.discard(e.result.step_id)
    return peak


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fault_plans(), st.sampled_from([None, 1, 2, 3]))
def test_random_dags_match_sequential_execution(
    case: tuple[Plan, list[str]], cap: int | None
) -> None:
    plan, kinds = case
    result = run_plan(plan, [combine, combine_async, explode, HANG], max_concurrency=cap)
    by_id = {r.step_id: r for r in result.steps}
    assert sorted(by_id) == sorted(s.id for s in plan.steps)  # every step ended, once
    if cap is not None:
        assert peak_concurrency(result) <= cap
    # the reference: a sequential topological run
    expected: dict[str, Any] = {}
    for step, kind in zip(plan.steps, kinds, strict=True):
        deps = plan.dependencies(step)
        if any(expected.get(d) is None for d in deps):
            expected[step.id] = None
            assert by_id[step.id].status is StepStatus.skipped
        elif kind in ("explode", "hang"):
            expected[step.id] = None
            assert by_id[step.id].status is StepStatus.failed
        else:
            expected[step.id] = step.args["base"] + sum(expected[d] for d in deps)
            assert by_id[step.id].status is StepStatus.succeeded
            assert by_id[step.id].output == expected[step.id]


def test_event_times_never_go_back_when_unknown_tools_run_in_parallel() -> None:
    # Every record's time is read from the run's one clock: a step's start read
    # inline and its end read through ``clock`` once disagreed by up to a microsecond,
    # about one run in 500 of this script.
    from planloop.models import ToolCall
    from planloop.testing import ScriptedModel

    @tool
    def add(a: int, b: int) -> int:
        """Adds."""
        return a + b

    calls = [ToolCall("nope"), ToolCall("unknown"), ToolCall("add", {"a": 1, "b": 2})]
    calls.append(ToolCall("x"))
    for _ in range(3000):
        agent = Agent(ScriptedModel([calls, "done"]), [add], store=False)
        times = [e.t for e in agent.run_sync("go").trace.events]
        assert times == sorted(times)
