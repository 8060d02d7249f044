"""The machine's moves are the ``transitions`` machine's moves."""

from __future__ import annotations

import pytest
from transitions import MachineError

from planloop import Event, MachineSpec, Stopped
from planloop.engine.machine import Machine, _compiled
from planloop.errors import InvalidTransition


class Reflected(Event):
    note: str = ""


_SPECS = [
    MachineSpec.default(),
    MachineSpec.default().with_transitions(
        {Reflected: {"reflect": "plan", "observe": "reflect"}, Stopped: {"reflect": "stopped"}},
        states=["reflect"],
    ),
]


class _Model:
    state: str


@pytest.mark.parametrize("spec", _SPECS)
def test_every_event_at_every_state_moves_as_transitions_does(spec: MachineSpec) -> None:
    compiled = _compiled(spec).machine
    for state in spec.states:
        for event_type in spec.transitions:
            ours = Machine(spec, state=state)
            theirs = _Model()
            theirs.state = str(state)
            trigger = compiled.events[event_type.__name__]
            try:
                trigger.trigger(theirs)
            except MachineError:
                with pytest.raises(InvalidTransition):
                    ours.fire(event_type.model_construct())
                assert ours.state == state
            else:
                assert str(ours.fire(event_type.model_construct())) == theirs.state
                assert ours.state == spec.states_by_name[theirs.state]


def test_runs_of_one_spec_share_the_compiled_machine_but_not_the_state() -> None:
    spec = MachineSpec.default()
    a, b = Machine(spec), Machine(spec)
    assert _compiled(spec) is _compiled(MachineSpec.default())
    a.fire(Stopped(reason="error"))
    assert a.terminal and not b.terminal
    assert b.state == "plan"


def test_equal_specs_share_one_compiled_machine_found_by_identity_or_equality() -> None:
    from planloop.engine import machine

    first = MachineSpec.default().with_transitions({}, states=[])
    second = MachineSpec.default().with_transitions({}, states=[])
    assert first is not second and first == second
    assert _compiled(first) is _compiled(second) is _compiled(first)
    key = id(first)
    assert machine._BY_ID[key][1] is _compiled(first)
    del first
    assert key not in machine._BY_ID  # gone with its spec, before its id is reused
    assert Machine(second).state == "plan"
