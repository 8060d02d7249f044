from __future__ import annotations

import pytest

from planloop import (
    Acted,
    Answered,
    Continued,
    Event,
    InvalidSpec,
    InvalidTransition,
    LoopState,
    MachineSpec,
    Planned,
    Stopped,
)
from planloop.engine import Machine, Plan, Step, StopReason


class Reflected(Event):
    note: str = ""


def test_default_spec_has_the_documented_table() -> None:
    spec = MachineSpec.default()
    assert spec.states == ("plan", "act", "observe", "finish", "stopped")
    edges = {(r.source, r.event, r.target) for r in spec.summary.transitions}
    assert edges == {
        ("plan", "Planned", "act"),
        ("plan", "Answered", "finish"),
        ("plan", "Rejected", "observe"),
        ("act", "Acted", "observe"),
        ("observe", "Continued", "plan"),
        ("observe", "ReturnedDirect", "finish"),
        ("plan", "Stopped", "stopped"),
        ("act", "Stopped", "stopped"),
        ("observe", "Stopped", "stopped"),
    }
    assert spec.terminal == {"finish", "stopped"}


def test_states_are_str_enums() -> None:
    assert LoopState.plan == "plan"
    assert StopReason.max_iterations == "max_iterations"
    assert MachineSpec.default().initial is LoopState.plan


def test_terminal_state_with_exit_is_reported() -> None:
    with pytest.raises(InvalidSpec) as info:
        MachineSpec(
            states=["plan", "finish"],
            transitions={Answered: {"plan": "finish"}, Continued: {"finish": "plan"}},
            terminal=["finish"],
        )
    assert info.value.problems == (
        "terminal state 'finish' has an exit (Continued -> 'plan'); terminal states must have none",
    )


def test_unreachable_and_stuck_states_are_reported_together() -> None:
    with pytest.raises(InvalidSpec) as info:
        MachineSpec(
            states=["plan", "act", "limbo", "island", "finish"],
            transitions={
                Answered: {"plan": "finish"},
                Planned: {"plan": "act"},
                Acted: {"act": "limbo", "island": "finish"},
            },
            terminal=["finish"],
        )
    assert info.value.problems == (
        "not reachable from 'plan': island; add a transition into each",
        "cannot reach a terminal state (finish): act, limbo; "
        "add a transition that leads out of each",
    )
    assert str(info.value).startswith("invalid machine spec (2 problems):\n  - not reachable")


def test_unknown_states_are_reported() -> None:
    with pytest.raises(InvalidSpec) as info:
        MachineSpec(
            states=["plan", "finish"], transitions={Answered: {"plan": "done"}}, terminal=["finish"]
        )
    assert "Answered: target 'done' is not one of the states; add it to states=" in (
        info.value.problems
    )


def test_invalid_transition_names_state_event_and_accepted() -> None:
    machine = Machine(MachineSpec.default())
    with pytest.raises(InvalidTransition) as info:
        machine.fire(Acted(results=()))
    err = info.value
    assert (err.state, err.event) == ("plan", "Acted")
    assert err.accepted == ("Planned", "Answered", "Rejected", "Stopped")
    assert str(err) == (
        "state 'plan' does not accept event 'Acted'; "
        "it accepts: Planned, Answered, Rejected, Stopped"
    )
    assert machine.state == "plan"


def test_terminal_state_accepts_nothing() -> None:
    machine = Machine(MachineSpec.default())
    machine.fire(Stopped(reason=StopReason.error))
    assert machine.terminal
    with pytest.raises(InvalidTransition, match="'stopped' is terminal and accepts no events"):
        machine.fire(Continued())


def test_machine_follows_the_spec() -> None:
    machine = Machine(MachineSpec.default())
    plan = Plan([Step(id="a", tool="t")])
    assert machine.fire(Planned(plan=plan)) == "act"
    assert machine.fire(Acted(results=())) == "observe"
    assert machine.fire(Continued()) == "plan"
    assert machine.fire(Answered(output=1)) == "finish"


def test_extended_spec_routes_through_reflect() -> None:
    spec = MachineSpec.default().with_transitions(
        {
            Continued: {"observe": "reflect"},
            Reflected: {"reflect": "plan"},
            Stopped: {"reflect": "stopped"},
        },
        states=["reflect"],
    )
    assert spec.states[-1] == "reflect"
    assert spec.next_state("observe", Continued()) == "reflect"
    assert spec.next_state("reflect", Reflected()) == "plan"
    assert spec.accepted("reflect") == ("Stopped", "Reflected")


def test_events_are_frozen() -> None:
    event = Answered(output="x")
    with pytest.raises(Exception, match="frozen"):
        event.output = "y"  # type: ignore[misc]
