"""The machine's moves are the ``transitions`` machine's moves."""

from __future__ import annotations

import pytest
from transitions import MachineError

from planloop import Continued, Event, MachineSpec, Stopped
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


def test_equal_specs_share_one_compiled_machine_that_goes_with_the_last_of_them() -> None:
    import gc
    import weakref

    def spec() -> MachineSpec:  # unlike the default spec, which lives as long as planloop
        return MachineSpec.default().with_transitions(
            {Continued: {"observe": "idle"}, Stopped: {"idle": "stopped"}}, states=["idle"]
        )

    first, second = spec(), spec()
    assert first is not second and first == second
    assert _compiled(first) is _compiled(second) is _compiled(first)
    compiled = weakref.ref(_compiled(first))
    del first
    assert Machine(second).state == "plan"
    del second
    gc.collect()
    assert compiled() is None  # no spec equal to its key is left
