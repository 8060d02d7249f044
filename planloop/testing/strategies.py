"""hypothesis strategies for model scripts and limits, and a state machine test.

Example:
    >>> from hypothesis import given, settings
    >>> from planloop import Agent, tool
    >>> from planloop.testing import ScriptedModel, check_trace, model_scripts
    >>> @tool
    ... def echo(text: str) -> str:
    ...     '''Echo the text.'''
    ...     return text
    >>> @settings(max_examples=20, deadline=None)
    ... @given(model_scripts(tools=[echo]))
    ... def test_invariants(script):
    ...     agent = Agent(ScriptedModel(script), [echo], handle_parsing_errors=True)
    ...     try:
    ...         result = agent.run_sync("go")
    ...     except Exception as exc:   # a model error in the script stops the run
    ...         result = exc.result
    ...     check_trace(result.trace)
    >>> test_invariants()
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

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
from planloop.engine.machine import Machine
from planloop.engine.plan import Plan, Step
from planloop.engine.spec import MachineSpec
from planloop.engine.states import StopReason
from planloop.engine.tooling import ToolLike
from planloop.errors import InvalidTransition, ToolArgumentsError
from planloop.models.messages import ToolCall

__all__ = [
    "INVALID_KINDS",
    "MachineEvents",
    "events",
    "invalid_plans",
    "limits",
    "model_responses",
    "model_scripts",
    "plans",
]

_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)

_JSON_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "integer": st.integers(-1000, 1000),
    "number": st.floats(-1e6, 1e6, allow_nan=False),
    "string": _TEXT,
    "boolean": st.booleans(),
}


def _args_for(tool: ToolLike) -> st.SearchStrategy[dict[str, Any]]:
    props = tool.spec.parameters.get("properties", {})
    fields = {
        name: _JSON_VALUES.get(str(schema.get("type")), st.none())
        for name, schema in props.items()
        if isinstance(schema, dict)
    }
    return st.fixed_dictionaries(fields)


def _tool_call(name: str, args: dict[str, Any]) -> ToolCall:
    return ToolCall(name, args)


def _call(tools: Sequence[ToolLike]) -> st.SearchStrategy[ToolCall]:
    names = sorted({t.name for t in tools})
    known = [_args_for(t).map(partial(_tool_call, t.name)) for t in tools]
    unknown = (
        st.sampled_from(["no_such_tool", "unknown", "Search"])
        .filter(lambda n: n not in names)
        .map(lambda n: ToolCall(n, {}))
    )
    bad_args = st.sampled_from(names or ["nothing"]).map(lambda n: ToolCall(n, {"unexpected": 1}))
    return st.one_of(*known, unknown, bad_args) if known else st.one_of(unknown, bad_args)


def model_responses(
    *,
    tools: Sequence[ToolLike] = (),
    planner: Literal["tool_calling", "react"] = "tool_calling",
    errors: bool = True,
) -> st.SearchStrategy[Any]:
    """One scripted response: an answer, tool calls (known, unknown, bad arguments),
    unparseable text (for ``react``) or, when ``errors``, a model exception.

    Example:
        >>> from hypothesis import find
        >>> from planloop import tool
        >>> from planloop.models import ToolCall
        >>> @tool
        ... def echo(text: str) -> str:
        ...     "Echo the text."
        ...     return text
        >>> call = find(model_responses(tools=[echo]), lambda r: isinstance(r, ToolCall))
        >>> call.name  # its arguments may be valid or not: both are drawn
        'echo'
    """
    choices: list[st.SearchStrategy[Any]] = []
    if planner == "tool_calling":
        choices.append(_TEXT)
        choices.append(_call(tools))
        choices.append(st.lists(_call(tools), min_size=2, max_size=4))
    else:
        names = [t.name for t in tools] or ["tool"]
        choices.append(_TEXT.map(lambda t: f"Thought: done\nFinal Answer: {t}"))
        choices.append(
            st.tuples(st.sampled_from([*names, "no_such_tool"]), _TEXT).map(
                lambda p: f"Thought: act\nAction: {p[0]}\nAction Input: {p[1]}"
            )
        )
        choices.append(st.sampled_from(["I am not sure.", "Thought: hmm\nAction: x", ""]))
    if errors:
        choices.append(st.builds(RuntimeError, st.just("model unavailable")))
    return st.one_of(*choices)


def model_scripts(
    *,
    tools: Sequence[ToolLike] = (),
    planner: Literal["tool_calling", "react"] = "tool_calling",
    errors: bool = True,
    max_size: int = 8,
) -> st.SearchStrategy[list[Any]]:
    """Whole scripts for a :class:`~planloop.testing.ScriptedModel`: lists of
    :func:`model_responses` (answers, tool calls of ``tools``, unknown tools, bad
    arguments, unparseable text for ``planner="react"``, model errors when
    ``errors``). A script may also run out, which stops the run with an error.

    Example:
        >>> from planloop import tool
        >>> @tool
        ... def echo(text: str) -> str:
        ...     "Echo the text."
        ...     return text
        >>> from hypothesis import find
        >>> def fails(script):
        ...     return any(isinstance(r, Exception) for r in script)
        >>> script = find(model_scripts(tools=[echo]), fails)
        >>> [isinstance(r, Exception) for r in script]  # the simplest such script: one error
        [True]
    """
    return st.lists(model_responses(tools=tools, planner=planner, errors=errors), max_size=max_size)


def limits() -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for :class:`~planloop.Agent`: limits and stopping options.

    ``max_iterations`` (``None`` or 0 to 6), ``max_execution_time`` (``None``,
    0, 0.05, 0.5 or 5 seconds), ``early_stopping_method`` and ``handle_parsing_errors``.

    Example:
        >>> from hypothesis import find
        >>> options = find(limits(), lambda options: options["max_iterations"] == 3)
        >>> options["max_iterations"], options["max_execution_time"]
        (3, None)
    """
    return st.fixed_dictionaries(
        {
            "max_iterations": st.one_of(st.none(), st.integers(0, 6)),
            "max_execution_time": st.one_of(st.none(), st.sampled_from([0.0, 0.05, 0.5, 5.0])),
            "early_stopping_method": st.sampled_from(["force", "generate"]),
            "handle_parsing_errors": st.sampled_from([True, "Check your output.", False]),
        }
    )


