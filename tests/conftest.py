from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from planloop.engine.durable import close_stores


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
