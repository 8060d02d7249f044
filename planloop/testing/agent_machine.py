"""``AgentStateMachine``: property-test your own agent or workflow with hypothesis.

Subclass it, say how to build your agent from a model, tools and limits, and
hypothesis runs it again and again under random model scripts, misbehaving
tools and limits, checking every trace with :func:`~planloop.testing.check_trace`
and your own invariants; when something breaks, it shrinks the case and keeps
the failing run's trace (JSON) and diagram (SVG) in ``$PLANLOOP_FAILURES``
(default ``.planloop/failures``), naming them in the failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from planloop.engine.result import RunResult
from planloop.engine.tooling import ToolLike, ToolSpec
from planloop.errors import RunError
from planloop.models.messages import ChatMessage, ModelResponse
from planloop.testing.failures import in_final_example, note_failure
from planloop.testing.faults import flaky_tool, hanging_tool, raising_tool, slow_tool
from planloop.testing.invariants import check_trace
from planloop.testing.scripted import ScriptedModel
from planloop.testing.strategies import limits, model_scripts

__all__ = ["AgentStateMachine", "Runs"]

FAULTS = ("flaky", "slow", "raising", "hanging")
_HANG_LIMIT = 0.05  # the time limit a run with a hanging tool gets, if it has none shorter


class Runs(Protocol):
    """What :meth:`AgentStateMachine.make_agent` returns: an Agent, a Workflow,
    a PlanAndExecute, or anything with the same ``run_sync``."""

    def run_sync(self, input: Any = None) -> RunResult: ...


class AgentStateMachine(RuleBasedStateMachine):
    """A hypothesis state machine that runs your agent under random scripts, faults and limits.

    Override :meth:`make_agent`; set ``tools`` to the tools your scripts may call;
    add invariants in :meth:`check_result` (called after every run) or as
    hypothesis ``@invariant()`` methods reading ``self.results``. Run it with
    ``MyMachine.TestCase`` (a ``unittest.TestCase`` pytest collects).

    Each step of the machine is one of two rules:

    * ``run_once``: draw a model script (answers, tool calls, unknown tools,
      bad arguments, unparseable text, model errors), some fault tools
      (:func:`flaky_tool`, :func:`slow_tool`, :func:`raising_tool`,
      :func:`hanging_tool`) and limits; build the agent; run it on ``input``;
      check the trace and your invariants.
    * ``run_twice``: build one agent with a model that answers by how far the
      conversation got, run it twice and check that the second run does the
      same as the first (invariant 5: runs are isolated).

    Class attributes:
        tools: tools the scripts call (with the drawn fault tools added).
        planner: ``"tool_calling"`` or ``"react"``: the kind of script to draw.
        input: what each run is given.
        faults: which fault tools may be drawn (any of ``FAULTS``; ``()`` for none).
        time_slack: seconds a run may exceed its time limit (see :func:`check_trace`).

    Example:
        >>> from hypothesis import settings
        >>> from planloop import Agent, tool
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two integers.'''
        ...     return a + b
        >>> class CalculatorMachine(AgentStateMachine):
        ...     tools = [add]
        ...
        ...     def make_agent(self, model, tools, limits):
        ...         return Agent(model, tools, store=False, **limits)
        ...
        ...     def check_result(self, result):
        ...         if result.status == "finished":
        ...             assert result.output is not None
        >>> CalculatorMachine.TestCase.settings = settings(
        ...     max_examples=10, stateful_step_count=3, deadline=None
        ... )
        >>> CalculatorMachine.TestCase().runTest()
    """

    tools: ClassVar[Sequence[ToolLike]] = ()
    planner: ClassVar[Literal["tool_calling", "react"]] = "tool_calling"
    input: ClassVar[Any] = "go"
    faults: ClassVar[Sequence[str]] = FAULTS
    time_slack: ClassVar[float] = 0.5

    def __init__(self) -> None:
        super().__init__()
        self.results: list[RunResult] = []
        """Every run's result so far, oldest first."""
        self._hanging: list[Any] = []

    def make_agent(self, model: Any, tools: list[ToolLike], limits: dict[str, Any]) -> Runs:
        """Build the agent (or workflow) under test.

        Args:
            model: the chat model to use (a :class:`ScriptedModel` playing the drawn script).
            tools: ``self.tools`` and the fault tools drawn for this run.
            limits: keyword arguments for :class:`~planloop.Agent` drawn by
                :func:`~planloop.testing.limits` (``max_iterations``,
                ``max_execution_time``, ``early_stopping_method``, ``handle_parsing_errors``).
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define make_agent(self, model, tools, limits) "
            "returning the agent or workflow to test, for example "
            "Agent(model, tools, store=False, **limits)"
        )

    def check_result(self, result: RunResult) -> None:
        """Your invariants, called after :func:`check_trace` passed on each run."""

    @rule(data=st.data())
    def run_once(self, data: st.DataObject) -> None:
        faults = self._draw_faults(data, allowed=self.faults)
        tools = [*self.tools, *faults]
        script = data.draw(model_scripts(tools=tools, planner=self.planner), label="script")
        options = data.draw(limits(), label="limits")
        deadline = options["max_execution_time"]
        hangs = any(f in self._hanging for f in faults)
        if hangs and (deadline is None or deadline > _HANG_LIMIT):
            options["max_execution_time"] = _HANG_LIMIT  # a hanging tool needs a deadline
        result = self._run(self.make_agent(ScriptedModel(script), tools, options))
        self._check(result)

    @rule(data=st.data())
    def run_twice(self, data: st.DataObject) -> None:
        # Faults that remember earlier calls (flaky) or depend on timing (hanging)
        # would make the second run differ for reasons of their own.
        faults = self._draw_faults(
            data, allowed=[f for f in self.faults if f in ("slow", "raising")]
        )
        tools = [*self.tools, *faults]
        script = data.draw(model_scripts(tools=tools, planner=self.planner), label="script")
        options = data.draw(limits(), label="limits")
        options["max_execution_time"] = None
        agent = self.make_agent(_ByTurn(script), tools, options)
        first = self._run(agent)
        self._check(first)
        second = self._run(agent)
        self._check(second)
        try:
            assert _summary(second) == _summary(first), (
                "invariant 5 (the run is isolated) broken: running the same agent again with "
                f"the same script gave {_summary(second)}, the first run gave {_summary(first)}"
            )
        except AssertionError as exc:
            if in_final_example():
                note_failure(exc, first, second)
            raise

    def teardown(self) -> None:
        for tool in self._hanging:
            tool.release()

    def _draw_faults(self, data: st.DataObject, *, allowed: Sequence[str]) -> list[ToolLike]:
        unknown = sorted(set(self.faults) - set(FAULTS))
        if unknown:
            raise ValueError(f"faults={unknown!r}: use some of {list(FAULTS)}")
        if not allowed:
            return []
        kinds = data.draw(
            st.lists(st.sampled_from(sorted(allowed)), unique=True, max_size=2), label="faults"
        )
        tools: list[ToolLike] = []
        for kind in kinds:
            if kind == "flaky":
                tools.append(flaky_tool(fails=data.draw(st.integers(0, 2), label="fails")))
            elif kind == "slow":
                tools.append(slow_tool(data.draw(st.sampled_from([0.0, 0.01, 0.03]), label="s")))
            elif kind == "raising":
                tools.append(raising_tool(RuntimeError("the tool broke")))
            else:
                hanging = hanging_tool()
                self._hanging.append(hanging)
                tools.append(hanging)
        return tools

    def _run(self, agent: Runs) -> RunResult:
        try:
            result = agent.run_sync(self.input)
        except RunError as exc:  # stopped with an error: the result is on the exception
            if exc.result is None:
                raise
            result = exc.result
        self.results.append(result)
        return result

    def _check(self, result: RunResult) -> None:
        try:
            check_trace(result.trace, time_slack=self.time_slack)
            self.check_result(result)
        except Exception as exc:
            if in_final_example():
                note_failure(exc, result)
            raise


class _ByTurn:
    """A stateless model: its answer depends only on how far the conversation got,
    so two runs of one agent get the same answers."""

    name = "scripted"

    def __init__(self, script: Sequence[Any]) -> None:
        self.script = list(script)

    async def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_schema: Mapping[str, Any] | None = None,
        stop: Sequence[str] | None = None,
    ) -> ModelResponse:
        turn = sum(1 for m in messages if m.role == "assistant")
        model = ScriptedModel(self.script[turn : turn + 1] or ["end"])
        return await model.chat(messages, tools=tools, response_schema=response_schema, stop=stop)


def _summary(result: RunResult) -> tuple[Any, ...]:
    return (
        [str(s) for s in result.trace.states],
        result.status.value,
        result.stop_reason,
        result.output,
        sorted((s.step_id, s.status.value, repr(s.output), s.error or "") for s in result.steps),
    )
