"""The ``planloop`` command, run as users run it: the installed console script."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from planloop import Trace
from planloop.testing import check_trace
from tests._cli_agents import AGENTS

PLANLOOP = str(Path(sys.executable).parent / "planloop")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLANLOOP, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.usefixtures("no_model_env")
def test_demo_runs_offline_and_writes_a_diagram(tmp_path: Path) -> None:
    done = run("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "planner: rule-based Python (not an LLM)" in out
    assert "plan --Planned--> act (5 steps)" in out
    assert "start  lookup_oslo: lookup_city(name='Oslo')" in out
    assert "answer: Oslo: 1580.9 people/km²; Stockholm: 5238.0 people/km²; " in out
    assert "Stockholm is denser, 3.31× Oslo" in out
    svg = Path(out.split("diagram: ")[1].strip())
    assert svg.is_absolute() or (tmp_path / svg).exists()
    svg_path = svg if svg.is_absolute() else tmp_path / svg
    assert "<svg" in svg_path.read_text()
    trace = Trace.from_json(svg_path.with_suffix(".json").read_text())
    check_trace(trace)
    # the two lookups ran in parallel: the second started before the first ended
    events = [e for e in trace.events if e.kind in ("step_started", "step_finished")]
    order = [(e.kind, getattr(e, "step_id", None) or e.result.step_id) for e in events]
    assert order[:2] == [("step_started", "lookup_oslo"), ("step_started", "lookup_stockholm")]


@pytest.mark.usefixtures("no_model_env")
def test_demo_with_an_unknown_city_explains(tmp_path: Path) -> None:
    done = run("demo", "--question", "What about Paris?", cwd=tmp_path)
    assert done.returncode == 0
    assert "answer: I know these cities: Bergen, Copenhagen," in done.stdout


# --- the demo with a chat model ---------------------------------------------------------

MODEL_ENV = ("PLANLOOP_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY")


@pytest.fixture
def no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MODEL_ENV:
        monkeypatch.delenv(name, raising=False)


def chat_server() -> Any:
    """tests/models/chat_server.py: a chat-completions server on 127.0.0.1 (the test
    directories are not packages, so it is loaded by path)."""
    if "chat_server" not in sys.modules:
        path = Path(__file__).parent / "models" / "chat_server.py"
        spec = importlib.util.spec_from_file_location("chat_server", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["chat_server"] = module
        spec.loader.exec_module(module)
    return sys.modules["chat_server"]


@pytest.mark.usefixtures("no_model_env")
def test_demo_with_a_model_plans_with_it_and_says_which(tmp_path: Path) -> None:
    cs = chat_server()
    script = [
        cs.calls(
            ("lookup_city", {"name": "Oslo"}, "c1"), ("lookup_city", {"name": "Stockholm"}, "c2")
        ),
        cs.calls(
            ("density", {"population": 717710, "area_km2": 454.0}, "c3"),
            ("density", {"population": 984748, "area_km2": 188.0}, "c4"),
        ),
        cs.calls(("compare", {"a": 1580.9, "b": 5238.0}, "c5")),
        cs.answer("Stockholm is denser, 3.31 times Oslo.", usage=(300, 12)),
    ]
    with cs.ChatServer(script) as server:
        done = run("demo", "--model", "test-model", "--base-url", server.url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"planner: chat model test-model at {server.url} (native tool calls)\n")
    assert "model  test-model: " in out and ", 312 tokens" in out
    assert "start  c1: lookup_city(name='Oslo')" in out
    assert "succeeded c4 -> 5238.0" in out
    assert "answer: Stockholm is denser, 3.31 times Oslo." in out
    first = server.bodies[0]
    assert first["model"] == "test-model"
    assert first["messages"][0]["role"] == "system"
    assert sorted(t["function"]["name"] for t in first["tools"]) == [
        "compare",
        "density",
        "lookup_city",
    ]
    answered = [m["tool_call_id"] for m in server.bodies[-1]["messages"] if m["role"] == "tool"]
    assert answered == ["c1", "c2", "c3", "c4", "c5"]
    svg = Path(out.split("diagram: ")[1].strip())
    trace = Trace.from_json((tmp_path / svg).with_suffix(".json").read_text())
    check_trace(trace)


@pytest.mark.usefixtures("no_model_env")
def test_demo_takes_the_model_from_the_environment_and_reports_a_refused_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cs = chat_server()
    key = "sk-cli-test-refused-0001"
    with cs.ChatServer([cs.error(401, "Incorrect API key provided")]) as server:
        monkeypatch.setenv("PLANLOOP_MODEL", "env-model")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", key)
        done = run("demo", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.startswith(f"planner: chat model env-model at {server.url} ")
    assert (
        f"error: the planner raised ModelAuthError: the model server at {server.url} refused "
        "the API key (HTTP 401): Incorrect API key provided; check OPENAI_API_KEY"
    ) in done.stdout
    assert server.requests[0].headers["authorization"] == f"Bearer {key}"
    assert key not in done.stdout
    svg = tmp_path / Path(done.stdout.split("diagram: ")[1].strip())
    assert "<svg" in svg.read_text() and key not in svg.read_text()


@pytest.mark.usefixtures("no_model_env")
def test_demo_offline_ignores_the_environment_and_base_url_needs_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = run("demo", "--base-url", "http://localhost:11434/v1", cwd=tmp_path)
    assert done.returncode == 2
    assert "--base-url needs a model: pass --model NAME or set PLANLOOP_MODEL" in done.stderr
    monkeypatch.setenv("PLANLOOP_MODEL", "not-used")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    done = run("demo", "--offline", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("planner: rule-based Python (not an LLM); runs offline\n")


def test_render_prints_dot_and_rejects_bad_traces(tmp_path: Path) -> None:
    run("demo", "--out", "out", cwd=tmp_path)
    [trace_file] = (tmp_path / "out").glob("*.json")
    done = run("render", str(trace_file), "--format", "dot", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("digraph")
    done = run("render", str(trace_file), "-o", "run.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run.png").read_bytes().startswith(b"\x89PNG")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"run_id": 3, "events": [{"kind": "nope"}]}))
    done = run("render", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"Error: {bad}: not a valid planloop trace:\n")


def test_an_output_that_cannot_be_written_is_one_line_with_exit_code_2(tmp_path: Path) -> None:
    run("demo", "--out", "out", cwd=tmp_path)
    [trace_file] = (tmp_path / "out").glob("*.json")
    (tmp_path / "a_file").write_text("x")
    for args in (
        ["-o", "nodir/x.svg"],
        ["-o", "nodir/x.dot"],
        ["-o", "nodir/x.mmd"],
        ["--format", "mermaid", "-o", "nodir/x.txt"],
        ["-o", "nodir/x.png"],
    ):
        done = run("render", str(trace_file), *args, cwd=tmp_path)
        assert (done.returncode, done.stderr) == (
            2,
            f"Error: cannot write {args[-1]}: folder nodir does not exist; "
            "create it or choose another -o\n",
        ), args
    done = run("render", str(trace_file), "-o", "a_file/x.svg", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "Error: cannot write a_file/x.svg: a_file is a file, not a folder; choose another -o\n",
    )
    done = run("demo", "--out", "a_file/sub/pictures", cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (
        2,
        "",
        "Error: cannot write a_file/sub/pictures: a_file is a file, not a folder; "
        "choose another --out\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "out"]


def test_without_graphviz_images_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    # The command in a process with neither a `dot` program nor pygraphviz.
    run("demo", "--out", "out", cwd=tmp_path)
    [trace_file] = (tmp_path / "out").glob("*.json")
    code = """
