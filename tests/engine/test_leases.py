"""Leases: a running run is held by its process, a killed one is abandoned, and of two
processes resuming a run exactly one runs it (real SQLite files, real processes)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import planloop
from planloop.engine.store import BaseStore, SQLiteStore
from planloop.engine.store._lease import holding, new_owner
from planloop.errors import CannotResume, RunLocked, StoreError
from tests.engine._store_harness import HARNESSES, T0, Harness

PLANLOOP = str(Path(sys.executable).parent / "planloop")
LEASE = "1.5"  # seconds: what the processes of these tests use (heartbeat: a third)

# A workflow whose step "b" blocks while BLOCK is set (the process is then killed), or
# holds its run for HOLD seconds; every step that ends writes "STEP RUN_ID" to STEP_LOG.
# A workflow whose step "b" blocks while BLOCK is set (the process is then killed), or
# holds its run for HOLD seconds; every step that ends writes "STEP RUN" to STEP_LOG,
# RUN being what the code that started or resumed the run set (steps see its context).
LEASY = """
import asyncio
import contextvars
import os
import pathlib

import planloop

LOG = pathlib.Path(os.environ["STEP_LOG"])
BLOCKED = pathlib.Path(os.environ["BLOCKED"])
RUN = contextvars.ContextVar("RUN", default="cli")


def note(step: str) -> None:
    with LOG.open("a") as f:
        f.write(f"{step} {RUN.get()}\\n")


async def a() -> str:
    note("a")
    return "a"


async def b(x: str) -> str:
    if os.environ.get("BLOCK"):
        (BLOCKED / RUN.get()).touch()
        await asyncio.sleep(3600)
    await asyncio.sleep(float(os.environ.get("HOLD", "0")))
    note("b")
    return x + "b"


wf = planloop.Workflow("leasy")
wf.step(b, id="b", x=wf.step(a, id="a"))
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    (tmp_path / "blocked").mkdir(exist_ok=True)
    return {
        **os.environ,
        "STEP_LOG": str(tmp_path / "steps.log"),
        "BLOCKED": str(tmp_path / "blocked"),
        "PLANLOOP_LEASE_SECONDS": LEASE,
        "PYTHONPATH": ".",
        **extra,
    }


def _python(code: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(
    condition: Callable[[], bool], what: str, process: subprocess.Popen[str] | None = None
) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if process is not None:
            assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.02)


