"""The machine as data: states, terminal states and transitions keyed by event type.

The spec is checked when it is built, so a broken machine never runs:
terminal states have no exits, every state is reachable from the initial
state, and every non-terminal state can reach a terminal one.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

from planloop.engine.events import (
    Acted,
    Answered,
    Continued,
    Event,
    Planned,
    Rejected,
    ReturnedDirect,
    Stopped,
)
from planloop.engine.states import LoopState
from planloop.errors import InvalidSpec, InvalidTransition

__all__ = ["MachineSpec", "SpecSummary", "TransitionRule"]


class TransitionRule(BaseModel):
    """One edge of a machine, by names (what a trace stores)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    event: str
    target: str


class SpecSummary(BaseModel):
    """A machine spec as plain names, stored in every trace.

    It lets a trace be checked and drawn without the Python classes of its events.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    initial: str
    states: tuple[str, ...]
    terminal: tuple[str, ...]
    transitions: tuple[TransitionRule, ...]

    def allows(self, source: str, target: str) -> bool:
        """Whether some event leads from ``source`` to ``target``."""
        return (source, target) in self._edges

    @cached_property
    def _edges(self) -> frozenset[tuple[str, str]]:
        return frozenset((t.source, t.target) for t in self.transitions)


class MachineSpec:
    """States, terminal states and transitions keyed by event type.

    Args:
        states: every state, in display order.
        transitions: for each event type, a mapping ``source -> target``.
        initial: where runs start.
        terminal: states a run ends in; they must have no exits.

    Raises:
        InvalidSpec: listing every structural problem at once.

    Example:
        >>> from planloop import Continued, LoopState, MachineSpec
        >>> spec = MachineSpec.default()
        >>> spec.next_state(LoopState.observe, Continued())
        <LoopState.plan: 'plan'>
    """

    def __init__(
        self,
        *,
        states: Iterable[str],
        transitions: Mapping[type[Event], Mapping[str, str]],
        initial: str = LoopState.plan,
        terminal: Iterable[str] = (LoopState.finish, LoopState.stopped),
    ) -> None:
        self.states: tuple[str, ...] = tuple(_as_state(s) for s in states)
        self.initial: str = _as_state(initial)
        self.terminal: frozenset[str] = frozenset(_as_state(s) for s in terminal)
        self.transitions: dict[type[Event], dict[str, str]] = {
            event: {_as_state(src): _as_state(dst) for src, dst in edges.items()}
            for event, edges in transitions.items()
        }
        self.states_by_name: dict[str, str] = {str(s): s for s in self.states}
        self._accepted: dict[str, tuple[str, ...]] = {}
        self._check()
        self._table: dict[tuple[str, type[Event]], str] = {
            (src, event): dst
            for event, edges in self.transitions.items()
            for src, dst in edges.items()
        }

    @classmethod
    def default(cls) -> MachineSpec:
        """The built-in loop: ``plan``, ``act``, ``observe``, ``finish``, ``stopped``."""
        return _DEFAULT

    def with_transitions(
        self,
        transitions: Mapping[type[Event], Mapping[str, str]],
        *,
        states: Iterable[str] = (),
    ) -> MachineSpec:
        """A new spec with extra states and transitions; an edge given again replaces it.

        Example: a ``reflect`` state between ``observe`` and ``plan``.

        >>> from planloop import Continued, Event, MachineSpec, Stopped
        >>> class Reflected(Event):
        ...     note: str = ""
        >>> spec = MachineSpec.default().with_transitions(
        ...     {Continued: {"observe": "reflect"}, Reflected: {"reflect": "plan"},
        ...      Stopped: {"reflect": "stopped"}},
        ...     states=["reflect"],
        ... )
        >>> spec.next_state("observe", Continued())
        'reflect'
        """
        merged: dict[type[Event], dict[str, str]] = {
            event: dict(edges) for event, edges in self.transitions.items()
        }
        for event, edges in transitions.items():
            merged.setdefault(event, {}).update(edges)
        extra = [s for s in states if s not in self.states]
        return MachineSpec(
            states=(*self.states, *extra),
            transitions=merged,
            initial=self.initial,
            terminal=self.terminal,
        )

    def next_state(self, state: str, event: Event) -> str:
        """The state ``event`` leads to from ``state``.

        Raises:
            InvalidTransition: ``state`` does not accept ``event``.
        """
        target = self._table.get((state, type(event)))
        if target is None:
            raise InvalidTransition(state, type(event).__name__, self.accepted(state))
        return target

    def accepted(self, state: str) -> tuple[str, ...]:
        """The names of the events ``state`` accepts, in declaration order."""
        found = self._accepted.get(state)
        if found is None:  # a spec is immutable: each state's answer is kept
            found = tuple(e.__name__ for e, edges in self.transitions.items() if state in edges)
            self._accepted[state] = found
        return found

    @cached_property
    def summary(self) -> SpecSummary:
        """This spec as plain names (what traces store)."""
        return SpecSummary(
            initial=self.initial,
            states=self.states,
            terminal=tuple(s for s in self.states if s in self.terminal),
            transitions=tuple(
                TransitionRule(source=src, event=event.__name__, target=dst)
                for event, edges in self.transitions.items()
                for src, dst in edges.items()
            ),
        )

    def _repr_svg_(self) -> str | None:
        from planloop.engine._display import svg_of

        return svg_of(self)

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, str]:
        from planloop.engine._display import mimebundle_of

        return mimebundle_of(self, repr(self), include, exclude)

    def __repr__(self) -> str:
        return f"MachineSpec(states={[str(s) for s in self.states]!r}, initial={_q(self.initial)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MachineSpec):
            return NotImplemented
        return (
            self.states == other.states
            and self.initial == other.initial
            and self.terminal == other.terminal
            and self.transitions == other.transitions
        )

    def __hash__(self) -> int:
        return hash((self.states, self.initial, self.terminal))

    def _check(self) -> None:
        problems: list[str] = []
        known = set(self.states)
        if len(known) != len(self.states):
            dupes = sorted({s for s in self.states if self.states.count(s) > 1})
            problems.append(f"states listed more than once: {', '.join(dupes)}")
        if self.initial not in known:
            problems.append(f"initial state {_q(self.initial)} is not one of the states")
        for state in sorted(self.terminal - known):
            problems.append(f"terminal state {_q(state)} is not one of the states")
        if not self.terminal:
            problems.append("no terminal state; name at least one in terminal=")
        names: dict[str, type[Event]] = {}
        for event, edges in self.transitions.items():
            if not (isinstance(event, type) and issubclass(event, Event)):
                problems.append(f"transition key {event!r} is not an Event subclass")
                continue
            other = names.setdefault(event.__name__, event)
            if other is not event:
                problems.append(
                    f"two event types are named {event.__name__!r}; give one another name"
                )
            for src, dst in edges.items():
                for end, what in ((src, "source"), (dst, "target")):
                    if end not in known:
                        problems.append(
                            f"{event.__name__}: {what} {_q(end)} is not one of the states; "
                            f"add it to states="
                        )
                if src in self.terminal:
                    problems.append(
                        f"terminal state {_q(src)} has an exit ({event.__name__} -> {_q(dst)}); "
                        "terminal states must have none"
                    )
        if problems:
            raise InvalidSpec(problems)
        succ: dict[str, set[str]] = {s: set() for s in self.states}
        for edges in self.transitions.values():
            for src, dst in edges.items():
                succ[src].add(dst)
        reachable = _closure([self.initial], succ)
        unreachable = [s for s in self.states if s not in reachable]
        if unreachable:
            problems.append(
                f"not reachable from {_q(self.initial)}: {', '.join(unreachable)}; "
                "add a transition into each"
            )
        pred: dict[str, set[str]] = {s: set() for s in self.states}
        for src, dsts in succ.items():
            for dst in dsts:
                pred[dst].add(src)
        can_end = _closure(self.terminal, pred)
        stuck = [s for s in self.states if s not in can_end]
        if stuck:
            problems.append(
                f"cannot reach a terminal state ({', '.join(sorted(self.terminal))}): "
                f"{', '.join(stuck)}; add a transition that leads out of each"
            )
        if problems:
            raise InvalidSpec(problems)


def _q(state: str) -> str:
    return repr(str(state))


def _as_state(state: Any) -> str:
    if isinstance(state, LoopState):
        return state
    text = str(state)
    try:
        return LoopState(text)
    except ValueError:
        return text


def _closure(start: Iterable[str], succ: Mapping[str, set[str]]) -> set[str]:
    seen = set(start)
    todo = list(seen)
    while todo:
        for nxt in succ.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


_P, _A, _O, _F, _S = (
    LoopState.plan,
    LoopState.act,
    LoopState.observe,
    LoopState.finish,
    LoopState.stopped,
)

_DEFAULT = MachineSpec(
    states=list(LoopState),
    transitions={
        Planned: {_P: _A},
        Answered: {_P: _F},
        Rejected: {_P: _O},
        Acted: {_A: _O},
        Continued: {_O: _P},
        ReturnedDirect: {_O: _F},
        Stopped: {_P: _S, _A: _S, _O: _S},
    },
)
