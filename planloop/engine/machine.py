"""The running machine: a :class:`MachineSpec` driven by the ``transitions`` library.

This is the only module that imports ``transitions``; nothing else touches the
trigger methods it attaches.
"""

from __future__ import annotations

from transitions import Machine as _TransitionsMachine
from transitions import MachineError

from planloop.engine.events import Event
from planloop.engine.spec import MachineSpec
from planloop.errors import InvalidTransition

__all__ = ["Machine"]


class _Model:
    """The object ``transitions`` keeps the current state on."""

    state: str


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

    __slots__ = ("_events", "_model", "spec")

    def __init__(self, spec: MachineSpec, *, state: str | None = None) -> None:
        """``state``: where to start (a resumed run starts where it left off)."""
        if state is not None and state not in spec.states_by_name:
            raise ValueError(f"{state!r} is not a state of this machine")
        self.spec = spec
        self._model = _Model()
        machine = _TransitionsMachine(
            model=self._model,
            states=[str(s) for s in spec.states],
            transitions=[
                {"trigger": event.__name__, "source": str(src), "dest": str(dst)}
                for event, edges in spec.transitions.items()
                for src, dst in edges.items()
            ],
            initial=str(spec.initial if state is None else state),
            auto_transitions=False,
            ignore_invalid_triggers=False,
        )
        self._events = machine.events

    @property
    def state(self) -> str:
        """The current state (a :class:`LoopState` for the built-in states)."""
        return self.spec.states_by_name[self._model.state]

    @property
    def terminal(self) -> bool:
        """Whether the machine has reached a terminal state."""
        return self._model.state in self.spec.terminal

    def fire(self, event: Event) -> str:
        """Move by ``event`` and return the new state.

        Raises:
            InvalidTransition: the current state does not accept this event
                (the machine stays where it was).
        """
        state = self._model.state
        expected = self.spec.transitions.get(type(event))
        trigger = self._events.get(type(event).__name__)
        if expected is None or trigger is None or state not in expected:
            raise InvalidTransition(self.state, type(event).__name__, self.spec.accepted(state))
        try:
            trigger.trigger(self._model)
        except MachineError as exc:  # pragma: no cover - the spec check above agrees
            raise InvalidTransition(
                self.state, type(event).__name__, self.spec.accepted(state)
            ) from exc
        return self.state