def _cli(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLANLOOP, "--store", str(tmp_path / "s.db"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _log(tmp_path: Path) -> list[str]:
    path = tmp_path / "steps.log"
    return sorted(path.read_text().splitlines()) if path.exists() else []


# -- a killed run is abandoned, and resumed in another process ---------------


def test_a_killed_run_is_abandoned_after_its_lease_and_resumes_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "leasy.py").write_text(LEASY)
    env = _env(tmp_path)
    first = subprocess.Popen(
        [PLANLOOP, "--store", str(tmp_path / "s.db"), "run", "leasy.py:wf"],
        cwd=tmp_path,
        env={**env, "BLOCK": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait(lambda: any((tmp_path / "blocked").iterdir()), "step b", first)
    store = SQLiteStore(tmp_path / "s.db")
    try:
        [record] = store.list_runs()
        run_id = record.run_id
        record = store.get_run(run_id)
        assert (record.status, record.state, record.abandoned) == ("running", "running", False)
        assert record.lease_owner is not None and f":{first.pid}:" in record.lease_owner
        listed = _cli(tmp_path, env, "runs")
        assert listed.stdout.splitlines()[1].split()[4] == "running", listed

        # Alive: resuming it is refused, naming the process that runs it.
        live = _cli(tmp_path, env, "resume", run_id)
        assert live.returncode == 2, live
        assert f"is being run by another process ({record.lease_owner})" in live.stderr
        assert "whose lease expires at" in live.stderr

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed_at = datetime.now(UTC)
        _wait(lambda: store.get_run(run_id).abandoned, "the lease expiring")
        record = store.get_run(run_id)
        assert (record.status, record.state) == ("running", "abandoned")
        assert record.last_seen is not None and record.last_seen <= killed_at
        listed = _cli(tmp_path, env, "runs")
        assert listed.stdout.splitlines()[1].split()[4] == "abandoned", listed
        shown = _cli(tmp_path, env, "show", run_id)
        assert "its process is gone" in shown.stdout, shown

        resumed = _cli(tmp_path, env, "resume", run_id)
        assert resumed.returncode == 0, resumed
        assert _log(tmp_path) == ["a cli", "b cli"]  # "a" did not run again
        record = store.get_run(run_id)
        assert (record.state, record.lease_owner) == ("finished", None)
    finally:
        first.kill()
        first.wait()
        store.close()


# -- a live run cannot be resumed; the heartbeat keeps a long run alive --------


async def test_a_live_run_is_locked_and_its_heartbeat_outlives_the_lease(tmp_path: Path) -> None:
    release = asyncio.Event()
    log: list[str] = []

    async def slow() -> str:
        await release.wait()
        time.sleep(0.8)  # blocks the event loop: the heartbeat renews from its own thread
        log.append("slow")
        return "done"

    store = SQLiteStore(tmp_path / "s.db", lease_seconds=0.5, heartbeat_seconds=0.15)
    wf = planloop.Workflow("long", store=store)
    wf.step(slow, id="slow")
    task = asyncio.create_task(wf.run(run_id="long-1"))
    watcher = SQLiteStore(tmp_path / "s.db")  # another connection, as another process
    while not log and not task.done():
        await asyncio.sleep(0.02)
        if watcher.get_run("long-1").lease_owner is not None:
            break
    owner = watcher.get_run("long-1").lease_owner
    assert owner is not None

    with pytest.raises(RunLocked) as info:
        await wf.resume("long-1")
    assert info.value.owner == owner and info.value.run_id == "long-1"
    assert isinstance(info.value, CannotResume) and info.value.expires is not None

    # Running for more than 3 leases: always "running", never abandoned.
    states = set()
    started = time.monotonic()
    while time.monotonic() - started < 1.8:
        states.add(watcher.get_run("long-1").state)
        await asyncio.sleep(0.05)
    release.set()
    states.add(await asyncio.to_thread(lambda: watcher.get_run("long-1").state))
    result = await task
    assert result.output == "done" and log == ["slow"]
    assert states == {"running"}
    record = watcher.get_run("long-1")
    assert (record.state, record.lease_owner) == ("finished", None)  # released at the end
    watcher.close()
    store.close()


def test_a_paused_run_holds_no_lease_and_resuming_takes_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", lease_seconds=30)
    owners: list[str | None] = []
    wf = planloop.Workflow("gated", store=store)
    ok = wf.approval("Ship it?", id="ok")
    wf.step(lambda: owners.append(store.get_run("gated-1").lease_owner), id="ship", depends_on=[ok])
    assert wf.run_sync(run_id="gated-1").status == "paused"
    record = store.get_run("gated-1")
    assert (record.state, record.lease_owner, record.abandoned) == ("paused", None, False)
    assert wf.resume_sync("gated-1", planloop.Approve()).status == "finished"
    assert owners[0] is not None and f":{os.getpid()}:" in owners[0]  # held while it ran
    assert store.get_run("gated-1").lease_owner is None
    store.close()


# -- two processes resuming the same abandoned runs ----------------------------

PREPARE = """
import asyncio
from leasy import RUN, wf

async def one(i):
    RUN.set(f"race-{{i:03}}")
    await wf.run(run_id=f"race-{{i:03}}")

async def main():
    await asyncio.gather(*(one(i) for i in range({n})))

asyncio.run(main())
"""

WORKER = """
import concurrent.futures, pathlib, sys, time
from leasy import RUN, wf
from planloop import RunLocked

me, n = sys.argv[1], {n}
pathlib.Path(me + ".ready").touch()
while not (pathlib.Path("a.ready").exists() and pathlib.Path("b.ready").exists()):
    time.sleep(0.001)

def resume(i):
    RUN.set(f"race-{{i:03}}")
    try:
        wf.resume_sync(f"race-{{i:03}}")
        return "won"
    except RunLocked as err:
        return "locked " + str(err.owner)

with concurrent.futures.ThreadPoolExecutor(n) as pool:
    for i, outcome in enumerate(pool.map(resume, range(n))):
        print(f"race-{{i:03}}", outcome)
"""


def test_of_two_processes_resuming_an_abandoned_run_exactly_one_runs_it(tmp_path: Path) -> None:
    n = 100
    (tmp_path / "leasy.py").write_text(LEASY)
    store_env = {"PLANLOOP_HOME": str(tmp_path / "home")}
    env = _env(tmp_path, **store_env)
    prepare = _python(PREPARE.format(n=n), {**env, "BLOCK": "1"}, tmp_path)
    blocked = tmp_path / "blocked"
    _wait(lambda: len(list(blocked.iterdir())) == n, "every run reaching step b", prepare)
    prepare.send_signal(signal.SIGKILL)
    prepare.wait(timeout=30)
    store = SQLiteStore(tmp_path / "home" / "planloop.db")
    _wait(lambda: all(r.abandoned for r in store.list_runs(limit=n)), "every lease expiring")
    assert len(store.list_runs(limit=n + 1)) == n

    # Each winner holds its run for HOLD seconds: the other process tries it meanwhile.
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER.format(n=n), name],
            cwd=tmp_path,
            env={**env, "HOLD": "3"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    outcomes: dict[str, list[str]] = {}
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        for line in out.splitlines():
            run_id, outcome = line.split(" ", 1)
            outcomes.setdefault(run_id, []).append(outcome)
    assert len(outcomes) == n
    for run_id, pair in outcomes.items():
        assert sorted(o.split()[0] for o in pair) == ["locked", "won"], (run_id, pair)
        assert store.get_run(run_id).state == "finished"
    log = _log(tmp_path)
    assert log.count("a race-007") == 1  # ran before the kill, never again
    assert sorted(line for line in log if line.startswith("b ")) == [
        f"b race-{i:03}" for i in range(n)
    ]  # each run's step b exactly once, by its winner
    store.close()


# -- the lease methods, on every backend ---------------------------------------


@pytest.fixture(params=sorted(HARNESSES))
def db(request: pytest.FixtureRequest) -> Harness:
    """A database of each backend."""
    return HARNESSES[request.param](request)


def _leasing(db: Harness, lease: float = 30.0) -> BaseStore:
    return BaseStore(db.open().backend, lease_seconds=lease)


def test_a_lease_is_held_until_it_expires_or_is_released(db: Harness) -> None:
    store, other = _leasing(db, lease=0.4), _leasing(db)
    store.create_run("r", name="n", started_at=T0, owner="host:1:aa")
    record = other.get_run("r")
    assert (record.lease_owner, record.state) == ("host:1:aa", "running")
    assert record.last_seen is not None and record.lease_expires is not None
    assert record.lease_expires - record.last_seen == timedelta(seconds=0.4)
    with pytest.raises(RunLocked, match=r"another process \(host:1:aa\)") as info:
        other.take_lease("r", "host:2:bb")
    assert info.value.owner == "host:1:aa"
    assert other.renew_lease("r", "host:2:bb") is False  # not its lease
    time.sleep(0.5)
    assert other.get_run("r").abandoned
    other.take_lease("r", "host:2:bb")  # expired: taken over
    assert store.renew_lease("r", "host:1:aa") is False  # the first owner lost it
    assert other.get_run("r").lease_owner == "host:2:bb"
    store.release_lease("r", "host:1:aa")  # not its lease any more: nothing happens
    assert other.get_run("r").lease_owner == "host:2:bb"
    other.release_lease("r", "host:2:bb")
    record = other.get_run("r")
    assert (record.lease_owner, record.state) == (None, "abandoned")  # running, nobody holds it
    store.take_lease("r", "host:3:cc")  # released: taken at once
    with pytest.raises(StoreError, match="no run 'nope'"):
        store.take_lease("nope", "host:3:cc")


def test_of_many_stores_taking_one_lease_at_once_exactly_one_wins(db: Harness) -> None:
    stores = [_leasing(db) for _ in range(8)]
    stores[0].create_run("r", name="n", started_at=T0)
    barrier = threading.Barrier(len(stores))
    won: list[str] = []

    def take(i: int) -> None:
        barrier.wait()
        try:
            stores[i].take_lease("r", f"host:{i}:x")
            won.append(f"host:{i}:x")
        except RunLocked:
            pass

    threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1 and stores[0].get_run("r").lease_owner == won[0]


def test_one_heartbeat_thread_renews_every_lease_the_process_holds(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "runs.db", lease_seconds=0.6, heartbeat_seconds=0.2)
    owner = new_owner()
    try:
        with contextlib.ExitStack() as held:
            for i in range(20):
                store.create_run(f"r{i}", name="n", started_at=datetime.now(UTC), owner=owner)
                held.enter_context(holding(store, f"r{i}", owner, take=False))
            time.sleep(1.5)  # more than two leases: alive only if every one was renewed
            beating = [t for t in threading.enumerate() if t.name.startswith("planloop-lease")]
            assert len(beating) == 1
            assert not any(store.get_run(f"r{i}").abandoned for i in range(20))
        assert all(store.get_run(f"r{i}").lease_owner is None for i in range(20))
    finally:
        store.close()


def test_lease_times_are_checked() -> None:
    with pytest.raises(ValueError, match=r"heartbeat_seconds=10\.0 is not below lease_seconds=5"):
        SQLiteStore(":memory:", lease_seconds=5, heartbeat_seconds=10.0)
    with pytest.raises(ValueError, match="lease_seconds=0; give a positive number"):
        SQLiteStore(":memory:", lease_seconds=0)


def test_a_bad_lease_variable_says_which(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANLOOP_LEASE_SECONDS", "soon")
    with pytest.raises(ValueError, match="PLANLOOP_LEASE_SECONDS='soon'; set it to a number"):
        SQLiteStore(":memory:")


# -- a file of the layout before leases is brought to the new one -------------

# Schema version 4, as planloop wrote it before leases (planloop/engine/store/_schema.py).
V4 = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE runs (
        num INTEGER PRIMARY KEY, run_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
        status TEXT NOT NULL, stop_reason TEXT, iterations INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL, ended_at TEXT, definition TEXT, definition_hash TEXT)""",
    "CREATE INDEX runs_by_start ON runs (started_at)",
    """CREATE TABLE events (pos INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (run_id),
        seq INTEGER NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL)""",
    """CREATE TABLE children (run_id TEXT NOT NULL REFERENCES runs (run_id), name TEXT NOT NULL,
        body TEXT NOT NULL, PRIMARY KEY (run_id, name))""",
    "INSERT INTO meta VALUES ('schema_version', '4'), ('application', 'planloop')",
]


def test_a_store_of_the_layout_before_leases_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    with conn:
        for statement in V4:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO runs (run_id, name, status, iterations, started_at, ended_at)"
            " VALUES ('done', 'n', 'finished', 2, ?, ?), ('cut', 'n', 'running', 1, ?, NULL)",
            (T0.isoformat(), T0.isoformat(), T0.isoformat()),
        )
    conn.close()
    with SQLiteStore(path) as store:
        done, cut = store.get_run("done"), store.get_run("cut")
        assert (done.state, done.iterations, done.lease_expires) == ("finished", 2, None)
        assert (cut.status, cut.state, cut.lease_owner) == ("running", "abandoned", None)
        store.take_lease("cut", "host:1:aa")  # no process holds it
        store.create_run("new", name="n", started_at=T0, owner="host:1:bb")
    with SQLiteStore(path) as store:  # opened again: already the new layout
        assert store.get_run("new").lease_owner == "host:1:bb"
    conn = sqlite3.connect(path)
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    conn.close()
    assert version == ("5",)
    assert columns[-3:] == ["lease_owner", "last_seen", "lease_expires"]
