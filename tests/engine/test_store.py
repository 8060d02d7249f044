"""The SQLite run store, against real database files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from planloop import Agent, Trace
from planloop.engine import (
    Checkpoint,
    Redactor,
    RunRecord,
    SQLiteStore,
    Store,
    StoreError,
)
from planloop.engine.store import SCHEMA_VERSION, default_store_path
from planloop.engine.trace import Transitioned
from planloop.errors import PlanloopError
from planloop.models import ToolCall
from planloop.testing import ScriptedModel

T0 = datetime(2026, 1, 1, 12, 0, 0)


def add(a: int, b: int) -> int:
    """Add."""
    return a + b


def fetch(url: str, api_key: str) -> str:
    """Fetch a page with a key."""
    return f"fetched {url}; the admin password is hunter2"


def sample() -> Trace:
    model = ScriptedModel(
        [ToolCall("add", {"a": 1, "b": 2}), ToolCall("add", {"a": 3, "b": 4}), "3 and 7"]
    )
    return Agent(model, [add]).run_sync({"question": "1+2, 3+4", "n": [1, 2]}).trace


def record(store: Store, run_id: str, trace: Trace, *, start: datetime = T0) -> None:
    """Record ``trace`` the way a run will: event by event, a checkpoint per transition."""
    store.create_run(run_id, name="sample", started_at=start, definition="f.py:agent")
    for seq, event in enumerate(trace.events):
        store.append_events(run_id, [event], first_seq=seq)
        if isinstance(event, Transitioned):
            store.save_checkpoint(run_id, seq + 1, {"state": event.target, "seq": seq})
    store.finish_run(
        run_id, status="finished", stop_reason=None, iterations=trace.iterations, ended_at=start
    )


# Since schema version 4, checkpoints are rows of the events table of this kind.
CHECKPOINT = "_checkpoint"


def raw_count(path: Path, what: str) -> dict[str, int]:
    """The stored rows of each run: its ``"events"`` or its ``"checkpoints"``."""
    where = {"events": f"kind != '{CHECKPOINT}'", "checkpoints": f"kind = '{CHECKPOINT}'"}[what]
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            f"SELECT run_id, count(*) FROM events WHERE {where} GROUP BY run_id"
        ).fetchall()
    conn.close()
    return dict(rows)


# -- round trip -------------------------------------------------------------


def test_round_trip_of_a_real_run(tmp_path: Path) -> None:
    trace = sample()
    assert len(trace.events) > 8
    path = tmp_path / "runs.db"
    with SQLiteStore(path) as store:
        assert isinstance(store, Store)
        record(store, trace.run_id, trace)
        again = store.load_trace(trace.run_id)
    assert again == trace
    assert again.to_json() == trace.to_json()
    # A new process-like reopen reads the same thing.
    with SQLiteStore(path) as store:
        assert store.load_trace(trace.run_id) == trace
        batch = "batch-run"
        store.create_run(batch, name="b", started_at=T0)
        store.append_events(batch, trace.events[:4], first_seq=0)
        store.append_events(batch, trace.events[4:], first_seq=4)
        assert store.load_trace(batch).events == trace.events


def test_empty_run_loads_an_empty_trace_and_no_checkpoint(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.create_run("r", name="n", started_at=T0)
        assert store.load_trace("r") == Trace(run_id="r")
        assert store.load_checkpoint("r") is None
        store.append_events("r", [], first_seq=0)
        assert store.load_trace("r").events == []


# -- checkpoints ------------------------------------------------------------


def test_latest_checkpoint_wins(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.create_run("r", name="n", started_at=T0)
        store.create_run("other", name="n", started_at=T0)
        store.save_checkpoint("r", 1, {"state": "plan"})
        store.save_checkpoint("r", 5, {"state": "act", "plan": [{"id": "s1"}]})
        store.save_checkpoint("r", 3, {"state": "observe"})
        store.save_checkpoint("other", 9, {"state": "finish"})
        store.save_checkpoint("r", 5, {"state": "act", "plan": [{"id": "s2"}]})
    with SQLiteStore(path) as store:
        assert store.load_checkpoint("r") == Checkpoint(
            run_id="r", seq=5, state={"state": "act", "plan": [{"id": "s2"}]}
        )
        other = store.load_checkpoint("other")
        assert other is not None
        assert other.seq == 9


def test_checkpoints_share_the_events_table_and_stay_out_of_traces(tmp_path: Path) -> None:
    trace = sample()
    events = trace.events
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.create_run("r", name="n", started_at=T0)
        store.save_checkpoint("r", 0, {"state": "start"})  # before any event
        store.save("r", events[:3], first_seq=0, checkpoint={"state": "plan"})
        store.save("r", [], first_seq=3, checkpoint={"state": "act"})  # no new event
        store.save("r", events[3:], first_seq=3)
        assert store.load_trace("r").events == events
        assert store.load_checkpoint("r") == Checkpoint(run_id="r", seq=3, state={"state": "act"})
        with pytest.raises(StoreError, match=r"'r'.*seq 3.*append-only"):
            store.append_events("r", [events[3]], first_seq=3)
    assert raw_count(path, "events") == {"r": len(events)}
    assert raw_count(path, "checkpoints") == {"r": 2}
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        # In the order they happened: a checkpoint after the events it follows.
        order = conn.execute("SELECT seq, kind FROM events ORDER BY pos").fetchall()
    conn.close()
    assert "checkpoints" not in tables
    assert order[:5] == [
        (0, CHECKPOINT),
        (0, events[0].kind),
        (1, events[1].kind),
        (2, events[2].kind),
        (3, CHECKPOINT),
    ]
    assert order[5:] == [(seq, e.kind) for seq, e in enumerate(events) if seq >= 3]


def test_a_save_over_rows_already_there_replaces_the_checkpoint_or_writes_nothing(
    tmp_path: Path,
) -> None:
    events = sample().events
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.create_run("r", name="n", started_at=T0)
        store.save_checkpoint("r", 3, {"state": "early"})  # where the save's will go
        store.save("r", events[:3], first_seq=0, checkpoint={"state": "plan"})
        assert store.load_checkpoint("r") == Checkpoint(run_id="r", seq=3, state={"state": "plan"})
        # An event already stored: the whole save is refused, its checkpoint too.
        with pytest.raises(StoreError, match=r"'r'.*seqs 2\.\.4 is already stored"):
            store.save("r", events[2:5], first_seq=2, checkpoint={"state": "act"})
        assert store.load_checkpoint("r") == Checkpoint(run_id="r", seq=3, state={"state": "plan"})
        assert store.load_trace("r").events == events[:3]
        # A batch larger than one INSERT takes: the same rows, in order.
        many = [events[i % len(events)] for i in range(150)]
        store.create_run("big", name="n", started_at=T0)
        store.save("big", many, first_seq=0, checkpoint={"state": "act"})
        assert store.load_trace("big").events == many
        assert store.load_checkpoint("big") == Checkpoint(
            run_id="big", seq=150, state={"state": "act"}
        )
    assert raw_count(path, "events") == {"r": 3, "big": 150}


@pytest.mark.parametrize("garbage", ["[1, 2]", '{"state": "pl', "\x00\x01"])
def test_a_corrupt_checkpoint_names_run_and_seq_and_the_trace_stays_readable(
    tmp_path: Path, garbage: str
) -> None:
    trace = sample()
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        for run_id in ("broken", "fine"):
            store.create_run(run_id, name="n", started_at=T0)
            store.save(run_id, trace.events, first_seq=0, checkpoint={"state": "act"})
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "UPDATE events SET body = ? WHERE run_id = 'broken' AND kind = ?", (garbage, CHECKPOINT)
        )
    conn.close()
    with SQLiteStore(path) as store:
        seq = len(trace.events)
        with pytest.raises(StoreError, match=rf"run 'broken'.*checkpoint at seq {seq} is corrupt"):
            store.load_checkpoint("broken")
        assert store.load_trace("broken").events == trace.events
        assert store.load_checkpoint("fine") == Checkpoint(
            run_id="fine", seq=seq, state={"state": "act"}
        )


def test_checkpoint_state_becomes_json(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.create_run("r", name="n", started_at=T0)
        store.save_checkpoint("r", 1, {"when": T0, "pair": (1, 2), "obj": object()})
        cp = store.load_checkpoint("r")
    assert cp is not None
    assert cp.state["when"] == T0.isoformat()
    assert cp.state["pair"] == [1, 2]
    assert cp.state["obj"].startswith("<object object")


def test_unknown_run_is_a_clear_error(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        for call in (
            lambda: store.get_run("nope"),
            lambda: store.load_trace("nope"),
            lambda: store.load_checkpoint("nope"),
            lambda: store.save_checkpoint("nope", 1, {}),
            lambda: store.append_events("nope", sample().events[:1], first_seq=0),
            lambda: store.finish_run(
                "nope", status="finished", stop_reason=None, iterations=0, ended_at=T0
            ),
        ):
            with pytest.raises(StoreError, match=r"no run 'nope'.*planloop runs"):
                call()


# -- runs -------------------------------------------------------------------


def test_finish_run_and_list_runs_newest_first(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.create_run("middle", name="m", started_at=T0 + timedelta(minutes=1))
        store.create_run(
            "newest",
            name="n",
            started_at=T0 + timedelta(minutes=2),
            definition="agents.py:bot",
            definition_hash="abc123",
        )
        store.create_run("oldest", name="o", started_at=T0)
        with pytest.raises(StoreError, match="already exists"):
            store.create_run("oldest", name="again", started_at=T0)
        store.finish_run(
            "newest",
            status="stopped",
            stop_reason="max_iterations",
            iterations=15,
            ended_at=T0 + timedelta(minutes=2, seconds=30),
        )
    with SQLiteStore(path) as store:
        runs = store.list_runs()
        assert [r.run_id for r in runs] == ["newest", "middle", "oldest"]
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
        middle = store.get_run("middle")
        assert middle.status == "running"
        assert middle.ended_at is None
        assert middle.duration is None
        assert middle.definition is None


# -- append-only ------------------------------------------------------------


def test_events_are_append_only(tmp_path: Path) -> None:
    events = sample().events
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.create_run("r", name="n", started_at=T0)
        store.append_events("r", events[:3], first_seq=0)
        with pytest.raises(StoreError, match=r"'r'.*seq 2.*append-only"):
            store.append_events("r", [events[3]], first_seq=2)
        # A batch that overlaps is refused as a whole: nothing of it is written.
        with pytest.raises(StoreError, match="append-only"):
            store.append_events("r", events[1:5], first_seq=1)
        assert raw_count(path, "events") == {"r": 3}
        store.append_events("r", events[3:], first_seq=3)
        assert store.load_trace("r").events == events
    for name in ("update", "delete", "delete_events", "update_event", "delete_run"):
        assert not hasattr(SQLiteStore, name)


# -- refusing foreign files -------------------------------------------------


@pytest.mark.parametrize(
    ("version", "who"), [("99", "a newer"), ("3", "an older"), ("x", "another")]
)
def test_other_schema_version_is_refused_and_untouched(
    tmp_path: Path, version: str, who: str
) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        record(store, "r", sample())
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        SQLiteStore(path)
    assert str(info.value) == (
        f"the store {path} has schema version {version}, but this planloop reads version"
        f" {SCHEMA_VERSION}: it was written by {who} version of planloop. Open it with that"
        " version, or move the file away to start a new store here (or set PLANLOOP_HOME or"
        " pass another path). The file was not modified."
    )
    assert isinstance(info.value, PlanloopError)
    assert path.read_bytes() == before
    with sqlite3.connect(path) as conn:  # not rewritten in another layout either
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            version,
        )
    conn.close()


@pytest.mark.parametrize("kind", ["text", "other-sqlite"])
def test_a_file_that_is_not_a_planloop_database_is_refused_and_untouched(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "x.db"
    if kind == "text":
        path.write_text("this is a shopping list, not a database\n" * 200)
    else:
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
            conn.execute("INSERT INTO customers (name) VALUES ('ada')")
        conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a planloop database") as info:
        SQLiteStore(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before


# -- corrupt rows -----------------------------------------------------------


def test_child_traces_round_trip_and_are_replaced_by_step_id(tmp_path: Path) -> None:
    trace, first, second = sample(), sample(), sample()
    with SQLiteStore(tmp_path / "s.db") as store:
        record(store, "r", trace)
        store.save("r", [], first_seq=len(trace.events), children={"b": first, "a": first})
        store.save("r", [], first_seq=len(trace.events), children={"b": second})
        loaded = store.load_trace("r")
    assert loaded.children == {"a": first, "b": second}
    assert list(loaded.children) == ["a", "b"]  # in the order they were (last) stored
    assert loaded.events == trace.events


def test_a_corrupt_child_trace_names_the_step_and_other_runs_stay_readable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    trace = sample()
    with SQLiteStore(path) as store:
        for run_id in ("broken", "fine"):
            record(store, run_id, trace)
            store.save(run_id, [], first_seq=len(trace.events), children={"step_1": trace})
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE children SET body = '{\"run_id\": 3' WHERE run_id = 'broken'")
    conn.close()
    with SQLiteStore(path) as store:
        with pytest.raises(StoreError) as err:
            store.load_trace("broken")
        assert str(err.value).startswith(
            f"run 'broken' in {path}: the trace of the sub-agent run of step 'step_1' is "
            "corrupt and cannot be read: "
        )
        assert store.load_trace("fine").children == {"step_1": trace}


@pytest.mark.parametrize(
    "garbage",
    ['{"kind": "transitioned", "t": 0.1, "sou', '{"kind": "exploded", "t": 1}', "\x00\x01"],
)
def test_a_corrupt_event_names_run_and_seq_and_other_runs_stay_readable(
    tmp_path: Path, garbage: str
) -> None:
    trace = sample()
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        record(store, "broken", trace)
        record(store, "fine", trace)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "UPDATE events SET body = ? WHERE run_id = 'broken' AND seq = 4 AND kind != ?",
            (garbage, CHECKPOINT),
        )
    conn.close()
    with SQLiteStore(path) as store:
        with pytest.raises(StoreError, match=r"run 'broken'.*seq 4"):
            store.load_trace("broken")
        assert store.load_trace("fine").events == trace.events
        assert store.get_run("broken").status == "finished"


def test_a_missing_event_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        record(store, "r", sample())
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "DELETE FROM events WHERE run_id = 'r' AND seq = 2 AND kind != ?", (CHECKPOINT,)
        )
    conn.close()
    with SQLiteStore(path) as store, pytest.raises(StoreError, match=r"'r'.*event 2 is missing"):
        store.load_trace("r")


# -- concurrency ------------------------------------------------------------

RUNS_PER_WORKER = 5


def check_all_recorded(path: Path, run_ids: list[str], trace: Trace) -> None:
    transitions = len(trace.transitions)
    assert raw_count(path, "events") == {r: len(trace.events) for r in run_ids}
    assert raw_count(path, "checkpoints") == dict.fromkeys(run_ids, transitions)
    with SQLiteStore(path) as store:
        assert len(store.list_runs(limit=1000)) == len(run_ids)
        for run_id in run_ids:
            assert store.get_run(run_id).status == "finished"
            assert store.load_trace(run_id).events == trace.events


def test_eight_threads_lose_nothing(tmp_path: Path) -> None:
    trace = sample()
    path = tmp_path / "s.db"
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(n: int, store: SQLiteStore | None) -> None:
        try:
            own = store is None
            use = store if store is not None else SQLiteStore(path)
            barrier.wait()
            for i in range(RUNS_PER_WORKER):
                record(use, f"t{n}-{i}", trace)
            if own:
                use.close()
        except Exception as exc:  # noqa: BLE001 - the main thread asserts there were none
            errors.append(exc)

    shared = SQLiteStore(path)
    # Half share one store object (its lock), half open their own (SQLite's locking).
    threads = [
        threading.Thread(target=worker, args=(n, shared if n < 4 else None)) for n in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared.close()
    assert errors == []
    check_all_recorded(path, [f"t{n}-{i}" for n in range(8) for i in range(RUNS_PER_WORKER)], trace)


WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from planloop import Trace
    from planloop.engine import SQLiteStore
    from planloop.engine.trace import Transitioned

    db, trace_file, n, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    trace = Trace.from_json(Path(trace_file).read_text())
    with SQLiteStore(db) as store:
        for i in range(runs):
            run_id = f"p{n}-{i}"
            store.create_run(run_id, name="sample", started_at=trace.started.started_at)
            for seq, event in enumerate(trace.events):
                store.append_events(run_id, [event], first_seq=seq)
                if isinstance(event, Transitioned):
                    store.save_checkpoint(run_id, seq + 1, {"state": event.target})
            store.finish_run(
                run_id, status="finished", stop_reason=None, iterations=1,
                ended_at=trace.started.started_at,
            )
    """
)


