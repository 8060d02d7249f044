"""What a run's trace becomes as JSON: any Python string a tool can return is
recordable, secrets are redacted, and the JSON loads and draws again."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import planloop
from planloop import Agent, SQLiteStore, Trace, Workflow
from planloop.engine.redact import REDACTED
from planloop.engine.trace import StepStarted
from planloop.errors import RunError, StoreError, TraceError
from planloop.models import OpenAIChat, ToolCall
from planloop.testing import ScriptedModel

LONE = "report-\udc80.txt"  # what os.listdir gives for a file name that is not UTF-8
SHOWN = "report-\ufffd.txt"  # how JSON holds it


def _chat_server() -> ModuleType:
    path = Path(__file__).parents[1] / "models" / "chat_server.py"
    spec = importlib.util.spec_from_file_location("_chat_server_for_traces", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "planloop.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


@planloop.tool
def listing(path: str) -> str:
    """List a directory."""
    return LONE


def _surrogate_agent(**options: Any) -> Agent:
    model = ScriptedModel([ToolCall("listing", {"path": "in-\udc81"}), "found report-\udc82.txt"])
    return Agent(model, [listing], name="lister-\udc83", **options)


def _started(trace: Trace) -> StepStarted:
    return next(e for e in trace.events if isinstance(e, StepStarted))


# --- lone surrogates -------------------------------------------------------------------


def test_a_tool_output_with_a_lone_surrogate_is_recorded_by_the_store(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    result = _surrogate_agent(store=path).run_sync("list it")
    assert result.status == "finished"
    assert result.output == "found report-\udc82.txt"  # in memory: the real value
    assert result.steps[0].output == LONE
    with SQLiteStore(path) as store:
        stored = store.load_trace(result.run_id)
        assert store.get_run(result.run_id).name == "lister-\ufffd"
    assert stored.step_results[0].output == SHOWN
    assert _started(stored).args == {"path": "in-\ufffd"}
    assert stored.output == "found report-\ufffd.txt"
    assert stored.started is not None and stored.started.name == "lister-\ufffd"


def test_to_json_replaces_lone_surrogates_and_reads_back(tmp_path: Path) -> None:
    result = _surrogate_agent(store=False).run_sync("list \udc84")
    text = result.trace.to_json()
    text.encode("utf-8")  # valid UTF-8 text, for every JSON reader
    back = Trace.from_json(text)
    assert back.step_results[0].output == SHOWN
    assert back.input == "list \ufffd"
    assert back.output == "found report-\ufffd.txt"
    assert [str(s) for s in back.states] == [str(s) for s in result.trace.states]
    # the same trace again: nothing is left to replace
    assert Trace.from_json(back.to_json()) == back


def test_surrogate_pairs_become_their_character_and_keys_are_replaced_too() -> None:
    def decide(ctx: planloop.RunContext) -> planloop.Answer:
        return planloop.Answer({"k\udc80": ["\ud83d\ude00", "\ud800"]})

    agent = Agent(None, [], planner=planloop.FunctionPlanner(decide), store=False)
    back = Trace.from_json(agent.run_sync("x").trace.to_json(indent=2))
    assert back.output == {"k\ufffd": ["\U0001f600", "\ufffd"]}


def test_a_checkpoint_and_a_run_row_with_lone_surrogates_are_stored(tmp_path: Path) -> None:
    import datetime

    with SQLiteStore(tmp_path / "runs.db") as store:
        store.create_run(
            "r1",
            name="n\udc80",
            started_at=datetime.datetime.now(datetime.UTC),
            definition='{"tool": "t\udc81"}',
        )
        store.save_checkpoint("r1", 0, {"state": "s\udc80"})
        store.save_checkpoint("r1", 1, {"state": "plan", "pending": {"q": "ok\udc80?"}})
        assert store.load_checkpoint("r1").state == {  # type: ignore[union-attr]
            "state": "plan",
            "pending": {"q": "ok\ufffd?"},
        }
        run = store.get_run("r1")
    assert run.name == "n\ufffd"
    assert run.definition == '{"tool": "t\ufffd"}'


def test_a_trace_with_a_lone_surrogate_still_draws(tmp_path: Path) -> None:
    from planloop.visualize import render, to_dot

    result = _surrogate_agent(store=False).run_sync("list it")
    saved = tmp_path / "run.json"
    saved.write_text(result.trace.to_json(), encoding="utf-8")
    done = _cli("render", str(saved), "-o", str(tmp_path / "run.dot"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    dot = (tmp_path / "run.dot").read_text(encoding="utf-8")
    assert "\ufffd" in dot
    done = _cli("render", str(saved), "-o", str(tmp_path / "run.svg"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run.svg").read_text(encoding="utf-8").startswith("<?xml")
    # the trace in memory, with its lone surrogates, draws too
    to_dot(result.trace).encode("utf-8")
    render(result.trace, tmp_path / "live.dot")


@planloop.tool
def loop() -> Any:
    """Return a list that contains itself."""
    items: list[Any] = ["start"]
    items.append(items)
    return items


def test_a_value_that_cannot_be_written_is_a_trace_error_naming_it() -> None:
    model = ScriptedModel([ToolCall("loop", {}, id="c1"), "done"])
    result = Agent(model, [loop], store=False).run_sync("go")
    with pytest.raises(TraceError) as err:
        result.trace.to_json()
    assert str(err.value) == (
        f"trace {result.run_id!r} cannot be written as JSON: event 4 (step_finished of"
        " step 'c1'), field 'result': ValueError: Circular reference detected (id"
        " repeated); a value that is not JSON is written as its repr, so give its class"
        " a __repr__ that works (or return JSON values: str, numbers, lists, dicts)"
    )


def test_the_store_says_what_it_could_not_write(tmp_path: Path) -> None:
    model = ScriptedModel([ToolCall("loop", {}, id="c1"), "done"])
    with pytest.raises(RunError) as err:
        Agent(model, [loop], store=tmp_path / "runs.db").run_sync("go")
    assert str(err.value) == (
        f"the store could not record run {err.value.result.run_id!r}: the step_finished"
        " event of step 'c1' cannot be written as JSON: field 'result': ValueError: Circular"
        " reference detected (id repeated); a value that is not JSON is written as its"
        " repr, so give its class a __repr__ that works (or return JSON values: str,"
        " numbers, lists, dicts)"
    )
    assert isinstance(err.value.__cause__, TraceError)


# --- secrets ---------------------------------------------------------------------------

SECRET = "pw-Walrus-5512"
KEY_ARG = "sk-Okapi-2208"
API_KEY = "sk-live-Narwhal-6631"


@planloop.tool
def fetch_page(url: str, api_key: str) -> str:
    """Fetch a page with a key."""
    return f"{SECRET} is the password at {url}"


def _assert_redacted(text: str) -> None:
    for secret in (SECRET, KEY_ARG, API_KEY):
        assert secret not in text
    assert REDACTED in text


def test_to_json_redacts_secrets_and_the_opt_out_keeps_them(tmp_path: Path) -> None:
    planloop.register_secret(SECRET)
    chat = _chat_server()
    replies = [
        chat.calls(("fetch_page", {"url": "https://x.test", "api_key": KEY_ARG}, "c1")),
        chat.answer(f"done; the key I was called with is {API_KEY}"),
    ]
    with chat.ChatServer(replies) as server:
        model = OpenAIChat("test-model", base_url=server.url, api_key=API_KEY, backoff=0.01)
        result = Agent(model, [fetch_page], store=False).run_sync("get it")
    assert result.status == "finished"
    text = result.trace.to_json()
    _assert_redacted(text)
    raw = result.trace.to_json(redact=False)
    for secret in (SECRET, KEY_ARG, API_KEY):
        assert secret in raw
    assert result.output == f"done; the key I was called with is {API_KEY}"  # in memory
    back = Trace.from_json(text)
    assert _started(back).args == {"url": "https://x.test", "api_key": REDACTED}
    assert back.step_results[0].output == f"{REDACTED} is the password at https://x.test"
    assert back.output == f"done; the key I was called with is {REDACTED}"
    indented = result.trace.to_json(indent=2)
    _assert_redacted(indented)
    assert json.loads(indented) == json.loads(text)
    saved = tmp_path / "run.json"
    saved.write_text(text, encoding="utf-8")
    done = _cli("render", str(saved), "-o", str(tmp_path / "run.svg"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    _assert_redacted((tmp_path / "run.svg").read_text(encoding="utf-8"))


def test_a_workflow_trace_is_redacted_too() -> None:
    planloop.register_secret(SECRET)

    def login(user: str, api_key: str) -> str:
        return f"session for {user}: {SECRET}"

    wf = Workflow("secret", store=False)
    wf.step(login, user="ann", api_key=KEY_ARG, id="login")
    result = wf.run_sync()
    text = result.trace.to_json()
    assert SECRET not in text and KEY_ARG not in text
    assert SECRET in result.trace.to_json(redact=False)
    back = Trace.from_json(text)
    assert back.step_results[0].output == f"session for ann: {REDACTED}"


def test_a_run_id_with_a_lone_surrogate_is_refused_by_the_store(tmp_path: Path) -> None:
    def answer(ctx: planloop.RunContext) -> planloop.Answer:
        return planloop.Answer("hi")

    planner = planloop.FunctionPlanner(answer)
    with pytest.raises(StoreError) as err:
        Agent(None, [], planner=planner, store=tmp_path / "runs.db").run_sync(
            "x", run_id="r-\udc80"
        )
    assert str(err.value) == (
        "run id 'r-\\udc80' cannot be stored: it holds a lone surrogate, which UTF-8"
        " cannot encode; pass a run_id of valid text (or none, for a fresh one)"
    )
    # without a store the run goes on, and its JSON holds the id as valid text
    trace = Agent(None, [], planner=planner, store=False).run_sync("x", run_id="r-\udc80").trace
    assert Trace.from_json(trace.to_json()).run_id == "r-\ufffd"
