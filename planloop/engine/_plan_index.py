"""A plan's graph by position: each step's dependencies and dependents, and cycles.

The scheduler and the validator work on positions in the plan's list of steps
rather than on ids: lists indexed by position are the cheapest graph to walk,
and a plan is immutable, so the index is computed once per plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

__all__ = ["PlanIndex", "build_index", "find_cycle", "first_positions"]


class PlanIndex(NamedTuple):
    """A plan's edges by position, computed once per plan (plans are immutable)."""

    deps: tuple[tuple[str, ...], ...]
    """Each step's dependency ids, explicit ones first, then those its references add."""
    dependents: tuple[tuple[int, ...], ...]
    """Positions of the steps that wait for each step."""
    indegree: tuple[int, ...]
    """How many steps of the plan each step waits for."""
    position: Mapping[str, int]
    """Each id's position (the first, if ids repeat)."""
    forward: bool = True
    """Every step comes after all the steps it waits for: then there is no cycle."""


def first_positions(ids: Sequence[str]) -> dict[str, int]:
    """Each id's position in ``ids``; the first one where an id repeats."""
    position = {step_id: i for i, step_id in enumerate(ids)}
    if len(position) < len(ids):
        position = {}
        for i, step_id in enumerate(ids):
            position.setdefault(step_id, i)
    return position


def build_index(deps: tuple[tuple[str, ...], ...], position: dict[str, int]) -> PlanIndex:
    """The index of a plan whose steps wait for ``deps`` (by id, one tuple per step).

    Ids that are not in ``position`` and a step's dependency on itself make no
    edge: validation reports them.
    """
    n = len(deps)
    # Each step's first dependent, and a list only for steps with more than one:
    # most steps of a large plan have one dependent or none.
    first = [-1] * n
    more: dict[int, list[int]] = {}
    indegree = [0] * n
    forward = True
    for i, ds in enumerate(deps):
        for d in ds:
            j = position.get(d)
            if j is None or j == i:
                continue
            if first[j] < 0:
                first[j] = i
            elif j in more:
                more[j].append(i)
            else:
                more[j] = [first[j], i]
            indegree[i] += 1
            forward = forward and j < i
    dependents = tuple(
        [() if f < 0 else (f,) if j not in more else tuple(more[j]) for j, f in enumerate(first)]
    )
    return PlanIndex(deps, dependents, tuple(indegree), position, forward)


def find_cycle(index: PlanIndex) -> list[int]:
    """The positions of one cycle of the graph, in order, or ``[]`` when there is none."""
    if index.forward:  # every edge goes forward in the list: no way back
        return []
    succ = index.dependents
    # Kahn's algorithm first: linear, and enough to show there is no cycle.
    waiting = list(index.indegree)
    free = [i for i, w in enumerate(waiting) if not w]
    while free:
        for j in succ[free.pop()]:
            waiting[j] -= 1
            if not waiting[j]:
                free.append(j)
    if not any(waiting):
        return []
    # Some steps never became free: a depth-first search among them finds the path.
    white, grey, black = 0, 1, 2
    color = [white if w else black for w in waiting]
    for root in range(len(succ)):
        if color[root] != white:
            continue
        stack: list[tuple[int, int]] = [(root, 0)]
        path: list[int] = [root]
        color[root] = grey
        while stack:
            node, i = stack[-1]
            nexts = succ[node]
            if i < len(nexts):
                stack[-1] = (node, i + 1)
                nxt = nexts[i]
                if color[nxt] == grey:
                    return path[path.index(nxt) :]
                if color[nxt] == white:
                    color[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = black
                stack.pop()
                path.pop()
    return []
