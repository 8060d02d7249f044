"""What every store means, whatever its database: each test runs against every backend.

The backends are the harnesses of ``_store_harness.HARNESSES`` (SQLite, and an
in-memory reference backend); runs through the engine on every backend are in
``test_store_conformance_runs.py``; what only SQLite does (its file, its
layout, its locking between processes) is tested in ``test_store.py``.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from planloop import Agent, Trace
from planloop.engine import Checkpoint, Redactor, RunRecord, Store, StoreError
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from tests.engine._store_harness import HARNESSES, T0, Harness, record, sample


@pytest.fixture(params=sorted(HARNESSES))
def db(request: pytest.FixtureRequest) -> Harness:
    """One database of the backend under test."""
    return HARNESSES[request.param](request)


# -- round trip -------------------------------------------------------------


def test_round_trip_of_a_real_run(db: Harness) -> None:
    trace = sample()
    assert len(trace.events) > 8
    with db.open() as store:
        assert isinstance(store, Store)
        record(store, trace.run_id, trace)
        again = store.load_trace(trace.run_id)
    assert again == trace
    assert again.to_json() == trace.to_json()
    with db.open() as store:  # another store on the same database reads the same
        assert store.load_trace(trace.run_id) == trace
        store.create_run("batch-run", name="b", started_at=T0)
        store.append_events("batch-run", trace.events[:4], first_seq=0)
        store.append_events("batch-run", trace.events[4:], first_seq=4)
        assert store.load_trace("batch-run").events == trace.events


def test_empty_run_loads_an_empty_trace_and_no_checkpoint(db: Harness) -> None:
    with db.open() as store:
        store.create_run("r", name="n", started_at=T0)
        assert store.load_trace("r") == Trace(run_id="r")
        assert store.load_checkpoint("r") is None
        store.append_events("r", [], first_seq=0)
        assert store.load_trace("r").events == []


# -- checkpoints ------------------------------------------------------------


def test_latest_checkpoint_wins(db: Harness) -> None:
    with db.open() as store:
        store.create_run("r", name="n", started_at=T0)
        store.create_run("other", name="n", started_at=T0)
        store.save_checkpoint("r", 1, {"state": "plan"})
        store.save_checkpoint("r", 5, {"state": "act", "plan": [{"id": "s1"}]})
        store.save_checkpoint("r", 3, {"state": "observe"})
        store.save_checkpoint("other", 9, {"state": "finish"})
        store.save_checkpoint("r", 5, {"state": "act", "plan": [{"id": "s2"}]})
    with db.open() as store:
        assert store.load_checkpoint("r") == Checkpoint(
            run_id="r", seq=5, state={"state": "act", "plan": [{"id": "s2"}]}
        )
        other = store.load_checkpoint("other")
        assert other is not None
        assert other.seq == 9
    assert db.counts() == {"r": (0, 3), "other": (0, 1)}


def test_checkpoints_stay_out_of_traces(db: Harness) -> None:
    events = sample().events
    with db.open() as store:
        store.create_run("r", name="n", started_at=T0)
        store.save_checkpoint("r", 0, {"state": "start"})  # before any event
        store.save("r", events[:3], first_seq=0, checkpoint={"state": "plan"})
        store.save("r", [], first_seq=3, checkpoint={"state": "act"})  # no new event
        store.save("r", events[3:], first_seq=3)
        assert store.load_trace("r").events == events
        assert store.load_checkpoint("r") == Checkpoint(run_id="r", seq=3, state={"state": "act"})
        with pytest.raises(StoreError, match=r"'r'.*seq 3.*append-only"):
            store.append_events("r", [events[3]], first_seq=3)
    assert db.counts() == {"r": (len(events), 2)}


def test_a_save_over_rows_already_there_replaces_the_checkpoint_or_writes_nothing(
    db: Harness,
) -> None:
    events = sample().events
    with db.open() as store:
        store.create_run("r", name="n", started_at=T0)
        store.save_checkpoint("r", 3, {"state": "early"})  # where the save's will go
        store.save("r", events[:3], first_seq=0, checkpoint={"state": "plan"})
        assert store.load_checkpoint("r") == Checkpoint(run_id="r", seq=3, state={"state": "plan"})
        # An event already stored: the whole save is refused, its checkpoint and child too.
        with pytest.raises(StoreError) as err:
            store.save(
                "r", events[2:5], first_seq=2, checkpoint={"state": "act"}, children={"s": sample()}
            )
        assert str(err.value) == (
            f"run 'r' in {store.backend.location}: an event in seqs 2..4 is already stored;"
            " events are append-only (nothing was written)"
        )
        assert store.load_checkpoint("r") == Checkpoint(run_id="r", seq=3, state={"state": "plan"})
        assert store.load_trace("r") == Trace(run_id="r", events=events[:3])
        # A batch larger than one INSERT takes: the same rows, in order.
        many = [events[i % len(events)] for i in range(150)]
        store.create_run("big", name="n", started_at=T0)
        store.save("big", many, first_seq=0, checkpoint={"state": "act"})
        assert store.load_trace("big").events == many
        assert store.load_checkpoint("big") == Checkpoint(
            run_id="big", seq=150, state={"state": "act"}
        )
    assert db.counts() == {"r": (3, 1), "big": (150, 1)}


def test_checkpoint_state_becomes_json(db: Harness) -> None:
    with db.open() as store:
        store.create_run("r", name="n", started_at=T0)
        store.save_checkpoint("r", 1, {"when": T0, "pair": (1, 2), "obj": object()})
        cp = store.load_checkpoint("r")
    assert cp is not None
    assert cp.state["when"] == T0.isoformat()
    assert cp.state["pair"] == [1, 2]
    assert cp.state["obj"].startswith("<object object")


@pytest.mark.parametrize("seq", [-1, 2**32])
def test_numbers_out_of_range_are_refused_before_anything_is_written(db: Harness, seq: int) -> None:
    events = sample().events[:2]
    with db.open() as store:
        store.create_run("r", name="n", started_at=T0)
        with pytest.raises(ValueError, match=r"from 0 to 2\*\*32 - 1|must be >= 0"):
            store.save("r", events, first_seq=seq)
        with pytest.raises(ValueError, match=r"from 0 to 2\*\*32 - 1"):
            store.save_checkpoint("r", seq, {"state": "plan"})
        with pytest.raises(ValueError, match=r"from 0 to 2\*\*32 - 1"):
            store.save("r", events, first_seq=2**32 - 1)  # its last event would be 2**32
    assert db.counts() == {}


# -- runs -------------------------------------------------------------------


def test_unknown_run_is_a_clear_error(db: Harness) -> None:
    with db.open() as store:
        for call in (
            lambda: store.get_run("nope"),
            lambda: store.load_trace("nope"),
            lambda: store.load_checkpoint("nope"),
            lambda: store.save_checkpoint("nope", 1, {}),
            lambda: store.append_events("nope", sample().events[:1], first_seq=0),
            lambda: store.save("nope", [], first_seq=0),
            lambda: store.save("nope", [], first_seq=0, children={"s": Trace(run_id="c")}),
            lambda: store.finish_run(
                "nope", status="finished", stop_reason=None, iterations=0, ended_at=T0
            ),
            lambda: store.reopen_run("nope"),
        ):
            with pytest.raises(StoreError) as err:
                call()
            assert str(err.value) == (
                f"no run 'nope' in the store {store.backend.location};"
                " `planloop runs` lists the stored runs"
            )


def test_finish_run_and_list_runs_newest_first(db: Harness) -> None:
    with db.open() as store:
        store.create_run("middle", name="m", started_at=T0 + timedelta(minutes=1))
        store.create_run(
            "newest",
            name="n",
            started_at=T0 + timedelta(minutes=2),
            definition="agents.py:bot",
            definition_hash="abc123",
        )
        store.create_run("oldest", name="o", started_at=T0)
        store.create_run("oldest-too", name="o", started_at=T0)  # same start: stored later
        with pytest.raises(StoreError) as err:
            store.create_run("oldest", name="again", started_at=T0)
        assert str(err.value) == (
            f"run 'oldest' already exists in {store.backend.location}; run ids must be unique:"
            " pass another run_id (or none, for a fresh one), or resume that run"
        )
        store.finish_run(
            "newest",
            status="stopped",
            stop_reason="max_iterations",
            iterations=15,
            ended_at=T0 + timedelta(minutes=2, seconds=30),
        )
    with db.open() as store:
        runs = store.list_runs()
        assert [r.run_id for r in runs] == ["newest", "middle", "oldest-too", "oldest"]
        assert [r.run_id for r in store.list_runs(limit=2)] == ["newest", "middle"]
        newest = store.get_run("newest")
        assert newest == RunRecord(
            run_id="newest",
            name="n",
            status="stopped",
            stop_reason="max_iterations",
            iterations=15,
            started_at=T0 + timedelta(minutes=2),
            ended_at=T0 + timedelta(minutes=2, seconds=30),
            definition="agents.py:bot",
            definition_hash="abc123",
        )
        assert newest.duration == 30.0
        assert runs[0] == newest
        middle = store.get_run("middle")
        assert (middle.status, middle.ended_at, middle.duration) == ("running", None, None)
        assert middle.definition is None


def test_a_reopened_run_is_running_again_and_keeps_how_far_it_got(db: Harness) -> None:
    with db.open() as store:
        store.create_run("r", name="n", started_at=T0)
        ended = T0 + timedelta(seconds=5)
        store.finish_run("r", status="paused", stop_reason=None, iterations=3, ended_at=ended)
        assert (store.get_run("r").status, store.get_run("r").ended_at) == ("paused", ended)
        store.reopen_run("r")
        run = store.get_run("r")
    assert (run.status, run.ended_at, run.iterations, run.stop_reason) == ("running", None, 3, None)


# -- append-only ------------------------------------------------------------


def test_events_are_append_only(db: Harness) -> None:
    events = sample().events
    with db.open() as store:
        store.create_run("r", name="n", started_at=T0)
        store.append_events("r", events[:3], first_seq=0)
        with pytest.raises(StoreError, match=r"'r'.*seq 2.*append-only"):
            store.append_events("r", [events[3]], first_seq=2)
        # A batch that overlaps is refused as a whole: nothing of it is written.
        with pytest.raises(StoreError, match="append-only"):
            store.append_events("r", events[1:5], first_seq=1)
        assert db.counts() == {"r": (3, 0)}
        store.append_events("r", events[3:], first_seq=3)
        assert store.load_trace("r").events == events
    for name in ("update", "delete", "delete_events", "update_event", "delete_run"):
        assert not hasattr(store, name)
        assert not hasattr(store.backend, name)


def test_of_two_stores_writing_the_same_events_one_wins(db: Harness) -> None:
    events = sample().events
    stores = [db.open() for _ in range(4)]
    stores[0].create_run("r", name="n", started_at=T0)
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def write(store: Store, n: int) -> None:
        barrier.wait()
        try:
            store.save("r", events[:4], first_seq=0, checkpoint={"writer": n})
            outcomes.append(f"wrote {n}")
        except StoreError as exc:
            outcomes.append(str(exc).split(": ", 1)[1])

    threads = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [o for o in outcomes if o.startswith("wrote")]
    assert len(won) == 1
    assert set(outcomes) - set(won) == {
        "an event in seqs 0..3 is already stored; events are append-only (nothing was written)"
    }
    checkpoint = stores[1].load_checkpoint("r")
    assert checkpoint is not None and f"wrote {checkpoint.state['writer']}" == won[0]
    assert stores[2].load_trace("r").events == events[:4]
    for store in stores:
        store.close()


def test_of_two_stores_creating_the_same_run_one_wins(db: Harness) -> None:
    stores = [db.open() for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    created: list[int] = []

    def create(store: Store, n: int) -> None:
        barrier.wait()
        try:
            store.create_run("r", name=f"by {n}", started_at=T0)
            created.append(n)
        except StoreError:
            pass

    threads = [threading.Thread(target=create, args=(s, n)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(created) == 1
    assert stores[0].get_run("r").name == f"by {created[0]}"
    for store in stores:
        store.close()


# -- child traces -----------------------------------------------------------


def test_child_traces_round_trip_and_are_replaced_by_step_id(db: Harness) -> None:
    trace, first, second = sample(), sample(), sample()
    with db.open() as store:
        record(store, "r", trace)
        store.save("r", [], first_seq=len(trace.events), children={"b": first, "a": first})
        store.save("r", [], first_seq=len(trace.events), children={"b": second})
        loaded = store.load_trace("r")
    assert loaded.children == {"a": first, "b": second}
    assert list(loaded.children) == ["a", "b"]  # in the order they were (last) stored
    assert loaded.events == trace.events


def test_a_run_with_only_child_traces_loads_them(db: Harness) -> None:
    child = sample()
    with db.open() as store:
        store.create_run("r", name="n", started_at=T0)
        store.save("r", [], first_seq=0, children={"step_1": child})
        assert store.load_trace("r") == Trace(run_id="r", children={"step_1": child})


# -- corrupt rows -----------------------------------------------------------


@pytest.mark.parametrize("garbage", ["[1, 2]", '{"state": "pl', "\x00\x01"])
def test_a_corrupt_checkpoint_names_run_and_seq_and_the_trace_stays_readable(
    db: Harness, garbage: str
) -> None:
    trace = sample()
    seq = len(trace.events)
    with db.open() as store:
        for run_id in ("broken", "fine"):
            store.create_run(run_id, name="n", started_at=T0)
            store.save(run_id, trace.events, first_seq=0, checkpoint={"state": "act"})
    db.set_checkpoint("broken", seq, garbage)
    with db.open() as store:
        with pytest.raises(StoreError) as err:
            store.load_checkpoint("broken")
        assert str(err.value) == (
            f"run 'broken' in {store.backend.location}: the checkpoint at seq {seq} is corrupt"
            " (not a JSON object)"
        )
        assert store.load_trace("broken").events == trace.events
        assert store.load_checkpoint("fine") == Checkpoint(
            run_id="fine", seq=seq, state={"state": "act"}
        )


@pytest.mark.parametrize(
    ("garbage", "why"),
    [
        ('{"kind": "transitioned", "t": 0.1, "sou', "at (top level): Invalid JSON: EOF"),
        ('{"kind": "exploded", "t": 1}', "at (top level): Input tag 'exploded' found"),
        ("\x00\x01", "at (top level): Invalid JSON: expected value"),
    ],
)
def test_a_corrupt_event_names_run_and_seq_and_other_runs_stay_readable(
    db: Harness, garbage: str, why: str
) -> None:
    trace = sample()
    with db.open() as store:
        record(store, "broken", trace)
        record(store, "fine", trace)
    db.set_event("broken", 4, garbage)
    with db.open() as store:
        with pytest.raises(StoreError) as err:
            store.load_trace("broken")
        assert str(err.value).startswith(
            f"run 'broken' in {store.backend.location}: event seq 4 is corrupt and cannot be"
            f" read: {why}"
        )
        assert store.load_trace("fine").events == trace.events
        assert store.get_run("broken").status == "finished"


def test_a_missing_event_is_reported(db: Harness) -> None:
    with db.open() as store:
        record(store, "r", sample())
    db.drop_event("r", 2)
    with db.open() as store, pytest.raises(StoreError) as err:
        store.load_trace("r")
    assert str(err.value) == (
        f"run 'r' in {store.backend.location}: event 2 is missing (the next stored event is"
        " number 3); the stored trace is incomplete"
    )


def test_a_corrupt_child_trace_names_the_step_and_other_runs_stay_readable(db: Harness) -> None:
    trace = sample()
    with db.open() as store:
        for run_id in ("broken", "fine"):
            record(store, run_id, trace)
            store.save(run_id, [], first_seq=len(trace.events), children={"step_1": trace})
    db.set_child("broken", "step_1", '{"run_id": 3')
    with db.open() as store:
        with pytest.raises(StoreError) as err:
            store.load_trace("broken")
        assert str(err.value).startswith(
            f"run 'broken' in {store.backend.location}: the trace of the sub-agent run of step"
            " 'step_1' is corrupt and cannot be read: "
        )
        assert store.load_trace("fine").children == {"step_1": trace}


# -- secrets ----------------------------------------------------------------


def fetch(url: str, api_key: str) -> str:
    """Fetch a page with a key."""
    return f"fetched {url}; the admin password is hunter2"


def secret_run() -> Trace:
    model = ScriptedModel(
        [ToolCall("fetch", {"url": "https://x.test", "api_key": "sk-SECRET123"}), "done"]
    )
    trace = Agent(model, [fetch], store=False).run_sync("get it").trace
    text = trace.to_json(redact=False)
    assert "sk-SECRET123" in text
    assert "hunter2" in text  # the tool's output says it: there is something to redact
    return trace


def test_secrets_come_back_redacted_from_events_checkpoints_and_children(db: Harness) -> None:
    trace = secret_run()
    store = db.open(redactor=Redactor())
    store.redactor.register("hunter2")
    record(store, trace.run_id, trace)
    store.save(
        trace.run_id,
        [],
        first_seq=len(trace.events),
        checkpoint={"headers": {"Authorization": "Bearer sk-SECRET123"}, "note": "pw=hunter2"},
        children={"step_1": trace},
    )
    loaded = store.load_trace(trace.run_id)
    started = [e for e in loaded.events if e.kind == "step_started"]
    assert started[0].args == {"url": "https://x.test", "api_key": "[redacted]"}
    finished = loaded.step_results[0]
    assert finished.output == "fetched https://x.test; the admin password is [redacted]"
    cp = store.load_checkpoint(trace.run_id)
    assert cp is not None
    assert cp.state == {"headers": {"Authorization": "[redacted]"}, "note": "pw=[redacted]"}
    child = loaded.children["step_1"].to_json()
    assert "sk-SECRET123" not in child and "hunter2" not in child
    assert child == loaded.model_copy(update={"children": {}}).to_json()
    store.close()


def test_a_store_redacts_with_the_redactor_it_is_given_now(db: Harness) -> None:
    state = {"session_id": "abc", "token": "t"}
    with db.open(redactor=Redactor(patterns=["password"])) as store:
        store.create_run("r", name="n", started_at=T0)
        store.save_checkpoint("r", 0, state)  # no secret key in it for this redactor
        assert store.load_checkpoint("r") == Checkpoint(run_id="r", seq=0, state=state)
        store.redactor = Redactor(patterns=["session_id"])
        store.save_checkpoint("r", 1, state)
        cp = store.load_checkpoint("r")
    assert cp == Checkpoint(run_id="r", seq=1, state={"session_id": "[redacted]", "token": "t"})


# -- threads, lifetime ------------------------------------------------------

RUNS_PER_WORKER = 5


def test_eight_threads_lose_nothing(db: Harness) -> None:
    trace = sample()
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(n: int, store: Store | None) -> None:
        try:
            use = store if store is not None else db.open()
            barrier.wait()
            for i in range(RUNS_PER_WORKER):
                record(use, f"t{n}-{i}", trace)
            if store is None:
                use.close()
        except Exception as exc:  # noqa: BLE001 - the main thread asserts there were none
            errors.append(exc)

    shared = db.open()
    # Half share one store object, half open their own (the database's own locking).
    threads = [
        threading.Thread(target=worker, args=(n, shared if n < 4 else None)) for n in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared.close()
    assert errors == []
    run_ids = [f"t{n}-{i}" for n in range(8) for i in range(RUNS_PER_WORKER)]
    assert db.counts() == dict.fromkeys(run_ids, (len(trace.events), len(trace.transitions)))
    with db.open() as store:
        assert len(store.list_runs(limit=1000)) == len(run_ids)
        for run_id in run_ids:
            assert store.get_run(run_id).status == "finished"
            assert store.load_trace(run_id).events == trace.events


def test_a_closed_store_says_so(db: Harness) -> None:
    store = db.open()
    store.create_run("r", name="n", started_at=T0)
    assert not store.closed
    store.close()
    store.close()
    assert store.closed
    assert repr(store).endswith(" closed>")
    closed = f"the store {store.backend.location} is closed"
    for call in (
        store.list_runs,
        lambda: store.get_run("r"),
        lambda: store.load_trace("r"),
        lambda: store.save("r", [], first_seq=0, checkpoint={"state": "plan"}),
        lambda: store.create_run("s", name="n", started_at=T0),
    ):
        with pytest.raises(StoreError) as err:
            call()
        assert str(err.value) == closed
