"""The shortcuts the scheduler takes for speed give the same answers as the slow way."""

from __future__ import annotations

import asyncio
import gc
import inspect
import itertools
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest

import planloop
from planloop import Plan, RetryPolicy, Step, StepStatus, ref
from planloop.engine import _threads
from planloop.engine.functions import FunctionTool
from planloop.engine.trace import Trace

# --- records built without validation equal validated ones ---------------------


def _mixed_workflow() -> planloop.Workflow:
    calls = {"flaky": 0}

    def ok(x: int = 1) -> int:
        return x

    async def ok_async(x: int) -> int:
        return x + 1

    def boom() -> None:
        raise ValueError("boom")

    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 2:
            raise ConnectionError("again")
        return "ok"

    wf = planloop.Workflow("mixed")
    a = wf.step(ok, x=2, id="a")
    wf.step(ok_async, x=a, id="b")
    bad = wf.step(boom, id="bad")
    wf.step(ok, x=bad, id="after_bad")
    wf.step(flaky, id="flaky", retry=RetryPolicy(attempts=3, initial_interval=0.001, jitter=False))
    return wf


def test_records_built_by_the_engine_equal_the_same_records_validated() -> None:
    wf = _mixed_workflow()
    with pytest.raises(planloop.StepFailed) as info:
        wf.run_sync()
    result = info.value.result
    assert result is not None
    records: list[Any] = list(result.trace.events)
    records += result.steps
    records += [action for action, _ in result.intermediate_steps]
    kinds = {type(r).__name__ for r in records}
    assert {"StepStarted", "StepFinished", "StepResult", "Action"} <= kinds
    for record in records:
        cls = type(record)
        assert set(record.__dict__) == set(cls.model_fields), cls.__name__
        validated = cls.model_validate(record.model_dump())
        assert validated == record
        assert cls.model_validate_json(record.model_dump_json()) == cls.model_validate_json(
            validated.model_dump_json()
        )
    statuses = {r.step_id: r.status for r in result.steps}
    assert statuses == {
        "a": StepStatus.succeeded,
        "b": StepStatus.succeeded,
        "bad": StepStatus.failed,
        "after_bad": StepStatus.skipped,
        "flaky": StepStatus.succeeded,
    }
    assert Trace.from_json(result.trace.to_json()) == result.trace


def _assert_like_validated(record: Any) -> None:
    cls = type(record)
    assert set(record.__dict__) == set(cls.model_fields), cls.__name__
    validated = cls.model_validate(record.model_dump())
    assert validated == record, cls.__name__
    assert record.__pydantic_fields_set__ == validated.__pydantic_fields_set__, cls.__name__
    assert cls.model_validate_json(record.model_dump_json()) == cls.model_validate_json(
        validated.model_dump_json()
    )


@pytest.mark.parametrize("how", ["finished", "stopped"])
def test_an_agent_runs_records_equal_the_same_records_validated(how: str) -> None:
    from planloop.models import ToolCall
    from planloop.testing import ScriptedModel

    async def noop(x: int) -> int:
        return x

    script: list[Any] = [ToolCall("noop", {"x": 1}), [ToolCall("noop", {"x": 2})] * 2, "done"]
    agent = planloop.Agent(
        ScriptedModel(script),
        [planloop.Tool(noop, name="noop")],
        max_iterations=1 if how == "stopped" else None,
        name="records",
        store=False,
    )
    result = agent.run_sync({"q": [1, 2]})
    trace = result.trace
    kinds = {type(e).__name__ for e in trace.events}
    assert {"RunStarted", "RunEnded", "Transitioned", "ModelCalled", "StepFinished"} <= kinds
    for record in [*trace.events, *result.steps]:
        _assert_like_validated(record)
    for action, _ in result.intermediate_steps:
        _assert_like_validated(action)
    fresh = Trace(run_id=trace.run_id, events=list(trace.events))
    assert fresh == trace
    assert trace.__pydantic_fields_set__ == {"run_id"}
    dumped = result.model_dump()
    again = planloop.RunResult.model_validate(dumped)
    assert again == result
    assert again.__pydantic_fields_set__ == result.__pydantic_fields_set__
    assert again.model_dump_json() == result.model_dump_json()


