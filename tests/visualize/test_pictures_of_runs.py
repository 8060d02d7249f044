"""Issue 19, item 9: what a run's picture draws (edges, tooltips) and the step ids it shows."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

import planloop
from planloop.visualize import render_dot, to_dot, to_mermaid


def fetch(url: str) -> str:
    return f"text of {url}"


def shout(text: str) -> str:
    return text.upper()


def edge_labels(dot: str) -> set[str]:
    return {m.group(1).split(" ×")[0] for m in re.finditer(r'-> "s_\w+" \[.*label="([^"]+)"', dot)}


def test_a_workflow_picture_draws_only_the_transitions_a_workflow_can_take() -> None:
    wf = planloop.Workflow("report", store=False)
    wf.step(shout, text=wf.step(fetch, url="https://example.org"))
    dot = to_dot(wf.run_sync(), timings=False)
    assert edge_labels(dot) == {"Planned", "Answered", "Acted", "Continued", "Stopped"}
    assert "Rejected" not in to_mermaid(wf.run_sync(), timings=False)


def test_an_agent_picture_still_draws_every_transition_of_its_machine() -> None:
    agent = planloop.Agent(None, [], planner=planloop.FunctionPlanner(lambda ctx: "hi"))
    labels = edge_labels(to_dot(agent.run_sync("x"), timings=False))
    assert {"Rejected", "ReturnedDirect", "Answered"} <= labels
