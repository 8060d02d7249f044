from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from planloop import DefinitionError, StepFailed, StepStatus, StopReason, Workflow
from planloop.testing import check_trace


def fetch(url: str) -> str:
    return f"<p>{url}</p>"


async def clean(html: str) -> str:
    await asyncio.sleep(0)
    return html[3:-4]


def summarize(text: str) -> dict[str, Any]:
    return {"text": text.upper(), "length": len(text)}


def test_the_issue_example_runs_through_the_loop() -> None:
    wf = Workflow("report")
    raw = wf.step(fetch, url="https://example.org")
    text = wf.step(clean, html=raw)
    wf.step(summarize, text=text, id="summary")
    result = wf.run_sync()
    assert result.output == {"text": "HTTPS://EXAMPLE.ORG", "length": 19}
    assert [str(s) for s in result.trace.states] == ["plan", "act", "observe", "plan", "finish"]
    assert [r.step_id for r in result.steps] == ["fetch", "clean", "summary"]
    assert [r.tool for r in result.steps] == ["fetch", "clean", "summarize"]
    check_trace(result.trace)


async def test_several_sinks_give_a_dict_and_handles_pick_fields() -> None:
    wf = Workflow()
    s = wf.step(summarize, text="abc")
    wf.step(lambda value: value * 2, id="twice", value=s["length"])
    wf.step(lambda value: value + "!", id="bang", value=s["text"])
    result = await wf.run()
    assert result.output == {"twice": 6, "bang": "ABC!"}


def test_depends_on_orders_without_passing_data() -> None:
    seen: list[str] = []
    wf = Workflow()
    first = wf.step(lambda: seen.append("first"), id="first")
    wf.step(lambda: seen.append("second"), id="second", depends_on=[first])
    wf.run_sync()
    assert seen == ["first", "second"]


def test_definition_errors_come_before_anything_runs() -> None:
    wf = Workflow("w")
    wf.step(fetch, url="x")
    assert wf.step(fetch, url="y").id == "fetch_2"
    with pytest.raises(DefinitionError, match="already has a step 'fetch'; pass another id="):
        wf.step(fetch, url="y", id="fetch")
    other = Workflow("other").step(fetch, url="z", id="elsewhere")
    with pytest.raises(DefinitionError) as info:
        wf.step(clean, html=other, depends_on=["ghost"], id="c")
    assert str(info.value) == (
        "invalid workflow step:\n"
        "  - step 'c' depends on 'ghost', which is not in the workflow; add it first\n"
        "  - step 'c' uses the output of 'elsewhere', which is not in the workflow; "
        "add that step first"
    )
    with pytest.raises(DefinitionError) as info:
        wf.step(fetch, id="bad", url="x", uri="x")
    assert str(info.value) == (
        "invalid workflow step:\n  - step 'bad': fetch() got an unexpected keyword argument 'uri'"
    )


def test_a_failing_step_raises_with_the_partial_result() -> None:
    def broken(text: str) -> str:
        raise ValueError("cannot parse")

    wf = Workflow("w")
    raw = wf.step(fetch, url="u")
    bad = wf.step(broken, text=raw)
    wf.step(summarize, text=bad)
    wf.step(summarize, text="independent", id="side")
    with pytest.raises(
        StepFailed, match=r"^step 'broken' \(broken\) raised ValueError: cannot parse$"
    ) as info:
        wf.run_sync()
    result = info.value.result
    assert result is not None and result.stop_reason is StopReason.error
    status = {r.step_id: r.status for r in result.steps}
    assert status == {
        "fetch": StepStatus.succeeded,
        "broken": StepStatus.failed,
        "summarize": StepStatus.skipped,
        "side": StepStatus.succeeded,
    }


def test_the_deadline_applies_to_workflows() -> None:
    def sleepy() -> None:
        time.sleep(5)

    wf = Workflow("slow", max_execution_time=0.1)
    wf.step(sleepy)
    result = wf.run_sync()
    assert result.stop_reason is StopReason.max_execution_time
    assert result.steps[0].status is StepStatus.cancelled
    check_trace(result.trace, time_slack=3.0)  # the step sleeps 5 s: a missed deadline fails
