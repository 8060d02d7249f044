"""The SQLite store: its file, its layout, and sharing it between threads and processes.

What every store does, whatever its database, is tested once for all backends in
``test_store_conformance.py``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from planloop import Agent, Trace
from planloop.engine import Checkpoint, Redactor, SQLiteStore, StoreError
from planloop.engine.store import SCHEMA_VERSION, BaseStore, SQLiteBackend, default_store_path
from planloop.errors import PlanloopError
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from tests.engine._store_harness import T0, record, sample


def fetch(url: str, api_key: str) -> str:
    """Fetch a page with a key."""
    return f"fetched {url}; the admin password is hunter2"


# Checkpoints are rows of the events table of this kind.
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


# -- layout -----------------------------------------------------------------


def test_a_sqlite_store_is_a_base_store_over_a_sqlite_backend(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        assert isinstance(store, BaseStore)
        assert isinstance(store.backend, SQLiteBackend)
        assert (store.path, store.backend.location) == (path, str(path))
        assert repr(store) == f"<SQLiteStore {str(path)!r}>"
    assert repr(store) == f"<SQLiteStore {str(path)!r} closed>"


def test_checkpoints_are_rows_of_the_events_table_in_the_order_they_happened(
    tmp_path: Path,
) -> None:
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


def test_a_corrupt_run_row_names_the_run_and_other_runs_stay_readable(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.create_run("broken", name="n", started_at=T0)
        store.create_run("fine", name="n", started_at=T0)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE runs SET started_at = 'yesterday' WHERE run_id = 'broken'")
    conn.close()
    with SQLiteStore(path) as store:
        with pytest.raises(StoreError) as err:
            store.get_run("broken")
        assert str(err.value) == (
            "run 'broken': its row in the runs table is corrupt:"
            " Invalid isoformat string: 'yesterday'"
        )
        assert store.get_run("fine").started_at == T0


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
    text = trace.to_json(redact=False)
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
    store.save(trace.run_id, [], first_seq=len(trace.events), children={"step_1": trace})

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
