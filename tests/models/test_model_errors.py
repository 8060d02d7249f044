"""A run whose model failed raises an error that ``except ModelError`` and
``except PlannerFailed`` both catch, against a real server on 127.0.0.1."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from chat_server import ChatServer, error

import planloop
from planloop.errors import ModelAuthError, ModelError, ModelFailed, PlannerFailed, RunError
from planloop.models import OpenAIChat
from planloop.testing import ScriptedModel


@pytest.fixture(autouse=True)
def _no_model_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PLANLOOP_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def chat(server: ChatServer, **options: Any) -> OpenAIChat:
    return OpenAIChat("test-model", base_url=server.url, api_key="", backoff=0.01, **options)


def test_except_model_error_catches_a_run_whose_server_failed() -> None:
    with ChatServer([error(500, "the GPU caught fire")]) as server:
        agent = planloop.Agent(chat(server, max_retries=0), store=False)
        try:
            agent.run_sync("hi")
        except planloop.ModelError as err:
            caught: ModelError = err
        else:
            pytest.fail("the run did not raise")
    assert isinstance(caught, planloop.PlannerFailed)
    assert str(caught).startswith("the planner raised ModelError: ")
    assert "the GPU caught fire" in str(caught)
    cause = caught.__cause__
    assert type(cause) is ModelError
    # what the model error says is on the run's error too
    assert (caught.status_code, caught.model, caught.base_url) == (500, "test-model", server.url)
    assert (caught.hint, caught.attempts) == (cause.hint, 1)
    assert isinstance(caught, RunError) and caught.result is not None
    assert caught.result.stop_reason == "error"


def test_except_planner_failed_still_catches_a_refused_key() -> None:
    with ChatServer([error(401, "invalid api key")]) as server:
        agent = planloop.Agent(chat(server), store=False)
        with pytest.raises(planloop.PlannerFailed) as raised:
            agent.run_sync("hi")
    err = raised.value
    assert isinstance(err, ModelError) and isinstance(err, ModelFailed)
    assert isinstance(err.__cause__, ModelAuthError)
    assert err.status_code == 401 and err.hint == "set OPENAI_API_KEY or pass api_key="
    assert str(err).startswith("the planner raised ModelAuthError: ")


def test_a_scripted_model_error_is_caught_as_model_error_and_pickles() -> None:
    failure = ModelError("server down", model="m", status_code=503, hint="try later")
    agent = planloop.Agent(ScriptedModel([failure]), store=False)
    with pytest.raises(ModelError) as raised:
        agent.run_sync("hi")
    err = raised.value
    assert isinstance(err, PlannerFailed) and err.__cause__ is failure
    assert str(err) == "the planner raised ModelError: server down; try later"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is ModelFailed and str(again) == str(err)
    assert (again.status_code, again.hint, again.model) == (503, "try later", "m")
    assert again.result is not None and again.result.run_id == err.result.run_id


def test_a_planner_that_fails_otherwise_is_not_a_model_error() -> None:
    agent = planloop.Agent(ScriptedModel([KeyError("Bergen")]), store=False)
    with pytest.raises(PlannerFailed) as raised:
        agent.run_sync("hi")
    assert not isinstance(raised.value, ModelError)