def test_a_new_run_id_is_a_uuid4_hex() -> None:
    import uuid

    answer = planloop.FunctionPlanner(lambda ctx: planloop.Answer(1))
    agent = planloop.Agent(None, planner=answer, store=False)
    ids = {agent.run_sync("x").run_id for _ in range(5)}
    assert len(ids) == 5
    for run_id in ids:
        parsed = uuid.UUID(hex=run_id)
        assert (parsed.hex, parsed.version, parsed.variant) == (run_id, 4, uuid.RFC_4122)


@pytest.mark.parametrize(
    "output",
    ["done", "", {"a": [1, 2.5, None]}, 3, float("nan"), object(), type("S", (str,), {})("x")],
)
def test_the_direct_event_payloads_are_pydantics_dump(output: Any) -> None:
    from planloop.engine.events import Acted, Answered, Continued, ReturnedDirect
    from planloop.engine.recorder import payload_of

    for event in (Answered(output=output), ReturnedDirect(output=output)):
        direct = payload_of(event)
        dumped = event.model_dump(mode="json", fallback=repr)
        assert repr(direct) == repr(dumped)
        assert [type(v) for v in direct.values()] == [type(v) for v in dumped.values()]
    for status in StepStatus:
        acted = Acted(results=(planloop.StepResult(step_id="a", status=status),))
        assert payload_of(acted) == {"steps": 1, status.value: 1}
        assert all(type(k) is str for k in payload_of(acted))
    assert payload_of(Continued()) == Continued().model_dump(mode="json")


# --- a finished run is freed without the cyclic garbage collector ---------------


@pytest.mark.parametrize("sync", [True, False])
def test_a_runs_trace_is_freed_by_reference_counting(sync: bool) -> None:
    def step(x: int) -> int:
        return x

    async def step_async(x: int) -> int:
        return x

    wf = planloop.Workflow("freed")
    prev = wf.step(step if sync else step_async, x=0, id="s0")
    for i in range(1, 20):
        prev = wf.step(step if sync else step_async, x=prev, id=f"s{i}")
    gc.collect()
    gc.disable()
    try:
        result = wf.run_sync()
        assert result.output == 0
        trace = weakref.ref(result.trace)
        del result
        assert trace() is None, "the trace is kept alive by a reference cycle"
    finally:
        gc.enable()


# --- a plain callable's keyword check says what inspect says --------------------


def _f1(a: Any, b: Any = 1) -> None: ...
def _f2(a: Any, /, b: Any) -> None: ...
def _f3(a: Any = 1, /, b: Any = 2) -> None: ...
def _f4(*, k: Any, m: Any = 2) -> None: ...
def _f5(a: Any, **kw: Any) -> None: ...
def _f6(*args: Any, **kw: Any) -> None: ...
def _f7(a: Any, *args: Any, k: Any) -> None: ...
def _f8(a: Any = 0, /, **kw: Any) -> None: ...
def _f9() -> None: ...


@pytest.mark.parametrize("fn", [_f1, _f2, _f3, _f4, _f5, _f6, _f7, _f8, _f9, lambda x, y=1: x])
def test_a_function_tool_accepts_exactly_the_names_inspect_binds(fn: Callable[..., Any]) -> None:
    names = ["a", "b", "k", "m", "x", "y", "args", "kw"]
    tool = FunctionTool(fn)
    for size in range(4):
        for combo in itertools.combinations(names, size):
            given = frozenset(combo)
            try:
                inspect.signature(fn).bind(**dict.fromkeys(given))
                binds = True
            except TypeError:
                binds = False
            for _ in range(2):  # a second check of the same names answers the same
                if binds:
                    tool.validate_args(dict.fromkeys(given))
                else:
                    with pytest.raises(planloop.ToolArgumentsError):
                        tool.validate_args(dict.fromkeys(given))


def test_wrapped_functions_are_checked_against_their_declared_signature() -> None:
    import functools

    def inner(a: int) -> int:
        return a

    @functools.wraps(inner)
    def outer(*args: Any, **kwargs: Any) -> int:
        return inner(*args, **kwargs)

    with pytest.raises(planloop.ToolArgumentsError, match="missing a required argument: 'a'"):
        FunctionTool(outer).validate_args({})