def test_four_processes_lose_nothing(tmp_path: Path) -> None:
    trace = sample()
    path = tmp_path / "s.db"
    trace_file = tmp_path / "trace.json"
    trace_file.write_text(trace.to_json())
    SQLiteStore(path).close()  # created up front, so the workers race on writes only
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(path),
                str(trace_file),
                str(n),
                str(RUNS_PER_WORKER),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=100)
        assert proc.returncode == 0, err
    check_all_recorded(path, [f"p{n}-{i}" for n in range(4) for i in range(RUNS_PER_WORKER)], trace)


def test_processes_racing_to_create_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "s.db"
    code = "import sys; from planloop.engine import SQLiteStore; SQLiteStore(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)]) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    with SQLiteStore(path) as store:
        assert store.list_runs() == []


# -- secrets ----------------------------------------------------------------


def test_secrets_never_reach_the_database_file(tmp_path: Path) -> None:
    model = ScriptedModel(
        [ToolCall("fetch", {"url": "https://x.test", "api_key": "sk-SECRET123"}), "done"]
    )
    trace = Agent(model, [fetch]).run_sync("get it").trace
    text = trace.to_json()
    assert "sk-SECRET123" in text
    assert "hunter2" in text  # the tool's output says it: there is something to redact

    path = tmp_path / "s.db"
    wal = Path(f"{path}-wal")
    store = SQLiteStore(path, redactor=Redactor())
    store.redactor.register("hunter2")
    record(store, trace.run_id, trace)
    store.save_checkpoint(
        trace.run_id,
        99,
        {"headers": {"Authorization": "Bearer sk-SECRET123"}, "note": "pw=hunter2"},
    )

    def assert_clean() -> None:
        for file in (path, wal):
            if file.exists():
                data = file.read_bytes()
                assert b"sk-SECRET123" not in data, file
                assert b"hunter2" not in data, file

    assert_clean()  # while open: the new pages are in the WAL
    loaded = store.load_trace(trace.run_id)
    started = [e for e in loaded.events if e.kind == "step_started"]
    assert started[0].args == {"url": "https://x.test", "api_key": "[redacted]"}
    finished = loaded.step_results[0]
    assert finished.output == "fetched https://x.test; the admin password is [redacted]"
    cp = store.load_checkpoint(trace.run_id)
    assert cp is not None
    assert cp.state == {"headers": {"Authorization": "[redacted]"}, "note": "pw=[redacted]"}
    store.close()
    assert_clean()
    assert path.stat().st_size > 0


