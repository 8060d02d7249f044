"""Extend the loop with your own state: a ``reflect`` step between observe and plan.

Run: ./dev python examples/reflect_state.py
"""

from __future__ import annotations

from planloop import Agent, Continued, Event, MachineSpec, RunContext, Stopped, tool
from planloop.models import ToolCall
from planloop.testing import ScriptedModel, check_trace


class Reflected(Event):
    """Leaves ``reflect``: a note on what the last act achieved."""

    note: str


SPEC = MachineSpec.default().with_transitions(
    {
        Continued: {"observe": "reflect"},
        Reflected: {"reflect": "plan"},
        Stopped: {"reflect": "stopped"},
    },
    states=["reflect"],
)


def reflect(ctx: RunContext) -> Reflected:
    failures = [r.step_id for r in ctx.last_results if r.status != "succeeded"]
    return Reflected(note=f"iteration {ctx.iteration}: {len(failures)} failed steps")


@tool
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


def main() -> None:
    model = ScriptedModel([ToolCall("word_count", {"text": "typed state machines"}), "3 words"])
    agent = Agent(model, [word_count], spec=SPEC, handlers={"reflect": reflect})
    result = agent.run_sync("How many words in 'typed state machines'?")
    check_trace(result.trace)
    print(" -> ".join(str(s) for s in result.trace.states))
    print(result.trace.transitions[3].payload["note"])
    print(result.output)


if __name__ == "__main__":
    main()
