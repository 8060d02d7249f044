"""Every test runs with a store of its own, and the session leaves the checkout as it found it.

A run's default store is ``$PLANLOOP_HOME/planloop.db``, else ``./.planloop/planloop.db``
in the working directory, which for the suite is the checkout. The root ``conftest.py``
gives the test process a temporary ``PLANLOOP_HOME`` (inherited by the processes it
starts), each test gets another one, and the child process of tests/_child.py, whose
environment has no ``PLANLOOP_HOME``, runs in a temporary directory. The session fails,
naming the files, if any test left a file in the checkout that git does not track
(tests/_hygiene.py: which files count). The PostgreSQL fixtures of tests/_postgres.py
(a real server, started once per session) are imported here, for every test.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from planloop.engine.durable import close_stores
from tests._hygiene import Snapshot, left_behind, snapshot
from tests._postgres import fresh_postgresql_url, postgresql_server, postgresql_url

__all__ = ["fresh_postgresql_url", "postgresql_server", "postgresql_url"]  # fixtures for all tests

_CHECKOUT = pytest.StashKey[Snapshot | None]()
_LEFT_BEHIND = pytest.StashKey[list[str]]()


@pytest.fixture(autouse=True)
def _own_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Each test records its runs in a store of its own (runs are recorded by default)."""
    monkeypatch.setenv("PLANLOOP_HOME", str(tmp_path_factory.mktemp("planloop-home")))
    yield
    close_stores()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on a fresh event loop (no plugin needed)."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        funcargs = pyfuncitem.funcargs
        names = pyfuncitem._fixtureinfo.argnames
        kwargs: dict[str, Any] = {name: funcargs[name] for name in names}
        asyncio.run(pyfuncitem.obj(**kwargs))
        return True
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help=(
            "rewrite the golden files (DOT in tests/visualize/golden, trace JSON in "
            "tests/engine/golden) from the current code"
        ),
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    session.stash[_CHECKOUT] = snapshot(session.config.rootpath)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the session if its tests left files in the checkout (see tests/_hygiene.py)."""
    before = session.stash.get(_CHECKOUT, None)
    after = snapshot(session.config.rootpath) if before is not None else None
    if before is None or after is None:  # not a git checkout
        return
    leftovers = session.config.stash[_LEFT_BEHIND] = left_behind(before, after)
    if leftovers:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Name the files the tests left in the checkout, after the session's own report."""
    leftovers = config.stash.get(_LEFT_BEHIND, [])
    if leftovers:
        terminalreporter.write_line(
            "the tests left files in the checkout (or something else wrote there meanwhile):",
            red=True,
        )
        for path in leftovers:
            terminalreporter.write_line(f"    {path}", red=True)