# --- the thread pool --------------------------------------------------------------


def test_results_of_steps_that_end_together_all_arrive() -> None:
    barrier = threading.Barrier(40)

    def together(i: int) -> int:
        barrier.wait(timeout=10)
        return i

    wf = planloop.Workflow("together")
    for i in range(40):
        wf.step(together, i=i, id=f"s{i}")
    result = wf.run_sync()
    assert result.output == {f"s{i}": i for i in range(40)}


def test_idle_workers_leave_and_new_ones_start(monkeypatch: pytest.MonkeyPatch) -> None:
    # Idle long enough that calls in a row find the worker warm on a loaded machine.
    monkeypatch.setattr(_threads, "_IDLE_SECONDS", 0.5)
    monkeypatch.setattr(_threads, "_POOL", _threads._Pool())  # workers of this test only

    def me() -> threading.Thread:
        return threading.current_thread()

    async def go() -> tuple[list[threading.Thread], threading.Thread]:
        first = []
        for _ in range(3):
            first.append(await _threads.run_in_thread(me))
        first[0].join(timeout=10)  # the idle worker times out and leaves
        return first, await _threads.run_in_thread(me)

    first, last = asyncio.run(go())
    assert len({t.ident for t in first}) == 1  # one warm worker served the calls in a row
    assert not first[0].is_alive()
    assert last is not first[0]
    last.join(timeout=5)  # and the new worker leaves in its turn
    assert not last.is_alive()


def test_jobs_submitted_together_each_get_a_thread_of_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The workers woken for a batch wake the next ones: every job still runs at
    # once (none waits for another to end), each on its own thread.
    pool = _threads._Pool()
    monkeypatch.setattr(_threads, "_POOL", pool)
    barrier = threading.Barrier(30)

    def together() -> int:
        barrier.wait(timeout=10)
        return threading.get_ident()

    async def go() -> list[int]:
        return list(await asyncio.gather(*(_threads.run_in_thread(together) for _ in range(30))))

    idents = asyncio.run(go())
    assert len(set(idents)) == 30
    assert not pool._jobs
    assert pool._waking == 0


def test_jobs_still_run_when_no_more_threads_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = _threads._Pool()
    monkeypatch.setattr(_threads, "_POOL", pool)
    started = threading.Thread.start
    allowed = [1]

    def start(self: threading.Thread) -> None:
        if not allowed[0]:
            raise RuntimeError("can't start new thread")
        allowed[0] -= 1
        started(self)

    monkeypatch.setattr(threading.Thread, "start", start)

    async def go() -> list[int]:
        # One thread starts; the one it would wake for the rest cannot: it runs them all.
        return list(
            await asyncio.gather(*(_threads.run_in_thread(lambda i=i: i) for i in range(5)))
        )

    assert asyncio.run(go()) == list(range(5))
    assert not pool._jobs

    async def fresh() -> None:
        _threads.run_in_thread(lambda: None)

    empty = _threads._Pool()  # no idle worker: a submit needs a new thread, which fails
    monkeypatch.setattr(_threads, "_POOL", empty)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        asyncio.run(fresh())
    assert not empty._jobs  # the job that found no thread is not left behind
    assert empty._waking == 0


def test_results_posted_while_others_are_handed_out_wake_the_loop_no_more() -> None:
    async def go() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        wakes = [0]

        class Counting:
            def call_soon_threadsafe(self, fn: Callable[[], None]) -> None:
                wakes[0] += 1
                loop.call_soon_threadsafe(fn)

        inbox = _threads._Inbox(Counting())  # type: ignore[arg-type]
        got: list[int] = []
        done = loop.create_future()

        def deliver(value: Any, exc: BaseException | None) -> None:
            got.append(value)
            if value == 0:  # three more arrive from a thread while this drain runs
                worker = threading.Thread(
                    target=lambda: [inbox.post(deliver, v, None) for v in (1, 2, 3)]
                )
                worker.start()
                worker.join()  # lets go of the interpreter: the posts happen now
            if len(got) == 4:
                done.set_result(None)

        inbox.post(deliver, 0, None)
        await done
        return got, wakes[0]

    got, wakes = asyncio.run(go())
    assert got == [0, 1, 2, 3]
    assert wakes == 1


