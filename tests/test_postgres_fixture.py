"""The PostgreSQL server of tests/_postgres.py: reachable with psycopg 3, async and pooled;
its databases apart; stopped and removed when the session ends, even one that failed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from tests._postgres import PostgresServer

REPO = Path(__file__).resolve().parent.parent


async def test_async_connection_commits_and_rolls_back(fresh_postgresql_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(fresh_postgresql_url) as conn:
        async with conn.transaction():
            await conn.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, body JSONB)")
            await conn.execute(
                "INSERT INTO runs VALUES (%s, %s), (%s, %s)",
                ("r1", json.dumps({"state": "plan"}), "r2", json.dumps({"n": [1, 2]})),
            )
        with pytest.raises(psycopg.errors.UniqueViolation):
            await _insert_r3_and_r1(conn)  # r1 is taken: r3 is undone with it
        cursor = await conn.execute("SELECT run_id, body FROM runs ORDER BY run_id")
        assert await cursor.fetchall() == [("r1", {"state": "plan"}), ("r2", {"n": [1, 2]})]


async def _insert_r3_and_r1(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    async with conn.transaction():
        await conn.execute("INSERT INTO runs VALUES ('r3', '{}')")
        await conn.execute("INSERT INTO runs VALUES ('r1', '{}')")


async def test_pool_shares_one_database(fresh_postgresql_url: str) -> None:
    async with AsyncConnectionPool(fresh_postgresql_url, min_size=2, max_size=2) as pool:
        async with pool.connection() as conn:  # commits when the block ends
            await conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, kind TEXT)")
            await conn.execute("INSERT INTO events VALUES (0, 'started'), (1, 'finished')")
        async with pool.connection() as first, pool.connection() as second:
            assert first is not second
            await first.execute("INSERT INTO events VALUES (2, 'resumed')")
            cursor = await second.execute("SELECT count(*) FROM events")
            assert await cursor.fetchone() == (2,)  # the first's insert is not committed yet
            await first.commit()
            cursor = await second.execute("SELECT kind FROM events ORDER BY seq")
            assert await cursor.fetchall() == [("started",), ("finished",), ("resumed",)]


def test_databases_are_apart(postgresql_server: PostgresServer) -> None:
    one, two = postgresql_server.create_database(), postgresql_server.create_database()
    assert one != two
    with psycopg.connect(one, autocommit=True) as conn:
        conn.execute("CREATE TABLE only_here (x INTEGER)")
    with psycopg.connect(two, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM only_here")
        conn.execute("CREATE TABLE only_here (x INTEGER)")  # the name is free here
    for url in (one, two):
        postgresql_server.drop_database(url.rsplit("/", 1)[1])


def test_session_database_and_password(
    postgresql_server: PostgresServer, postgresql_url: str
) -> None:
    with psycopg.connect(postgresql_url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("planloop_test",)
    wrong = postgresql_url.replace(postgresql_server.password, "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong)


_CHILD_TEST = """
import json, os

def test_uses_the_server(postgresql_server, postgresql_url):
    import psycopg
    with psycopg.connect(postgresql_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    record = {"port": postgresql_server.port, "root": str(postgresql_server.root)}
    with open(os.environ["SERVER_RECORD"], "w") as file:
        json.dump(record, file)
    assert FAIL is False
"""


@pytest.mark.parametrize("fail", [False, True], ids=["passing", "failing"])
def test_server_is_stopped_and_removed_at_session_end(tmp_path: Path, fail: bool) -> None:
    test_file = tmp_path / "test_child.py"
    test_file.write_text(_CHILD_TEST.replace("FAIL", repr(fail)))
    (tmp_path / "conftest.py").write_text(
        "from tests._postgres import postgresql_server, postgresql_url\n"
    )
    record = tmp_path / "server.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), str(test_file)],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "SERVER_RECORD": str(record)},
    )  # fmt: skip
    assert done.returncode == (1 if fail else 0), done.stdout + done.stderr
    server = json.loads(record.read_text())
    assert not Path(server["root"]).exists()
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", server["port"]))
