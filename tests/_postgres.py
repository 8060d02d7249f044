"""A real PostgreSQL server for the tests, started from nothing and stopped at the end.

The server binaries are Debian's (``/usr/lib/postgresql/VERSION/bin``, package
``postgresql``; ``./dev test`` installs it when it is missing). The server runs
in a temporary directory of its own, on a free port of 127.0.0.1, for as long
as a ``with running_server()`` block lasts; the block stops it (``pg_ctl stop
-m fast``) and removes the directory, whatever happened inside.

PostgreSQL refuses to run as root, and the machines the suite runs on run
everything as root: as root, every server program runs as the package's
``postgres`` user (``runuser -u postgres --``), which owns the directory; as
another user, they run as that user.

Connections over TCP need the password of the ``postgres`` role (scram-sha-256),
so that a URL's password is real and a wrong one is refused; the server's own
programs use its Unix socket, which needs none. The data is not synced to disk
(``fsync=off``): what is committed survives the server process being killed,
not the machine going down, which is all a test needs.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

__all__ = [
    "PostgresMissing",
    "PostgresServer",
    "free_port",
    "fresh_postgresql_url",
    "missing_server",
    "postgresql_server",
    "postgresql_url",
    "running_server",
    "server_bin",
]

SERVER_GLOB = "/usr/lib/postgresql/*/bin"
"""Where Debian's ``postgresql-VERSION`` packages put the server programs."""

SERVER_USER = "postgres"
"""The user the ``postgresql`` package creates, which runs the server when we are root."""


class PostgresMissing(RuntimeError):
    """PostgreSQL's server cannot be run here (with what to do about it)."""


def missing_server() -> PostgresMissing:
    """The error when no server binaries are installed."""
    return PostgresMissing(
        f"PostgreSQL's server is not installed (no {SERVER_GLOB}/initdb), and the"
        " PostgreSQL tests need one: run the tests with ./dev test, which installs"
        " Debian's postgresql package when it runs as root, or install it yourself"
        " (sudo apt-get install postgresql)"
    )


def server_bin() -> Path:
    """The ``bin`` directory of the newest PostgreSQL server installed.

    Raises:
        PostgresMissing: none is installed.
    """
    found = [
        path
        for path in Path("/").glob(SERVER_GLOB.lstrip("/"))
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file()
    ]
    if not found:
        raise missing_server()
    return max(found, key=lambda path: _version(path.parent.name))


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (as of now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """A server in ``root`` (data, socket, log), which :func:`running_server` starts.

    ``root`` must be empty, and traversable by :data:`SERVER_USER` when we are root.
    """

    def __init__(self, root: Path, *, bin_dir: Path | None = None) -> None:
        self.bin = bin_dir if bin_dir is not None else server_bin()
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.log = root / "server.log"
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self._as_user = os.geteuid() == 0
        self._databases = 0

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        """The URL of ``database``, with the password of the ``postgres`` role (or ``password``)."""
        secret = self.password if password is None else password
        return f"postgresql://postgres:{secret}@127.0.0.1:{self.port}/{database}"

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one of the server's programs as the user the server runs as.

        Raises:
            PostgresMissing: it failed (its output, and the server's log, say why).
        """
        command = [str(self.bin / program), *args]
        if self._as_user:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=False, cwd=self.root
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise PostgresMissing(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                + (f"\nserver log {self.log}:\n{log}" if log else "")
            )
        return done

    def start(self) -> None:
        """Create the cluster and start the server; it accepts connections on return."""
        if self._as_user:
            _hand_over(self.root)
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        if self._as_user:
            shutil.chown(password_file, SERVER_USER)
        self.run(
            "initdb", "--pgdata", str(self.data), "--username", SERVER_USER,
            "--auth-local=trust", "--auth-host=scram-sha-256",
            f"--pwfile={password_file}", "--no-sync", "--encoding=UTF8", "--locale=C",
        )  # fmt: skip
        password_file.unlink()
        self.socket_dir.mkdir()
        if self._as_user:
            shutil.chown(self.socket_dir, SERVER_USER)
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        )
        self.run("pg_ctl", "--pgdata", str(self.data), "--log", str(self.log),
                 "--options", options, "--wait", "start")  # fmt: skip

    def stop(self) -> None:
        """Stop the server (its connections are closed first); waits until it has exited."""
        self.run("pg_ctl", "--pgdata", str(self.data), "--mode", "fast", "--wait", "stop")

    def running(self) -> bool:
        """Whether the server's postmaster is running (``pg_ctl status``)."""
        try:
            self.run("pg_ctl", "--pgdata", str(self.data), "status")
        except PostgresMissing:
            return False
        return True

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database (named ``test_N`` unless ``name`` is given); its URL."""
        if name is None:
            self._databases += 1
            name = f"test_{self._databases}"
        self._admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop the database ``name``, closing the connections still open to it."""
        self._admin(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(statement)


def _hand_over(root: Path) -> None:
    """Give ``root`` to :data:`SERVER_USER`, or say why that user cannot use it."""
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresMissing(
            f"PostgreSQL refuses to run as root, and there is no {SERVER_USER!r} user to run"
            " it as: install Debian's postgresql package (apt-get install postgresql),"
            " which creates that user"
        ) from None
    shutil.chown(root, SERVER_USER, SERVER_USER)
    for parent in root.parents:
        if not os.stat(parent).st_mode & 0o001:
            raise PostgresMissing(
                f"the user {SERVER_USER!r} cannot reach {root}: {parent} is not"
                " traversable by other users (set TMPDIR to a directory that is)"
            )


@contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A server started in a new temporary directory; stopped and removed on exit.

    Raises:
        PostgresMissing: there is no server to run, or it did not start.
    """
    root = Path(tempfile.mkdtemp(prefix="planloop-postgres-"))
    try:
        server = PostgresServer(root)
        try:
            server.start()
            yield server
        finally:
            if (server.data / "postmaster.pid").exists():  # started, even if not all went well
                server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# The fixtures (tests/conftest.py makes them every test's).


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, started on first use and stopped at the end."""
    try:
        with running_server() as server:
            yield server
    except PostgresMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def postgresql_url(postgresql_server: PostgresServer) -> str:
    """The URL of the database ``planloop_test`` on the session's server, shared by its tests."""
    return postgresql_server.create_database("planloop_test")


@pytest.fixture
def fresh_postgresql_url(postgresql_server: PostgresServer) -> Iterator[str]:
    """The URL of a new database of the test's own (``test_N``), dropped after it."""
    url = postgresql_server.create_database()
    yield url
    postgresql_server.drop_database(url.rsplit("/", 1)[1])