def test_a_result_that_arrives_after_its_loop_closed_is_dropped() -> None:
    release = threading.Event()

    def slow() -> int:
        release.wait(timeout=10)
        return 1

    async def go() -> None:
        fut = _threads.run_in_thread(slow)
        await asyncio.sleep(0.01)
        fut.cancel()

    asyncio.run(go())
    release.set()  # the worker posts to a closed loop; nothing raises anywhere
    time.sleep(0.05)


# --- the direct (task-free) path for sync steps keeps every behaviour ------------


def test_sync_steps_keep_their_failure_texts_and_skips() -> None:
    def needs(a: int) -> int:
        return a

    plan = Plan(
        [
            Step(id="missing", tool="nope"),
            Step(id="badargs", tool=needs, args={"b": 1}),
            Step(id="ok", tool=needs, args={"a": 1}),
            Step(id="badref", tool=needs, args={"a": ref("ok", "field")}),
            Step(id="after", tool=needs, args={"a": ref("badref")}),
        ]
    )
    planner = planloop.FunctionPlanner(
        lambda ctx: plan if not ctx.all_steps else planloop.Answer("done")
    )
    agent = planloop.Agent(None, [], planner=planner, on_tool_error="observe")
    result = agent.run_sync("go")
    by_id = {r.step_id: r for r in result.steps}
    assert by_id["missing"].error == "nope is not a valid tool, try one of []."
    assert by_id["badargs"].error_type == "ToolArgumentsError"
    assert by_id["ok"].status is StepStatus.succeeded
    assert by_id["badref"].error_type == "InvalidReference"
    assert by_id["after"].status is StepStatus.skipped
    assert by_id["after"].error == "dependency 'badref' failed"


# --- a trace records each plan as pydantic dumps it ---------------------------------


def test_a_trace_records_each_plan_as_pydantics_dump() -> None:
    wf = planloop.Workflow("dumped", store=False)
    first = wf.step(lambda: 1, id="first")
    wf.step(lambda n: n + 1, id="second", n=first)
    result = wf.run_sync()
    (planned,) = [t for t in result.trace.transitions if t.event == "Planned"]
    assert planned.payload == {"plan": wf.plan.model_dump(mode="json", fallback=repr)}


# --- a result's (action, observation) pairs are made when first read -------------


def test_a_results_pairs_are_made_when_read_and_behave_as_a_field() -> None:
    import copy
    import pickle

    from planloop.engine.result import RunResult

    wf = _mixed_workflow()
    wf.step(lambda: 1, id="alone")  # a workflow run that finishes: nothing read its pairs
    with pytest.raises(planloop.StepFailed) as info:
        wf.run_sync()
    lazy = info.value.result
    assert lazy is not None
    assert lazy._lazy[1]._value is None  # not made yet
    eager = RunResult.model_validate(lazy.model_dump())
    assert lazy._lazy[1]._value is not None  # made by the dump
    pairs = lazy.intermediate_steps
    assert pairs is lazy.intermediate_steps  # made once
    assert [a.step_id for a, _ in pairs] == ["a", "b", "bad", "after_bad", "flaky", "alone"]
    assert {a.step_id: obs for a, obs in pairs} == {
        s.step_id: s.output if s.status is StepStatus.succeeded else s.observation
        for s in lazy.steps
    }
    assert eager == lazy and eager.intermediate_steps == pairs
    again = planloop.Workflow("pairs", store=False)
    first = again.step(lambda: 1, id="first")
    again.step(lambda x: x + 1, x=first, id="second")
    unread = again.run_sync()
    assert unread._lazy[1]._value is None
    for made in (
        pickle.loads(pickle.dumps(unread)),
        copy.deepcopy(unread),
        RunResult.model_validate_json(unread.model_dump_json()),
    ):
        assert made.intermediate_steps == unread.intermediate_steps
    assert list(unread.model_dump()) == [
        "run_id",
        "output",
        "status",
        "stop_reason",
        "iterations",
        "steps",
        "pending",
        "trace",
        "intermediate_steps",
    ]
