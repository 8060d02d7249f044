"""``diagram_dir=`` and ``PLANLOOP_DIAGRAM_DIR``: a real SVG picture of every run, however it ends.

Real runs, real Graphviz (system ``dot`` or the pygraphviz wheel), real files parsed as XML.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest

import planloop
from planloop import (
    Agent,
    DefinitionError,
    DiagramWarning,
    PlanAndExecute,
    RunResult,
    StepFailed,
    StopReason,
    Workflow,
    _diagrams,
    load_agent_executor,
    load_chat_planner,
)
from planloop._diagrams import file_stem
from planloop.models import ToolCall
from planloop.testing import ScriptedModel
from planloop.visualize import render_dot
from tests._child import run_without_dot

ENV = "PLANLOOP_DIAGRAM_DIR"
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def _no_env_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own PLANLOOP_DIAGRAM_DIR must not leak into these tests.
    monkeypatch.delenv(ENV, raising=False)


@planloop.tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def adding_agent(**options: Any) -> Agent:
    model = ScriptedModel([ToolCall("add", {"a": 2, "b": 3}), "2 + 3 = 5"])
    return Agent(model, [add], **options)


def picture(path: Path) -> list[str]:
    """The texts drawn in the SVG file at ``path`` (it must be well-formed SVG)."""
    root = ET.fromstring(path.read_bytes())
    assert root.tag == f"{SVG_NS}svg"
    return [t.text or "" for t in root.iter(f"{SVG_NS}text")]


def only_file(directory: Path) -> Path:
    files = sorted(directory.iterdir())
    assert len(files) == 1, files
    return files[0]


# --- finished runs ------------------------------------------------------------------


def test_agent_writes_a_picture_of_its_run_into_a_new_directory(tmp_path: Path) -> None:
    target = tmp_path / "pictures" / "agents"  # does not exist yet
    result = adding_agent(diagram_dir=target, name="adder").run_sync("What is 2 + 3?")
    assert result.output == "2 + 3 = 5"
    svg = only_file(target)
    assert svg.name == f"{result.run_id}.svg"
    texts = picture(svg)
    assert texts[0].startswith("adder · finished · 1 iteration")
    # the states visited, with counts, and the step that ran (id · tool) with its output
    assert {"plan ×2", "act ×1", "observe ×1", "call_1 · add", "= 5"} <= set(texts)


def test_each_run_writes_its_own_file_named_by_run_id(tmp_path: Path) -> None:
    agent = adding_agent(diagram_dir=str(tmp_path))  # a str works as well as a Path
    first = agent.run_sync("x", run_id="first")
    assert first.output == "2 + 3 = 5"
    assert [p.name for p in tmp_path.iterdir()] == ["first.svg"]
    wf = Workflow("two", diagram_dir=tmp_path)
    wf.step(lambda: 1, id="only")
    wf.run_sync(run_id="second")
    wf.run_sync(run_id="third")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.svg", "second.svg", "third.svg"]
    assert "only · <lambda>" in picture(tmp_path / "third.svg")


def test_a_run_id_cannot_write_outside_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "pics"
    adding_agent(diagram_dir=target).run_sync("x", run_id="../escape/run 1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pics"]
    assert [p.name for p in target.iterdir()] == ["%2E.%2Fescape%2Frun%201.svg"]


# Ids that a lossy mapping (unsafe characters to "_", dots stripped) sent to the same file.
TRICKY_IDS = [
    *(".", "..", "...", "run", " ", "*", "_", "a/b", "a\\b", "a_b", "a b", "a%2Fb"),
    *("../escape/run 1", "Run", "RUN", "café", "cafe\u0301", "日本語", "a~b", "-x", ".hidden"),
    *("x" * 300, "x" * 300 + "y", "é" * 200, "/" * 100, "\x00"),
]


def one_step(**options: Any) -> Workflow:
    wf = Workflow("tiny", **options)
    wf.step(lambda: 1, id="only")
    return wf


def test_different_run_ids_write_different_files_inside_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "pics"
    wf = one_step(diagram_dir=target)
    for run_id in TRICKY_IDS:
        assert wf.run_sync(run_id=run_id).output == 1
    names = sorted(p.name for p in target.iterdir())
    assert len(names) == len(TRICKY_IDS)  # none overwrote another (case kept: Linux)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pics"]
    for name in names:
        assert name.endswith(".svg") and not name.startswith(".")
        assert len(name.encode()) <= 255  # the file-name limit of common filesystems
        assert "only · <lambda>" in picture(target / name)


def test_file_names_keep_safe_ids_and_escape_the_others_readably() -> None:
    stems = {run_id: file_stem(run_id) for run_id in TRICKY_IDS}
    assert len(set(stems.values())) == len(TRICKY_IDS)
    for kept in ("run", "Run", "nightly-1", "a.b", "_", "a_b", "-x", "f3c9e1d2a4b5"):
        assert file_stem(kept) == kept
    assert [stems[i] for i in (".", "..", " ", "*", "a/b", "a\\b", "café", ".hidden")] == [
        "%2E",
        "%2E.",
        "%20",
        "%2A",
        "a%2Fb",
        "a%5Cb",
        "caf%C3%A9",
        "%2Ehidden",
    ]
    assert stems["a~b"] == "a%7Eb" and stems["a%2Fb"] == "a%252Fb"
    for run_id, stem in stems.items():  # a short name is the id, %-escaped: it reads back
        if "~" not in stem:
            assert unquote_to_bytes(stem).decode() == run_id
    # Too long for a file name: a readable head and a hash of the whole id.
    long_ids = ["x" * 300, "x" * 300 + "y", "é" * 200, "/" * 100]
    for run_id in long_ids:
        head, _, digest = stems[run_id].partition("~")
        assert len(stems[run_id]) <= 200 and len(digest) == 16
        assert run_id.startswith(unquote_to_bytes(head).decode())
        assert len(head) > 150
    assert file_stem("")[0] == "~" and file_stem("") != file_stem("~")


def test_kept_failures_are_named_like_diagram_dir_pictures(tmp_path: Path) -> None:
    # planloop.testing keeps a failing run's trace and picture under the same file names.
    from planloop.testing import save_failure

    wf = one_step(store=False)
    for run_id in (".", "..", "x" * 300):
        paths = save_failure(wf.run_sync(run_id=run_id), directory=tmp_path)
        assert [p.name for p in paths] == [f"{file_stem(run_id)}.json", f"{file_stem(run_id)}.svg"]
    assert len(list(tmp_path.iterdir())) == 6


# --- stopped and failed runs --------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "reason"),
    [
        ({"max_iterations": 2}, StopReason.max_iterations),
        ({"max_model_calls": 1}, StopReason.budget),
    ],
)
def test_a_run_stopped_by_a_limit_writes_its_picture(
    tmp_path: Path, limit: dict[str, int], reason: StopReason
) -> None:
    model = ScriptedModel([ToolCall("add", {"a": 1, "b": 1})] * 5)
    result = Agent(model, [add], diagram_dir=tmp_path, **limit).run_sync("loop")
    assert result.stop_reason is reason
    texts = picture(tmp_path / f"{result.run_id}.svg")
    assert texts[0].startswith(f"agent · stopped: {reason.value}")
    assert reason.value in texts  # the stop reason on the edge into `stopped`


def test_a_run_past_its_deadline_writes_its_picture(tmp_path: Path) -> None:
    async def slow() -> None:
        await asyncio.sleep(30)

    wf = Workflow("deadline", max_execution_time=0.2, diagram_dir=tmp_path)
    wf.step(slow, id="slow_step")
    result = wf.run_sync()
    assert result.stop_reason is StopReason.max_execution_time
    texts = picture(tmp_path / f"{result.run_id}.svg")
    assert texts[0].startswith("deadline · stopped: max_execution_time")
    assert "slow_step · slow" in texts
    assert "cancelled while running" in texts


async def test_a_cancelled_run_writes_its_picture_and_stays_cancelled(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def wait_forever() -> None:
        started.set()
        await asyncio.sleep(30)

    wf = Workflow("interrupted", diagram_dir=tmp_path)
    wf.step(wait_forever, id="waiting")
    task = asyncio.create_task(wf.run(run_id="cancelled-run"))
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    texts = picture(tmp_path / "cancelled-run.svg")
    assert texts[0].startswith("interrupted · stopped: cancelled")
    assert "waiting · wait_forever" in texts


def failing_workflow(**options: Any) -> Workflow:
    def fetch() -> int:
        return 1

    def boom(x: int) -> int:
        raise ValueError("disk on fire")

    def after(y: int) -> int:
        return y

    wf = Workflow("fails", **options)
    wf.step(after, y=wf.step(boom, x=wf.step(fetch)))
    return wf


def test_a_failing_workflow_step_raises_step_failed_and_writes_the_picture(
    tmp_path: Path,
) -> None:
    with pytest.raises(StepFailed, match="disk on fire") as info:
        failing_workflow(diagram_dir=tmp_path).run_sync(run_id="broken")
    assert info.value.step_id == "boom"
    assert info.value.result is not None
    assert info.value.result.run_id == "broken"
    texts = picture(tmp_path / "broken.svg")
    assert texts[0].startswith("fails · stopped: error")
    assert {"boom · boom", "ValueError: disk on fire", "after · after", "skipped"} <= set(texts)


# --- PLANLOOP_DIAGRAM_DIR -------------------------------------------------------------


def test_the_environment_variable_is_read_when_the_run_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = adding_agent()  # built before the variable is set
    env_dir = tmp_path / "from_env"
    monkeypatch.setenv(ENV, str(env_dir))
    result = agent.run_sync("x")
    assert only_file(env_dir).name == f"{result.run_id}.svg"
    assert "call_1 · add" in picture(env_dir / f"{result.run_id}.svg")
    monkeypatch.delenv(ENV)
    adding_agent().run_sync("x")
    monkeypatch.setenv(ENV, "")  # empty: the same as unset
    adding_agent().run_sync("x")
    assert [p.name for p in env_dir.iterdir()] == [f"{result.run_id}.svg"]


def test_the_argument_wins_over_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path / "env"))
    result = adding_agent(diagram_dir=tmp_path / "arg").run_sync("x")
    assert only_file(tmp_path / "arg").name == f"{result.run_id}.svg"
    assert not (tmp_path / "env").exists()


def test_a_workflow_uses_the_environment_variable_also_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    with pytest.raises(StepFailed) as info:
        failing_workflow().run_sync()
    assert info.value.result is not None
    assert "boom · boom" in picture(tmp_path / f"{info.value.result.run_id}.svg")


# --- PlanAndExecute and sub-agents ----------------------------------------------------


def plan_and_execute(**options: Any) -> PlanAndExecute:
    planner_model = ScriptedModel(["Plan:\n1. Find it\n2. Say it\n<END_OF_PLAN>"])
    executor = load_agent_executor(ScriptedModel(["found: 42", "The answer is 42."]), [])
    return PlanAndExecute(load_chat_planner(planner_model), executor, **options)


def test_plan_and_execute_writes_one_picture_with_its_sub_agents_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The variable is set too: the sub-agents (nested runs) must not write their own files.
    monkeypatch.setenv(ENV, str(tmp_path / "env"))
    result = plan_and_execute(diagram_dir=tmp_path / "arg").run_sync("What is the answer?")
    assert result.output == "The answer is 42."
    svg = only_file(tmp_path / "arg")
    assert svg.name == f"{result.run_id}.svg"
    texts = picture(svg)
    assert texts[0].startswith("plan_and_execute · finished")
    assert {"step_1 · execute_step", "step_2 · execute_step"} <= set(texts)
    assert any(t.startswith("sub-agent of step_1 · finished") for t in texts)
    assert any(t.startswith("sub-agent of step_2 · finished") for t in texts)
    assert not (tmp_path / "env").exists()


def test_with_only_the_variable_plan_and_execute_still_writes_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, str(tmp_path))
    result = plan_and_execute().run_sync("What is the answer?")
    assert only_file(tmp_path).name == f"{result.run_id}.svg"


def test_an_executor_given_its_own_diagram_dir_writes_one_file_per_step(tmp_path: Path) -> None:
    planner_model = ScriptedModel(["Plan:\n1. Find it\n2. Say it\n<END_OF_PLAN>"])
    executor = load_agent_executor(
        ScriptedModel(["found: 42", "The answer is 42."]), [], diagram_dir=tmp_path / "steps"
    )
    result = PlanAndExecute(load_chat_planner(planner_model), executor).run_sync("x")
    files = sorted((tmp_path / "steps").iterdir())
    assert sorted(p.name for p in files) == sorted(
        f"{child.run_id}.svg" for child in result.trace.children.values()
    )
    assert len(files) == 2
    assert all(picture(p)[0].startswith("step executor · finished") for p in files)


# --- failures to write never change the run -------------------------------------------


def plain(result: RunResult) -> tuple[Any, ...]:
    return (result.output, result.status, result.stop_reason, [str(s) for s in result.trace.states])


def test_a_target_that_became_a_file_warns_and_leaves_the_result_alone(tmp_path: Path) -> None:
    target = tmp_path / "pics"
    target.mkdir()
    agent = adding_agent(diagram_dir=target)
    target.rmdir()
    target.write_text("not a directory")
    with pytest.warns(DiagramWarning) as caught:
        result = agent.run_sync("What is 2 + 3?")
    assert plain(result) == plain(adding_agent().run_sync("What is 2 + 3?"))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"diagram_dir={str(target)!r}: it is a file, not a directory" in message
    assert "pass diagram_dir= a writable directory" in message
    assert target.read_text() == "not a directory"


def test_an_unusable_environment_directory_warns_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv(ENV, str(blocker / "pictures"))
    with pytest.warns(DiagramWarning) as caught:
        result = adding_agent().run_sync("What is 2 + 3?")
    assert result.output == "2 + 3 = 5"
    message = str(caught[0].message)
    assert f"{ENV}={str(blocker / 'pictures')!r}" in message
    assert f"{str(blocker)!r} is a file, so no directory can be made under it" in message
    assert f"point {ENV} to a writable directory, or unset it" in message


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere"
)
def test_a_read_only_directory_warns_with_the_reason(tmp_path: Path) -> None:
    target = tmp_path / "read_only"
    target.mkdir()
    target.chmod(0o500)
    try:
        with pytest.warns(DiagramWarning, match="Permission denied"):
            result = adding_agent(diagram_dir=target).run_sync("x")
    finally:
        target.chmod(0o700)
    assert result.output == "2 + 3 = 5"
    assert list(target.iterdir()) == []


def test_a_failed_run_still_raises_its_own_error_when_the_picture_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv(ENV, str(blocker))
    with pytest.warns(DiagramWarning), pytest.raises(StepFailed, match="disk on fire"):
        failing_workflow().run_sync()
    # Even with warnings turned into errors, the run's own error is what comes out.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagramWarning)
        with pytest.raises(StepFailed, match="disk on fire"):
            failing_workflow().run_sync()
        # For a run that did not fail, the error filter is honoured.
        with pytest.raises(DiagramWarning, match="is a file"):
            adding_agent().run_sync("x")


def test_an_on_end_the_loop_already_has_still_runs(tmp_path: Path) -> None:
    import dataclasses

    seen: list[str] = []

    class Recording(Agent):
        def _loop_config(self) -> Any:
            config = super()._loop_config()
            return dataclasses.replace(config, on_end=lambda r: seen.append(r.run_id))

    agent = Recording(ScriptedModel(["done"]), diagram_dir=tmp_path)
    result = agent.run_sync("x", run_id="both")
    assert seen == ["both"]
    assert result.output == "done"
    assert (tmp_path / "both.svg").exists()


def test_without_graphviz_the_dot_text_is_saved_and_the_warning_names_the_install(
    tmp_path: Path,
) -> None:
    # A process with neither a `dot` program on PATH nor pygraphviz importable.
    code = f"""
