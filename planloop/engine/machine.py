"""The running machine: a :class:`MachineSpec` compiled by the ``transitions`` library.

This is the only module that imports ``transitions``; nothing else touches the
machine it builds.

A spec is compiled into a ``transitions.Machine`` once (specs are immutable)
and every run's :class:`Machine` of an equal spec shares it. The spec attaches
no callbacks, conditions or before/after hooks, so what ``transitions`` does on
a trigger is look up the transition for the current state and set the model's
state; its generic trigger path (event data, logging, callback sweeps) adds
only bookkeeping around that assignment, three times per iteration. So the
compiled machine's transitions are read once into a table of
``(state, event type) -> state`` and a move is one lookup.
``tests/engine/test_machine.py`` fires every event at every state through both
and checks they agree.
"""

from __future__ import annotations

import weakref

from transitions import Machine as _TransitionsMachine

from planloop.engine.events import Event
from planloop.engine.spec import MachineSpec
from planloop.errors import InvalidTransition

__all__ = ["Machine"]


class _Compiled:
    """One spec compiled by ``transitions``, shared by every run of that spec."""

    __slots__ = ("__weakref__", "machine", "moves")

    def __init__(self, spec: MachineSpec) -> None:
        self.machine = _TransitionsMachine(
            model=[],  # runs keep their own state; the compiled machine holds none
            states=[str(s) for s in spec.states],
            transitions=[
                {"trigger": event.__name__, "source": str(src), "dest": str(dst)}
                for event, edges in spec.transitions.items()
                for src, dst in edges.items()
            ],
            initial=str(spec.initial),
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        by_name = {event.__name__: event for event in spec.transitions}
        states = spec.states_by_name
        self.moves: dict[tuple[str, type[Event]], str] = {
            (states[source], by_name[name]): states[str(moves[0].dest)]
            for name, event in self.machine.events.items()
            for source, moves in event.transitions.items()
            if moves
        }


_COMPILED: weakref.WeakKeyDictionary[MachineSpec, _Compiled] = weakref.WeakKeyDictionary()
"""Compiled machines by spec. Equal specs have the same states and the same event
classes, so they share one; an entry leaves with the last spec equal to its key."""


def _compiled(spec: MachineSpec) -> _Compiled:
    found = _COMPILED.get(spec)
    if found is None:  # two threads may both compile a new spec: the same result
        found = _COMPILED[spec] = _Compiled(spec)
    return found


class Machine:
    """One live instance of a spec. Each run gets its own.

    Example:
        >>> from planloop import Continued, MachineSpec
        >>> m = Machine(MachineSpec.default())
        >>> m.state
        <LoopState.plan: 'plan'>
        >>> try:
        ...     m.fire(Continued())
        ... except InvalidTransition as err:
        ...     print(err.accepted)
        ('Planned', 'Answered', 'Rejected', 'Stopped')
    """

    __slots__ = ("_moves", "_state", "_terminal", "spec")

    def __init__(self, spec: MachineSpec, *, state: str | None = None) -> None:
        """``state``: where to start (a resumed run starts where it left off)."""
        if state is not None and state not in spec.states_by_name:
            raise ValueError(f"{state!r} is not a state of this machine")
        self.spec = spec
        self._moves = _compiled(spec).moves
        self._terminal = spec.terminal
        self._state = spec.states_by_name[str(spec.initial if state is None else state)]

    @property
    def state(self) -> str:
        """The current state (a :class:`LoopState` for the built-in states)."""
        return self._state

    @property
    def terminal(self) -> bool:
        """Whether the machine has reached a terminal state."""
        return self._state in self._terminal

    def fire(self, event: Event) -> str:
        """Move by ``event`` and return the new state.

        Raises:
            InvalidTransition: the current state does not accept this event
                (the machine stays where it was).
        """
        state = self._state
        target = self._moves.get((state, type(event)))
        if target is None:
            raise InvalidTransition(state, type(event).__name__, self.spec.accepted(state))
        self._state = target
        return target