def test_redactor_rules() -> None:
    r = Redactor()
    for key in (
        "api_key",
        "OPENAI_API_KEY",
        "X-Api-Key",
        "apiKey",
        "accessToken",
        "client_secret",
        "Authorization",
        "auth",
        "Cookie",
        "private_key",
        "db_password",
        "passwd",
        "aws_credentials",
    ):
        assert r.is_secret_key(key), key
    for key in ("max_tokens", "input_tokens", "author", "secretary", "name", "keyboard"):
        assert not r.is_secret_key(key), key
    assert r.redact({"a": [{"token": {"deep": 1}}], "password": None}) == {
        "a": [{"token": "[redacted]"}],
        "password": None,
    }
    with pytest.raises(ValueError, match="at least 4"):
        r.register("ab")
    r.register("s3cr3t!")
    assert r.redact_json('{"x":"a s3cr3t! b"}') == '{"x":"a [redacted] b"}'
    assert r.redact_json('{"x":"plain","n":1}') == '{"x":"plain","n":1}'
    custom = Redactor(patterns=["session_id"], values=["abcd1234"])
    assert custom.redact({"SessionId": "q", "token": "t", "v": "abcd1234"}) == {
        "SessionId": "[redacted]",
        "token": "t",
        "v": "[redacted]",
    }