import sys
sys.modules["pygraphviz"] = None
from planloop.cli import main
main(sys.argv[1:])
"""
    for args in (["render", str(trace_file), "-o", "x.svg"], ["demo", "--out", "again"]):
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": str(tmp_path), "PLANLOOP_STORE": "off"},
        )
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith("Error: cannot render svg: no `dot` program on PATH; ")
        assert "`pip install pygraphviz` or `apt-get install graphviz`" in line
    assert (tmp_path / "again").is_dir()  # the demo's trace is kept: draw it later
    assert [p.suffix for p in (tmp_path / "again").iterdir()] == [".json"]


# --- durable runs: run, runs, show, resume, replay ------------------------------------


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLANLOOP_HOME": str(tmp_path / "home")}
    env.pop("PLANLOOP_STORE", None)
    return subprocess.run(
        [PLANLOOP, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )


def value(out: str, label: str) -> str:
    [line] = [x for x in out.splitlines() if x.startswith(f"{label}:")]
    return line.split(":", 1)[1].strip()


def test_run_lists_shows_draws_and_replays_a_workflow(tmp_path: Path) -> None:
    (tmp_path / "agents.py").write_text(AGENTS)
    done = cli(tmp_path, "run", "agents.py:report")
    assert done.returncode == 0, done.stderr
    assert "plan --Planned--> act (2 steps)\n  start fetch: fetch\n  succeeded fetch\n" in (
        done.stdout
    )
    assert value(done.stdout, "status") == "finished"
    assert value(done.stdout, "output") == "TEXT OF HTTPS://EXAMPLE.ORG"
    run_id = value(done.stdout, "run")

    listed = cli(tmp_path, "runs")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == [
        "RUN",
        "ID",
        "NAME",
        "STARTED",
        "STATUS",
        "STOP",
        "REASON",
        "ITERATIONS",
        "DURATION",
    ]
    cells = row.split()
    assert (cells[0], cells[1], cells[4], cells[5], cells[6]) == (
        run_id,
        "report",
        "finished",
        "-",
        "1",
    )
    assert cells[7].endswith("s")

    shown = cli(tmp_path, "show", run_id, "-o", "run.svg")
    assert shown.returncode == 0, shown.stderr
    assert value(shown.stdout, "definition") == f"{tmp_path / 'agents.py'}:report"
    assert value(shown.stdout, "states") == "plan -> act -> observe -> plan -> finish"
    assert value(shown.stdout, "steps") == "2 (2 succeeded)"
    assert value(shown.stdout, "picture") == "run.svg"
    assert "<svg" in (tmp_path / "run.svg").read_text()

    replayed = cli(tmp_path, "replay", run_id)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines() == [
        f"replayed run {run_id}",
        "states: plan -> act -> observe -> plan -> finish",
        "status: finished",
        "output: TEXT OF HTTPS://EXAMPLE.ORG",
        "the replay matches the recorded run",
    ]


def test_a_stopped_run_exits_1_and_replays(tmp_path: Path) -> None:
    (tmp_path / "agents.py").write_text(AGENTS)
    done = cli(tmp_path, "run", "agents.py:limited", "--input", "Oslo?")
    assert done.returncode == 1, done.stderr
    assert value(done.stdout, "status") == "stopped (max_iterations)"
    replayed = cli(tmp_path, "replay", value(done.stdout, "run"))
    assert replayed.returncode == 0, replayed.stderr
    assert "status: stopped (max_iterations)" in replayed.stdout


def test_a_paused_run_is_approved_in_another_process(tmp_path: Path) -> None:
    (tmp_path / "agents.py").write_text(AGENTS)
    done = cli(tmp_path, "run", "agents.py:careful", "-i", "Oslo?")
    assert done.returncode == 3, done.stderr
    run_id = value(done.stdout, "run")
    assert value(done.stdout, "status") == "paused"
    assert done.stdout.splitlines()[-1] == (
        f"waiting for a decision: planloop resume {run_id} "
        "--approve | --reject MESSAGE | --edit PLAN.json"
    )
    assert cli(tmp_path, "runs").stdout.splitlines()[1].split()[4] == "paused"
    not_yet = cli(tmp_path, "replay", run_id)
    assert (not_yet.returncode, not_yet.stderr) == (
        2,
        f"Error: run {run_id!r} has not ended (it is paused, or its process died); resume "
        "it to its end, then replay it\n",
    )

    resumed = cli(tmp_path, "resume", run_id, "--approve")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("resumed in plan\nplan --Planned--> act (1 step)\n")
    assert value(resumed.stdout, "output") == "Oslo has about 718k people."
    again = cli(tmp_path, "resume", run_id, "--approve")
    assert (again.returncode, again.stderr) == (
        2,
        f"Error: run {run_id!r} already ended (finished); only a paused run or one whose "
        "process died can be resumed. Start a new run instead\n",
    )
    replayed = cli(tmp_path, "replay", run_id)
    assert replayed.returncode == 0, replayed.stderr
    assert "states: plan -> act -> observe -> plan -> finish" in replayed.stdout


def test_a_rejected_plan_is_planned_again_and_paused_again(tmp_path: Path) -> None:
    (tmp_path / "agents.py").write_text(AGENTS)
    run_id = value(cli(tmp_path, "run", "agents.py:careful", "-i", "Oslo?").stdout, "run")
    rejected = cli(tmp_path, "resume", run_id, "--reject", "not now")
    assert rejected.returncode == 3, rejected.stderr
    assert rejected.stdout.startswith(
        "resumed in plan\nplan --Rejected--> observe\nobserve --Continued--> plan\n"
        "paused before act\n"
    )
    approved = cli(tmp_path, "resume", run_id, "--approve")
    assert approved.returncode == 0, approved.stderr
    assert value(approved.stdout, "output") == "Oslo has about 718k people."
    shown = cli(tmp_path, "show", run_id)
    assert value(shown.stdout, "states") == (
        "plan -> observe -> plan -> act -> observe -> plan -> finish"
    )
    replayed = cli(tmp_path, "replay", run_id)
    assert replayed.returncode == 0, replayed.stdout
    assert replayed.stdout.endswith("the replay matches the recorded run\n")


def test_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    (tmp_path / "agents.py").write_text(AGENTS)
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(5)\n")
    (tmp_path / "empty.py").write_text("import planloop\nanswer = 42\n")
    agents = tmp_path / "agents.py"
    db = tmp_path / "home" / "planloop.db"
    cases = [
        (
            ("show", "nope"),
            f"Error: no run 'nope': there is no store at {db} (set PLANLOOP_HOME or --store)",
        ),
        (
            ("run", "agents.py:not_runnable"),
            f"Error: {agents}:not_runnable is not an Agent, Workflow or PlanAndExecute "
            "(its type is int); it defines: helper, careful, limited, report",
        ),
        (
            ("run", "agents.py:helpr"),
            f"Error: {agents} has no 'helpr'; it defines: helper, careful, limited, report",
        ),
        (
            ("run", "exits.py:helper"),
            f"Error: {tmp_path / 'exits.py'}: importing it called sys.exit(5)",
        ),
        (
            ("run", "empty.py:helper"),
            f"Error: {tmp_path / 'empty.py'} has no 'helper'; it defines no Agent, Workflow "
            "or PlanAndExecute at its top level",
        ),
        (("run", "gone.py:helper"), f"Error: {tmp_path / 'gone.py'}: no such file"),
    ]
    for args, message in cases:
        done = cli(tmp_path, *args)
        assert (done.returncode, done.stderr) == (2, message + "\n"), args
    ran = cli(tmp_path, "run", "agents.py:helper")
    assert ran.returncode == 0
    for output in ("nodir/run.svg", "nodir/run.mmd"):
        done = cli(tmp_path, "show", value(ran.stdout, "run"), "-o", output)
        assert (done.returncode, done.stderr) == (
            2,
            f"Error: cannot write {output}: folder nodir does not exist; "
            "create it or choose another -o\n",
        )
        assert value(done.stdout, "status") == "finished"
    assert not (tmp_path / "nodir").exists()
    for command in ("show", "replay", "resume"):
        done = cli(tmp_path, command, "nope")
        assert (done.returncode, done.stderr) == (
            2,
            f"Error: no run 'nope' in the store {db}; `planloop runs` lists the stored runs\n",
        ), command
    paused = value(cli(tmp_path, "run", "agents.py:careful").stdout, "run")
    agents.rename(tmp_path / "moved.py")
    done = cli(tmp_path, "resume", paused, "--approve")
    assert (done.returncode, done.stderr) == (
        2,
        f"Error: {agents}: no such file (the definition of run {paused!r})\n",
    )
    done = cli(tmp_path, "resume", paused, "--approve", "--reject", "no")
    assert done.returncode == 2
    assert done.stderr.endswith(
        "Error: --approve and --reject exclude each other; give one decision\n"
    )
    (tmp_path / "bad.db").write_text("not a database")
    done = cli(tmp_path, "--store", "bad.db", "runs")
    assert (done.returncode, done.stderr) == (
        2,
        f"Error: {tmp_path / 'bad.db'} is not a planloop database (file is not a database). "
        "Point the store at another file (set PLANLOOP_HOME or pass another path). The file "
        "was not modified.\n",
    )


def test_store_option_and_help(tmp_path: Path) -> None:
    (tmp_path / "agents.py").write_text(AGENTS)
    done = cli(tmp_path, "--store", "elsewhere.db", "run", "agents.py:helper")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "elsewhere.db").exists()
    assert cli(tmp_path, "runs").stdout.startswith("no runs recorded yet in ")
    assert len(cli(tmp_path, "--store", "elsewhere.db", "runs").stdout.splitlines()) == 2
    helped = cli(tmp_path, "--help")
    assert "3  the run is paused, waiting for a decision (planloop resume)" in helped.stdout