@st.composite
def _dag(draw: st.DrawFn, tools: Sequence[ToolLike], max_steps: int) -> Plan:
    n = draw(st.integers(1, max_steps))
    steps: list[Step] = []
    for i in range(n):
        tool = draw(st.sampled_from(list(tools)))
        deps = draw(st.lists(st.sampled_from(range(i)), unique=True, max_size=3)) if i else []
        steps.append(
            Step(
                id=f"s{i}",
                tool=tool.name,
                args=draw(_args_for(tool)),
                depends_on=tuple(f"s{d}" for d in sorted(deps)),
            )
        )
    return Plan(steps)


def plans(*, tools: Sequence[ToolLike], max_steps: int = 10) -> st.SearchStrategy[Plan]:
    """Valid plans: DAGs of steps over ``tools``, with arguments drawn from their schemas.

    Each step may depend on up to three earlier ones, so the DAG has parallel
    branches, chains and joins.

    Example:
        >>> from hypothesis import given, settings
        >>> from planloop import tool
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     "Add two integers."
        ...     return a + b
        >>> @settings(max_examples=20)
        ... @given(plans(tools=[add], max_steps=5))
        ... def test_generated_plans_are_valid(plan):
        ...     plan.validate([add])
        ...     assert 1 <= len(plan.steps) <= 5
        >>> test_generated_plans_are_valid()
    """
    if not tools:
        raise ValueError("plans() needs at least one tool")
    return _dag(tools, max_steps)


INVALID_KINDS = (
    "bad_arguments",
    "cycle",
    "duplicate_id",
    "empty",
    "self_dependency",
    "self_reference",
    "unknown_dependency",
    "unknown_reference",
    "unknown_tool",
)
"""Each way :func:`invalid_plans` breaks a plan; ``Plan.validate`` reports every one.

Example:
    >>> "cycle" in INVALID_KINDS
    True
"""