import sys, warnings
sys.modules["pygraphviz"] = None
import planloop
from planloop.testing import ScriptedModel
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    agent = planloop.Agent(ScriptedModel(["hello"]), diagram_dir={str(tmp_path / "pics")!r})
    result = agent.run_sync("x")
print(result.output, result.status.value)
for w in caught:
    print(w.category.__name__, w.message)
"""
    done = run_without_dot(code, tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "hello finished"
    assert len(lines) == 2
    dot = only_file(tmp_path / "pics")  # the DOT text, drawable once Graphviz is installed
    assert dot.suffix == ".dot" and dot.read_text(encoding="utf-8").startswith("digraph")
    assert lines[1].startswith(
        f"DiagramWarning planloop saved the diagram of run {dot.stem!r} as DOT text, {dot}, "
    )
    assert "no `dot` program on PATH; pygraphviz is not installed" in lines[1]
    assert "`pip install pygraphviz` or `apt-get install graphviz`" in lines[1]
    assert lines[1].endswith(f"Draw it with: dot -Tsvg {dot} -o {dot.with_suffix('.svg')}")


# --- a picture too slow to draw -----------------------------------------------------------


def test_a_picture_too_slow_to_draw_is_saved_as_dot_and_the_run_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Graphviz gets RENDER_TIMEOUT seconds at a run's end; no drawing fits in a millisecond.
    monkeypatch.setattr(_diagrams, "RENDER_TIMEOUT", 0.001)
    (tmp_path / "slow.svg").write_text("an earlier run's picture")
    started = time.monotonic()
    with pytest.warns(DiagramWarning) as caught:
        result = one_step(diagram_dir=tmp_path, store=False).run_sync(run_id="slow")
    assert time.monotonic() - started < 60  # not stuck drawing (generous: a shared CPU)
    assert result.output == 1 and result.status.value == "finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.dot"]
    [warning] = caught
    message = str(warning.message)
    dot, svg = tmp_path / "slow.dot", tmp_path / "slow.svg"
    assert message.startswith(f"planloop saved the diagram of run 'slow' as DOT text, {dot}, ")
    assert "took longer than 0.001 s" in message
    assert message.endswith(f"Draw it with: dot -Tsvg {dot} -o {svg}")
    # Nothing is lost: the DOT text draws the same picture, given the time.
    svg.write_bytes(render_dot(dot.read_text(encoding="utf-8"), "svg"))
    assert "only · <lambda>" in picture(svg)
    # Drawn in time, the picture replaces the DOT text of an earlier run with the same id.
    monkeypatch.setattr(_diagrams, "RENDER_TIMEOUT", 60.0)
    one_step(diagram_dir=tmp_path, store=False).run_sync(run_id="slow")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.svg"]
    assert "only · <lambda>" in picture(svg)


# --- the argument is checked up front ---------------------------------------------------


def _make(kind: str) -> Callable[[Any], object]:
    if kind == "agent":
        return lambda d: Agent(ScriptedModel(["x"]), diagram_dir=d)
    if kind == "workflow":
        return lambda d: Workflow("w", diagram_dir=d)
    return lambda d: plan_and_execute(diagram_dir=d)


@pytest.mark.parametrize("kind", ["agent", "workflow", "plan_and_execute"])
def test_a_bad_diagram_dir_is_a_definition_error_before_anything_runs(
    tmp_path: Path, kind: str
) -> None:
    make = _make(kind)
    a_file = tmp_path / "file.svg"
    a_file.write_text("x")
    with pytest.raises(DefinitionError, match="it is a file, not a directory; use a directory"):
        make(a_file)
    with pytest.raises(DefinitionError, match="is a file, so no directory can be made under it"):
        make(a_file / "sub")
    with pytest.raises(DefinitionError, match="names no directory"):
        make("")
    with pytest.raises(DefinitionError, match="use a directory path"):
        make(42)
    assert not (tmp_path / "fine").exists()
    made = make(tmp_path / "fine")  # a missing directory is fine: it is made at the end of a run
    assert getattr(made, "diagram_dir", None) == tmp_path / "fine"
    assert not (tmp_path / "fine").exists()
