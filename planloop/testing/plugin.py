"""pytest fixtures for testing planloop agents and workflows.

pytest loads this plugin by itself wherever planloop is installed (the
``pytest11`` entry point ``planloop``); ``-p no:planloop`` turns it off.

Fixtures:

* ``scripted_model``: a factory, ``scripted_model(["answer", ToolCall(...)])``,
  that makes :class:`~planloop.testing.ScriptedModel` objects; the models made
  during the test are in ``scripted_model.made``.
* ``planloop_store``: a fresh :class:`~planloop.SQLiteStore` in the test's
  ``tmp_path``, closed after the test.
* ``planloop_diagrams``: the directory every run of the test draws its picture
  in (through ``PLANLOOP_DIAGRAM_DIR``). When the test fails, the pictures are
  kept in ``$PLANLOOP_FAILURES/<test>/`` (default ``.planloop/failures/<test>/``)
  and the failure report names that directory; when it passes, nothing is kept.

Example (a test file)::

    from planloop import Agent
    from planloop.models import ToolCall

    def test_agent_answers(scripted_model, planloop_store, planloop_diagrams):
        model = scripted_model([ToolCall("add", {"a": 1, "b": 2}), "3"])
        result = Agent(model, [add], store=planloop_store).run_sync("1 + 2?")
        assert result.output == "3"
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from planloop.engine.store import SQLiteStore
    from planloop.testing.scripted import ScriptedModel, ScriptedResponse

__all__ = [
    "ScriptedModels",
    "planloop_diagrams",
    "planloop_store",
    "pytest_runtest_makereport",
    "scripted_model",
]

_STAGING = pytest.StashKey[Path]()
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ScriptedModels:
    """What the ``scripted_model`` fixture gives: call it to make a scripted model.

    Example:
        >>> models = ScriptedModels()
        >>> model = models(["hello"], name="greeter")
        >>> model.name, model.remaining, len(models.made)
        ('greeter', 1, 1)
    """

    def __init__(self) -> None:
        self.made: list[ScriptedModel] = []
        """Every model made so far, oldest first."""

    def __call__(
        self, responses: Iterable[ScriptedResponse], *, delay: float = 0.0, name: str = "scripted"
    ) -> ScriptedModel:
        """A :class:`~planloop.testing.ScriptedModel` playing ``responses``."""
        from planloop.testing.scripted import ScriptedModel

        model = ScriptedModel(responses, delay=delay, name=name)
        self.made.append(model)
        return model


@pytest.fixture
def scripted_model() -> ScriptedModels:
    """A factory of scripted models: ``scripted_model(responses)`` (see :class:`ScriptedModels`)."""
    return ScriptedModels()


@pytest.fixture
def planloop_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """A fresh SQLite store in ``tmp_path``: pass it as ``store=`` to record runs there."""
    from planloop.engine.store import SQLiteStore

    store = SQLiteStore(tmp_path / "planloop.db")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def planloop_diagrams(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The directory the test's runs draw their pictures in (``<run_id>.svg`` each).

    Kept in ``$PLANLOOP_FAILURES/<test>/`` if the test fails; the report names it.
    """
    staging = tmp_path_factory.mktemp("planloop-diagrams")
    monkeypatch.setenv("PLANLOOP_DIAGRAM_DIR", str(staging))
    request.node.stash[_STAGING] = staging
    return staging


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    """Keep the pictures of a failing test's runs and name their directory in the report."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    staging = item.stash.get(_STAGING, None)
    if staging is not None and report.failed and call.when in ("setup", "call"):
        kept = _keep(staging, item.nodeid)
        if kept:
            report.sections.append(
                (
                    "planloop diagrams",
                    f"pictures of the {len(kept)} run(s) of this test: {kept[0].parent}",
                )
            )


def _keep(staging: Path, nodeid: str) -> list[Path]:
    pictures = sorted(staging.glob("*.svg"))
    if not pictures:
        return []
    from planloop.testing.failures import failures_dir

    target = (failures_dir() / (_UNSAFE.sub("_", nodeid).strip("._") or "test")).absolute()
    target.mkdir(parents=True, exist_ok=True)
    kept = []
    for picture in pictures:
        kept.append(Path(shutil.copy2(picture, target / picture.name)))
    return kept
