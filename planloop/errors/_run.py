"""Errors and signals of a run: a refused event, unreadable model output, bad tool
arguments, a run that ended with an error, and the signals that stop or pause a run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from planloop.errors._model import ModelError
from planloop.errors._root import PlanloopError

if TYPE_CHECKING:
    from planloop.engine.result import RunResult
    from planloop.engine.states import StopReason
    from planloop.engine.trace import Usage

__all__ = [
    "InvalidTransition",
    "ModelFailed",
    "OutputParserError",
    "ParsingFailed",
    "PauseForApproval",
    "PlannerFailed",
    "RunError",
    "ScriptExhausted",
    "StepFailed",
    "StopRun",
    "ToolArgumentsError",
]


class InvalidTransition(PlanloopError, RuntimeError):
    """An event was fired in a state that does not accept it.

    Attributes:
        state: the current state.
        event: the name of the event that was fired.
        accepted: the names of the events ``state`` accepts.

    Example:
        >>> from planloop import Acted, MachineSpec
        >>> from planloop.engine.machine import Machine
        >>> try:
        ...     Machine(MachineSpec.default()).fire(Acted(results=()))
        ... except InvalidTransition as err:
        ...     print(err)
        state 'plan' does not accept event 'Acted'; it accepts: Planned, Answered, Rejected, Stopped
    """

    def __init__(self, state: str, event: str, accepted: Sequence[str]) -> None:
        self.state = state
        self.event = event
        self.accepted: tuple[str, ...] = tuple(accepted)
        if self.accepted:
            allowed = ", ".join(self.accepted)
            hint = f"it accepts: {allowed}"
        else:
            hint = f"{str(state)!r} is terminal and accepts no events"
        super().__init__(f"state {str(state)!r} does not accept event {event!r}; {hint}")


class OutputParserError(PlanloopError, ValueError):
    """A planner could not turn the model's output into a plan or an answer.

    Attributes:
        llm_output: the raw text the model produced.
        observation: feedback meant for the model (what to fix), or ``None``
            when the parser has nothing better than the generic message.
        usage: the tokens the model call used (a :class:`~planloop.engine.trace.Usage`),
            when the model adapter raised this after its server answered; the
            trace and the run's token budget count them as for any other call.

    Example:
        >>> from planloop import Agent, Answer, FunctionPlanner
        >>> def plan(ctx):
        ...     if not ctx.intermediate_steps:
        ...         raise OutputParserError("no number", observation="Reply with a number")
        ...     return Answer(f"told: {ctx.intermediate_steps[-1][1]}")
        >>> planner = FunctionPlanner(plan)
        >>> agent = Agent(None, planner=planner, handle_parsing_errors=True, store=False)
        >>> agent.run_sync("?").output
        'told: Reply with a number'
    """

    def __init__(
        self,
        message: str,
        *,
        llm_output: str = "",
        observation: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.llm_output = llm_output
        self.observation = observation
        self.usage = usage


class ToolArgumentsError(PlanloopError, ValueError):
    """Arguments given to a tool do not match its schema.

    Attributes:
        tool: the tool's name.
        errors: one line per failing argument.

    Example:
        >>> from planloop import tool
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     '''Add two numbers.'''
        ...     return a + b
        >>> try:
        ...     add.invoke({"a": "x"})
        ... except ToolArgumentsError as err:
        ...     print(err.tool, *err.errors, sep="\\n")
        add
        a: Input should be a valid integer, unable to parse string as an integer (got 'x')
        b: missing (this argument is required)
    """

    def __init__(self, tool: str, errors: Sequence[str]) -> None:
        self.tool = tool
        self.errors: tuple[str, ...] = tuple(errors)
        detail = "; ".join(self.errors)
        super().__init__(f"invalid arguments for tool {tool!r}: {detail}")


class ScriptExhausted(PlanloopError, RuntimeError):
    """A scripted model was called more times than it has responses."""


class RunError(PlanloopError, RuntimeError):
    """A run stopped with :attr:`StopReason.error`.

    Attributes:
        result: the partial :class:`~planloop.RunResult`, trace included.

    Example:
        >>> from planloop import Workflow
        >>> def check(rows: int) -> int:
        ...     raise ValueError(f"{rows} rows, expected 4")
        >>> wf = Workflow("nightly", store=False)
        >>> _ = wf.step(check, rows=3)
        >>> try:
        ...     wf.run_sync()
        ... except RunError as err:
        ...     print(type(err).__name__, err.result.status, err.result.stop_reason)
        StepFailed stopped error
    """

    def __init__(self, message: str, *, result: RunResult | None = None) -> None:
        super().__init__(message)
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),), {"result": self.result})


class StepFailed(RunError):
    """A tool raised and neither the tool nor the agent handled the error.

    Attributes:
        step_id: the id of the step whose tool raised.
        tool: the tool's name.

    Example:
        >>> from planloop import Agent, tool
        >>> from planloop.models import ToolCall
        >>> from planloop.testing import ScriptedModel
        >>> @tool
        ... def fetch(url: str) -> str:
        ...     '''Fetch a page.'''
        ...     raise TimeoutError(url)
        >>> model = ScriptedModel([ToolCall("fetch", {"url": "https://example.org"})])
        >>> try:
        ...     Agent(model, [fetch], store=False).run_sync("Read example.org")
        ... except StepFailed as err:
        ...     print(err.step_id, err.tool, err.result.steps[0].status, err.result.stop_reason)
        call_1 fetch failed error
    """

    def __init__(
        self,
        message: str,
        *,
        step_id: str = "",
        tool: str = "",
        result: RunResult | None = None,
    ) -> None:
        super().__init__(message, result=result)
        self.step_id = step_id
        self.tool = tool


class ParsingFailed(RunError):
    """The planner could not parse the model's output and handling was off.

    Example:
        >>> from planloop import Agent
        >>> from planloop.testing import ScriptedModel
        >>> try:
        ...     Agent(ScriptedModel(["I am not sure"]), planner="react", store=False).run_sync("?")
        ... except ParsingFailed as err:
        ...     print(str(err).split(". ")[0])
        could not parse the model's output: Could not parse LLM output: `I am not sure`
    """


class PlannerFailed(RunError):
    """The planner, or the model it called, raised an exception.

    The planner's exception is the ``__cause__``.

    Example:
        >>> from planloop import Agent, FunctionPlanner
        >>> def plan(ctx):
        ...     return {"Oslo": 709_000}[ctx.input]
        >>> try:
        ...     Agent(None, planner=FunctionPlanner(plan), store=False).run_sync("Bergen")
        ... except PlannerFailed as err:
        ...     print(err, "|", repr(err.__cause__), "|", err.result.stop_reason)
        the planner raised KeyError: 'Bergen' | KeyError('Bergen') | error
    """


class ModelFailed(PlannerFailed, ModelError):
    """The planner failed because its chat model raised a :class:`ModelError`.

    Both a :class:`PlannerFailed` (the run's partial result is on ``.result``)
    and a :class:`ModelError`, so ``except ModelError`` catches a run whose model
    failed as it catches a direct call to the model. The model's error is the
    ``__cause__`` (its own class, :class:`ModelAuthError` say, is there); its
    ``model``, ``base_url``, ``status_code``, ``hint`` and ``attempts`` are
    copied onto this error.

    Example:
        >>> from planloop import Agent
        >>> from planloop.testing import ScriptedModel
        >>> down = ModelError("the server failed", status_code=503, hint="try later")
        >>> try:
        ...     Agent(ScriptedModel([down]), store=False).run_sync("hi")
        ... except ModelError as err:
        ...     print(err, "|", err.status_code, isinstance(err, PlannerFailed), err.result.status)
        the planner raised ModelError: the server failed; try later | 503 True stopped
    """

    def __init__(
        self, message: str, *, result: RunResult | None = None, cause: ModelError | None = None
    ) -> None:
        super().__init__(message, result=result)
        if cause is not None:
            self.model = cause.model
            self.base_url = cause.base_url
            self.status_code = cause.status_code
            self.hint = cause.hint
            self.attempts = cause.attempts

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),), dict(self.__dict__))


class StopRun(Exception):
    """Raised by a planner or a state handler to stop the run now, with a reason.

    The run ends ``stopped`` with ``stop_reason=reason`` (a :class:`StopReason`
    or its value) and ``output``; without an output it gets the one the loop
    gives a run stopped for that reason: for ``max_iterations`` and
    ``max_execution_time`` that follows ``early_stopping_method`` (``"force"``:
    the fixed message; ``"generate"``: the planner is asked once more). Nothing
    is raised to the caller, even for reason ``error``: to fail the run, raise
    another exception. A handler can also return a :class:`~planloop.Stopped`
    event, which ends the run the same way.

    Example:
        >>> from planloop import Agent, FunctionPlanner, StopReason
        >>> def plan(ctx):
        ...     raise StopRun(StopReason.budget, output="out of credits")
        >>> result = Agent(None, [], planner=FunctionPlanner(plan)).run_sync("hi")
        >>> result.status, result.stop_reason, result.output
        (<RunStatus.stopped: 'stopped'>, <StopReason.budget: 'budget'>, 'out of credits')
    """

    def __init__(self, reason: StopReason | str, output: Any = None) -> None:
        from planloop.engine.states import StopReason

        self.reason = StopReason(reason)
        self.output = output
        super().__init__(f"the run was asked to stop ({self.reason.value})")


class PauseForApproval(Exception):
    """Signal: an approval step is ready, so the run pauses until a person decides.

    Raised inside the engine and caught by the loop, which ends the run ``paused``;
    never seen by a caller. ``questions`` maps each waiting step's id to its question.
    """

    def __init__(self, questions: Mapping[str, str]) -> None:
        super().__init__(f"waiting for a decision on {', '.join(questions)}")
        self.questions = questions
