"""A hard deadline: a sync tool that hangs is abandoned, and the run stops on time.

Run: ./dev python examples/hard_deadline.py
"""

from __future__ import annotations

import time

from planloop import Agent, tool
from planloop.models import ToolCall
from planloop.testing import ScriptedModel


@tool
def slow_report(topic: str) -> str:
    """Write a report (this one takes far too long)."""
    time.sleep(60)
    return f"report on {topic}"


def main() -> None:
    model = ScriptedModel([ToolCall("slow_report", {"topic": "latency"})])
    agent = Agent(model, [slow_report], max_execution_time=0.5)
    started = time.perf_counter()
    result = agent.run_sync("Write the report")
    elapsed = time.perf_counter() - started
    print(result.status, result.stop_reason, f"after {elapsed:.1f} s")
    print([(s.step_id, s.status.value) for s in result.steps])
    print(result.output)


if __name__ == "__main__":
    main()
