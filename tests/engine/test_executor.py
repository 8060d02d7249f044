"""The executor seam: where a step's call runs, and the context a sync tool sees."""

from __future__ import annotations

import asyncio
import contextvars
import multiprocessing
import os
import time
from collections.abc import Awaitable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from planloop import Plan, Step, StepStatus, Workflow, ref, tool
from planloop.engine.executor import LOCAL, Executor, LocalExecutor, call_tool
from planloop.engine.scheduler import ActOutcome, execute_plan
from planloop.engine.tooling import ToolLike
from planloop.testing import hanging_tool


def where_and_double(x: int) -> dict[str, int]:
    """Module level, so a process pool can pickle a call to it."""
    return {"pid": os.getpid(), "value": 2 * x}


def refuse(x: int) -> int:
    raise ValueError(f"no {x}")


async def add_one(value: int) -> int:
    return value + 1


class ProcessExecutor:
    """Sync calls go to a process pool, pickled there and back; async ones run here."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool
        self.remote: list[str] = []

    def submit(self, step_id: str, tool: ToolLike, kwargs: dict[str, Any]) -> Awaitable[Any]:
        if tool.is_async:
            return LOCAL.submit(step_id, tool, kwargs)
        self.remote.append(step_id)
        return asyncio.wrap_future(self.pool.submit(call_tool, tool, kwargs))

    def cancel(self, job: Awaitable[Any]) -> None:
        LOCAL.cancel(job)


class Recording(LocalExecutor):
    """The local executor, keeping what it was asked to start and to cancel."""

    def __init__(self) -> None:
        self.submitted: list[Awaitable[Any]] = []
        self.cancelled: list[Awaitable[Any]] = []

    def submit(self, step_id: str, tool: ToolLike, kwargs: dict[str, Any]) -> Awaitable[Any]:
        job = super().submit(step_id, tool, kwargs)
        self.submitted.append(job)
        return job

    def cancel(self, job: Awaitable[Any]) -> None:
        self.cancelled.append(job)
        super().cancel(job)


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    # A fresh interpreter, not a fork: everything a call needs reaches it pickled.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as processes:
        yield processes


def act(plan: Plan, executor: Executor, tools: dict[str, ToolLike] | None = None) -> ActOutcome:
    async def go() -> ActOutcome:
        start = time.perf_counter()
        return await execute_plan(
            plan,
            tools or {},
            act=1,
            clock=lambda: time.perf_counter() - start,
            record=lambda event: None,
            executor=executor,
        )

    return asyncio.run(go())


def test_the_local_executor_is_an_executor() -> None:
    assert isinstance(LOCAL, Executor)
    assert isinstance(ProcessExecutor(None), Executor)  # type: ignore[arg-type]


def test_a_plan_runs_through_an_executor_that_uses_other_processes(
    pool: ProcessPoolExecutor,
) -> None:
    plan = Plan(
        [
            Step(id="a", tool=where_and_double, args={"x": 1}),
            Step(id="b", tool=where_and_double, args={"x": 10}),
            Step(id="c", tool=add_one, args={"value": ref("a.value")}),
            Step(id="d", tool=where_and_double, args={"x": ref("c")}),
            Step(id="e", tool=refuse, args={"x": ref("b.value")}),
            Step(id="f", tool=add_one, args={"value": ref("e")}),
        ]
    )
    executor = ProcessExecutor(pool)
    out = act(plan, executor)
    by_id = {r.step_id: r for r in out.results}
    assert sorted(executor.remote) == ["a", "b", "d", "e"]
    assert {by_id[s].output["pid"] for s in "abd"}.isdisjoint({os.getpid()})
    assert [by_id[s].output["value"] for s in "abd"] == [2, 20, 6]
    assert by_id["c"].output == 3
    assert by_id["e"].status is StepStatus.failed
    assert by_id["e"].error == "ValueError: no 20"
    assert isinstance(out.errors["e"], ValueError)
    assert by_id["f"].status is StepStatus.skipped
    assert by_id["f"].error == "dependency 'e' failed"


@pytest.mark.parametrize("sync", [True, False])
def test_a_call_that_times_out_is_cancelled_by_its_executor(sync: bool) -> None:
    hang = hanging_tool(sync=sync)
    executor = Recording()
    try:
        out = act(Plan([Step(id="h", tool="hanging", timeout=0.05)]), executor, {"hanging": hang})
    finally:
        hang.release()
    [result] = out.results
    assert result.status is StepStatus.failed
    assert result.error == "TimeoutError: timed out after 0.05 s"
    assert executor.cancelled == executor.submitted and len(executor.submitted) == 1


@pytest.mark.parametrize("sync", [True, False])
def test_a_call_running_when_the_act_is_cancelled_is_cancelled_by_its_executor(
    sync: bool,
) -> None:
    hang = hanging_tool(sync=sync)
    executor = Recording()
    outcome = ActOutcome()
    steps = [Step(id=f"h{i}", tool="hanging") for i in range(2)]

    async def go() -> None:
        task = asyncio.create_task(
            execute_plan(
                Plan(steps),
                {"hanging": hang},
                act=1,
                clock=time.perf_counter,
                record=lambda event: None,
                outcome=outcome,
                executor=executor,
            )
        )
        while len(executor.submitted) < 2:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)  # the other worker's task takes its cancellation

    try:
        asyncio.run(go())
    finally:
        hang.release()
    assert sorted(r.step_id for r in outcome.results) == ["h0", "h1"]
    assert {r.status for r in outcome.results} == {StepStatus.cancelled}
    assert len(executor.cancelled) == 2
    assert {id(job) for job in executor.cancelled} == {id(job) for job in executor.submitted}


def test_no_queued_step_starts_after_the_act_is_cancelled() -> None:
    # A worker whose tool swallows its cancellation goes back to the queue; the
    # queued steps were ended "cancelled" with the act and must not run.
    ran: list[str] = []
    first_started, first_ended = asyncio.Event(), asyncio.Event()

    @tool
    async def stubborn() -> str:
        """Swallows one cancellation, then returns."""
        first_started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)
        first_ended.set()
        return "kept going"

    @tool
    async def record(name: str) -> str:
        """Notes that it ran."""
        ran.append(name)
        return name

    hang = hanging_tool(sync=True)
    tools: dict[str, ToolLike] = {"stubborn": stubborn, "record": record, "hanging": hang}
    steps = [Step(id="h", tool="hanging"), Step(id="s", tool="stubborn")] + [
        Step(id=f"q{i}", tool="record", args={"name": f"q{i}"}) for i in range(3)
    ]
    outcome = ActOutcome()

    async def go() -> None:
        task = asyncio.create_task(
            execute_plan(
                Plan(steps),
                tools,
                act=1,
                clock=time.perf_counter,
                record=lambda event: None,
                outcome=outcome,
                max_concurrency=2,
            )
        )
        await first_started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(first_ended.wait(), 10)
        await asyncio.sleep(0.05)  # the stubborn step's worker goes back to the queue

    try:
        asyncio.run(go())
    finally:
        hang.release()
    assert ran == []
    queued = {r.step_id: r.status for r in outcome.results if r.step_id.startswith("q")}
    assert queued == dict.fromkeys(["q0", "q1", "q2"], StepStatus.cancelled)


LABEL: contextvars.ContextVar[str] = contextvars.ContextVar("LABEL", default="unset")


def context_workflow(seen: list[str]) -> Workflow:
    def read_and_set() -> str:
        seen.append(LABEL.get())
        LABEL.set("set by a tool")
        return "done"

    def read_again(after: str) -> str:
        seen.append(LABEL.get())
        return after

    wf = Workflow("context", store=False)
    first = wf.step(read_and_set, id="first")
    wf.step(read_again, id="second", after=first)
    return wf


def test_a_sync_tool_runs_in_a_copy_of_the_callers_context_with_run_sync() -> None:
    seen: list[str] = []
    token = LABEL.set("from the caller")
    try:
        result = context_workflow(seen).run_sync()
        assert result.output == "done"
        assert seen == ["from the caller", "from the caller"]
        assert LABEL.get() == "from the caller"
    finally:
        LABEL.reset(token)


def test_a_sync_tool_runs_in_a_copy_of_the_callers_context_with_run() -> None:
    seen: list[str] = []

    async def caller() -> str:
        LABEL.set("from the caller")
        await context_workflow(seen).run()
        return LABEL.get()

    assert asyncio.run(caller()) == "from the caller"
    assert seen == ["from the caller", "from the caller"]


@pytest.mark.parametrize("sync", [True, False])
def test_a_failure_while_recording_a_steps_end_ends_the_act_with_it(sync: bool) -> None:
    failures = [RuntimeError("the store is gone")]

    def record(event: Any) -> None:
        if event.kind == "step_finished" and failures:
            raise failures.pop()

    hang = hanging_tool(sync=sync)
    steps = [Step(id="quick", tool=add_one, args={"value": 1}), Step(id="h", tool="hanging")]

    async def go() -> None:
        start = time.perf_counter()
        act = execute_plan(
            Plan(steps),
            {"hanging": hang},
            act=1,
            clock=lambda: time.perf_counter() - start,
            record=record,
        )
        # Another worker holds the hanging step: the act ends without waiting for it
        # (were it to wait, the timeout would end it with a TimeoutError instead).
        await asyncio.wait_for(act, 5)

    try:
        with pytest.raises(RuntimeError, match="the store is gone"):
            asyncio.run(go())
    finally:
        hang.release()
