"""Errors in what a user defines (a spec, a plan, a tool), raised before anything runs."""

from __future__ import annotations

from collections.abc import Sequence

from planloop.errors._root import PlanloopError

__all__ = ["DefinitionError", "InvalidPlan", "InvalidSpec", "InvalidTool"]


class DefinitionError(PlanloopError, ValueError):
    """Something defined by the user (a spec, a plan, a tool) is invalid.

    Example:
        >>> from planloop import Agent
        >>> try:
        ...     Agent(None, max_iterations=-1)
        ... except DefinitionError as err:
        ...     print(err)
        invalid Agent:
          - max_iterations=-1; use a whole number >= 0 or None
    """


class _ProblemList(DefinitionError):
    """A definition error that lists every problem found, one per line."""

    kind = "definition"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid {self.kind} ({count} {noun}):\n{lines}")


class InvalidSpec(_ProblemList):
    """A :class:`~planloop.MachineSpec` breaks a structural rule.

    ``problems`` lists each violation with the states it concerns.

    Example:
        >>> from planloop import Continued, MachineSpec
        >>> try:
        ...     MachineSpec.default().with_transitions(
        ...         {Continued: {"observe": "reflect"}}, states=["reflect"])
        ... except InvalidSpec as err:
        ...     print(*err.problems)  # doctest: +ELLIPSIS
        cannot reach a terminal state (finish, stopped): reflect; add a transition that leads ...
    """

    kind = "machine spec"


class InvalidPlan(_ProblemList):
    """A :class:`~planloop.Plan` is invalid; ``problems`` lists every problem at once.

    Example:
        >>> from planloop import Plan, Step, ref
        >>> try:
        ...     Plan(steps=[Step(id="sum", tool="add", args={"a": ref("x")})]).validate({})
        ... except InvalidPlan as err:
        ...     print(err)
        invalid plan (2 problems):
          - step 'sum' refers to 'x', but there is no step 'x'; refer to one of: sum
          - step 'sum' uses tool 'add', which does not exist; use one of: (none)
    """

    kind = "plan"


class InvalidTool(DefinitionError):
    """A tool could not be built from the given function or arguments.

    Example:
        >>> from planloop import tool
        >>> try:
        ...     @tool("look up")
        ...     def lookup(city: str) -> int:
        ...         '''Population of a city.'''
        ...         return 0
        ... except InvalidTool as err:
        ...     print(err)  # doctest: +ELLIPSIS
        tool name 'look up' is not usable: use 1-64 letters, digits, '_', '-' or '.', ...
    """