_WRONG_TYPE: dict[str, Any] = {
    "integer": "not a number",
    "number": "not a number",
    "string": ["not", "a", "string"],
    "boolean": {"not": "a boolean"},
}


def _bad_args(tool: ToolLike) -> dict[str, Any] | None:
    """Arguments ``tool`` rejects, or ``None`` when it accepts anything we try."""
    props = tool.spec.parameters.get("properties", {})
    candidates = [
        {name: _WRONG_TYPE[str(schema.get("type"))]}
        for name, schema in props.items()
        if isinstance(schema, dict) and str(schema.get("type")) in _WRONG_TYPE
    ]
    candidates.append({"unexpected_argument": 1})
    for args in candidates:
        try:
            tool.validate_args(args)
        except ToolArgumentsError:
            return args
    return None


@st.composite
def _broken(
    draw: st.DrawFn, tools: Sequence[ToolLike], max_steps: int, kinds: Sequence[str]
) -> tuple[str, Plan]:
    kind = draw(st.sampled_from(kinds))
    if kind == "empty":
        return kind, Plan([])
    breakable = {t.name: args for t in tools if (args := _bad_args(t)) is not None}
    if kind == "bad_arguments":
        if not breakable:
            raise ValueError(
                "invalid_plans(kinds=['bad_arguments', ...]) needs a tool that rejects some "
                "arguments; these tools accept anything: " + ", ".join(repr(t.name) for t in tools)
            )
        tools = [t for t in tools if t.name in breakable]
    plan = draw(_dag(tools, max(2, max_steps)))
    steps = list(plan.steps)
    i = draw(st.integers(0, len(steps) - 1))
    s = steps[i]
    if kind == "duplicate_id":
        steps.append(s.model_copy(update={"depends_on": ()}))
    elif kind == "unknown_dependency":
        steps[i] = s.model_copy(update={"depends_on": (*s.depends_on, "missing_step")})
    elif kind == "self_dependency":
        steps[i] = s.model_copy(update={"depends_on": (*s.depends_on, s.id)})
    elif kind == "cycle":
        first = steps[0]
        last = steps[-1]
        if first is last:
            steps.append(Step(id="extra", tool=first.tool, depends_on=(first.id,)))
            last = steps[-1]
        steps[0] = first.model_copy(update={"depends_on": (*first.depends_on, last.id)})
        if last.id != "extra" and first.id not in last.depends_on:
            steps[-1] = last.model_copy(update={"depends_on": (*last.depends_on, first.id)})
    elif kind == "unknown_tool":
        steps[i] = s.model_copy(update={"tool": "no_such_tool"})
    elif kind == "self_reference":
        steps[i] = s.model_copy(update={"args": {**s.args, "x": {"$ref": s.id}}})
    elif kind == "unknown_reference":
        steps[i] = s.model_copy(update={"args": {**s.args, "x": {"$ref": "missing_step"}}})
    else:
        assert isinstance(s.tool, str)
        steps[i] = s.model_copy(update={"args": {**s.args, **breakable[s.tool]}})
    return kind, Plan(steps)