# -- location, lifetime -----------------------------------------------------


def test_default_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLANLOOP_HOME", raising=False)
    assert default_store_path() == tmp_path / ".planloop" / "planloop.db"
    with SQLiteStore() as store:
        assert store.path == tmp_path / ".planloop" / "planloop.db"
    assert (tmp_path / ".planloop" / "planloop.db").is_file()
    home = tmp_path / "home" / "nested"
    monkeypatch.setenv("PLANLOOP_HOME", str(home))
    assert default_store_path() == home / "planloop.db"
    with SQLiteStore() as store:
        store.create_run("r", name="n", started_at=T0)
    assert (home / "planloop.db").is_file()


def test_a_closed_store_says_so(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_runs()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_process_writes_through_a_connection_of_its_own(tmp_path: Path) -> None:
    import os

    path = tmp_path / "s.db"
    events = sample().events[:2]  # before the fork: the child runs nothing but the store
    store = SQLiteStore(path)
    store.create_run("parent", name="p", started_at=T0)
    pid = os.fork()
    if pid == 0:  # the child: the parent's connection must not be used here
        code = 1
        try:
            store.create_run("child", name="c", started_at=T0)
            store.save("child", events, first_seq=0, checkpoint={"state": "plan"})
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.save("parent", [], first_seq=0, checkpoint={"state": "act"})
    assert {run.run_id for run in store.list_runs()} == {"parent", "child"}
    assert len(store.load_trace("child").events) == 2
    store.close()