def invalid_plans(
    *, tools: Sequence[ToolLike], max_steps: int = 6, kinds: Sequence[str] = INVALID_KINDS
) -> st.SearchStrategy[tuple[str, Plan]]:
    """``(kind, plan)`` pairs: valid plans broken in one way each.

    ``kinds`` chooses among :data:`INVALID_KINDS`: a repeated step id, a
    dependency on a missing step or on the step itself, a cycle, an unknown tool,
    a ``$ref`` to the step itself or to a missing step, arguments the tool's
    schema rejects, and a plan with no steps. ``plan.validate(tools)`` raises
    :class:`~planloop.InvalidPlan` for every one.

    Example:
        >>> from hypothesis import given, settings
        >>> from planloop import InvalidPlan, tool
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two integers.'''
        ...     return a + b
        >>> @settings(max_examples=30)
        ... @given(invalid_plans(tools=[add]))
        ... def test_invalid_plans_are_refused(case):
        ...     kind, plan = case
        ...     try:
        ...         plan.validate([add])
        ...     except InvalidPlan:
        ...         return
        ...     raise AssertionError(f"a plan with a {kind} problem passed validation")
        >>> test_invalid_plans_are_refused()
    """
    if not tools:
        raise ValueError("invalid_plans() needs at least one tool")
    unknown = sorted(set(kinds) - set(INVALID_KINDS))
    if unknown or not kinds:
        raise ValueError(
            f"invalid_plans(kinds=...) got {unknown or 'no kinds'}; "
            f"use some of {list(INVALID_KINDS)}"
        )
    return _broken(tools, max_steps, tuple(kinds))


_PLAN = Plan([Step(id="s", tool="t")])


def events() -> st.SearchStrategy[Event]:
    """Any built-in event with sample data.

    Example:
        >>> from hypothesis import find
        >>> from planloop import Stopped
        >>> find(events(), lambda e: isinstance(e, Stopped))
        Stopped(reason=<StopReason.max_iterations: 'max_iterations'>, output=None)
    """
    return st.one_of(
        st.just(Planned(plan=_PLAN)),
        st.just(Answered(output="answer")),
        st.just(Rejected(error="bad", feedback="fix it")),
        st.just(Acted(results=())),
        st.just(Continued()),
        st.just(ReturnedDirect(output="direct")),
        st.sampled_from(list(StopReason)).map(lambda r: Stopped(reason=r)),
    )


class MachineEvents(RuleBasedStateMachine):
    """Fires random events at a machine: only spec transitions may ever happen.

    Subclass and set ``spec`` (and ``event_strategy`` for your own events) to
    test an extended machine; run it with ``MachineEvents.TestCase``.

    Example:
        >>> from hypothesis import settings
        >>> from planloop import Continued, Event, MachineSpec, Stopped
        >>> class Reflected(Event):
        ...     pass
        >>> class ReflectMachine(MachineEvents):
        ...     spec = MachineSpec.default().with_transitions(
        ...         {Continued: {"observe": "reflect"}, Reflected: {"reflect": "plan"},
        ...          Stopped: {"reflect": "stopped"}},
        ...         states=["reflect"],
        ...     )
        ...     event_strategy = st.one_of(events(), st.just(Reflected()))
        >>> ReflectMachine.TestCase.settings = settings(max_examples=10, deadline=None)
        >>> ReflectMachine.TestCase().runTest()
    """

    spec: MachineSpec = MachineSpec.default()
    event_strategy: st.SearchStrategy[Event] = events()

    def __init__(self) -> None:
        super().__init__()
        self.machine = Machine(self.spec)
        self.path = [self.machine.state]

    @rule(data=st.data())
    def fire(self, data: st.DataObject) -> None:
        event = data.draw(self.event_strategy)
        before = self.machine.state
        expected = self.spec.transitions.get(type(event), {}).get(before)
        try:
            after = self.machine.fire(event)
        except InvalidTransition as exc:
            refused: tuple[str, str] | None = (exc.state, exc.event)
        else:
            refused = None
        if refused is not None:
            assert expected is None, f"{before} should accept {type(event).__name__}"
            assert refused == (before, type(event).__name__)
            assert self.machine.state == before, "a refused event moved the machine"
            return
        assert after == expected, (
            f"{before} --{type(event).__name__}--> {after}, spec says {expected}"
        )
        self.path.append(self.machine.state)

    @invariant()
    def only_spec_transitions(self) -> None:
        summary = self.spec.summary
        for a, b in zip(self.path, self.path[1:], strict=False):
            assert summary.allows(a, b), f"{a} -> {b} is not a transition of the spec"
        terminal = [s for s in self.path if s in self.spec.terminal]
        assert len(terminal) <= 1 and (not terminal or self.path[-1] == terminal[0])
