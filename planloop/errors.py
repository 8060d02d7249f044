"""The one exception tree of planloop.

```
PlanloopError
├── DefinitionError (ValueError)        a definition is wrong; raised before anything runs
│   ├── InvalidSpec                      a MachineSpec breaks a structural rule
│   ├── InvalidPlan                      a Plan breaks a rule (all problems listed at once)
│   └── InvalidTool                      a tool cannot be built from the given function
├── InvalidTransition (RuntimeError)     an event the current state does not accept
├── OutputParserError (ValueError)       a planner could not read the model's output
├── ToolArgumentsError (ValueError)      arguments failed a tool's schema
├── ScriptExhausted (RuntimeError)       a ScriptedModel was asked for more than its script
├── StoreError (RuntimeError)            the run store cannot be opened, or a stored run is bad
├── CannotResume (RuntimeError)          a stored run cannot be resumed (ended, other definition)
├── ModelError (RuntimeError)            a chat model's server failed, refused or answered garbage
│   ├── ModelAuthError                   the server refused the API key (401) or access (403)
│   └── ModelNotFound                    the server has no such model or endpoint (404)
├── TraceError (ValueError)              a trace file or JSON text is not a valid trace
├── ReplayError (ValueError)             a trace cannot be replayed (incomplete, inconsistent)
├── RenderError (RuntimeError)           Graphviz is missing or could not draw a diagram
├── InvalidFormat (ValueError)           an image format planloop cannot write
├── InvariantViolation (AssertionError)  a trace broke a loop invariant (planloop.testing)
└── RunError (RuntimeError)              a run ended ``stopped`` with reason ``error``
    ├── StepFailed                       a tool raised and nothing handled it
    ├── ParsingFailed                    model output unreadable, ``handle_parsing_errors`` off
    └── PlannerFailed                    the planner (or its model) raised

DiagramWarning (UserWarning)             a run's picture (``diagram_dir``) could not be written
```

Two signals live here too. They are not errors: each steers a run and is caught
by the loop, so no caller of a run ever sees one. They derive from
:class:`Exception`, not from :class:`PlanloopError`, so that ``except
PlanloopError`` around planloop code never swallows one by accident.

```
StopRun (Exception)                      a planner or state handler stops the run, with a reason
PauseForApproval (Exception)             an approval step is ready; the run pauses (internal)
```

Every :class:`RunError` carries the partial :class:`~planloop.RunResult` of the
run as ``.result`` (trace included), so nothing that was recorded is lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planloop.engine.result import RunResult
    from planloop.engine.states import StopReason
    from planloop.engine.trace import Usage

__all__ = [
    "CannotResume",
    "DefinitionError",
    "DiagramWarning",
    "InvalidFormat",
    "InvalidPlan",
    "InvalidSpec",
    "InvalidTool",
    "InvalidTransition",
    "InvariantViolation",
    "ModelAuthError",
    "ModelError",
    "ModelNotFound",
    "OutputParserError",
    "ParsingFailed",
    "PauseForApproval",
    "PlanloopError",
    "PlannerFailed",
    "RenderError",
    "ReplayError",
    "RunError",
    "ScriptExhausted",
    "StepFailed",
    "StopRun",
    "StoreError",
    "ToolArgumentsError",
    "TraceError",
]


class PlanloopError(Exception):
    """Root of every error planloop raises on purpose.

    Example:
        >>> import planloop
        >>> try:
        ...     planloop.Trace.from_json("not json")
        ... except PlanloopError as err:
        ...     print(type(err).__name__, isinstance(err, ValueError))
        TraceError True
        >>> issubclass(planloop.StepFailed, PlanloopError)
        True
    """


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


class StoreError(PlanloopError, RuntimeError):
    """The run store could not be opened, or what it holds for a run is unusable.

    Raised for: a file that is not a planloop database, a database of another
    schema version, an unknown run id, a duplicate event, and a stored row that is
    corrupt. The message names the file or the run (and event) concerned and says
    what to do. The store never modifies a file it refused to open.

    Example:
        >>> import pathlib, tempfile
        >>> from planloop import SQLiteStore
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "runs.db"
        >>> _ = path.write_text("not a database")
        >>> try:
        ...     SQLiteStore(path)
        ... except StoreError as err:
        ...     print(str(err).split(". ")[0])  # doctest: +ELLIPSIS
        /...runs.db is not a planloop database (file is not a database)
    """


class CannotResume(PlanloopError, RuntimeError):
    """A stored run cannot be resumed as asked.

    Raised when the run already ended, was started by another definition of the
    agent or workflow, is paused and no decision was given, was given a decision
    while not paused, or the decision does not fit what is pending. The run is
    left as it was. ``run_id`` names it.

    Example:
        >>> import pathlib, tempfile
        >>> from planloop import Agent, Answer, FunctionPlanner, SQLiteStore
        >>> store = SQLiteStore(pathlib.Path(tempfile.mkdtemp()) / "runs.db")
        >>> agent = Agent(None, planner=FunctionPlanner(lambda ctx: Answer("hi")), store=store)
        >>> _ = agent.run_sync("hello", run_id="greet-1")
        >>> try:
        ...     agent.resume_sync("greet-1")
        ... except CannotResume as err:
        ...     print(err.run_id, "|", str(err).split(";")[0])
        greet-1 | run 'greet-1' already ended (finished)
        >>> store.close()
    """

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class ModelError(PlanloopError, RuntimeError):
    """A chat model's server failed, refused the request, or answered something unreadable.

    Raised after the retries (429, 5xx, timeouts, dropped connections) are used
    up, at once for other 4xx answers, and for a body that is not a chat
    completion. Inside a run it stops the run as a :class:`PlannerFailed`
    whose ``__cause__`` is this error.

    Attributes:
        model: the model asked.
        base_url: the server's API root.
        status_code: the HTTP status of the last answer, or ``None`` when there
            was none (timeout, connection refused or dropped).
        hint: how to fix it (also the end of the message).
        attempts: how many requests were sent.

    Example:
        >>> from planloop import Agent, PlannerFailed
        >>> from planloop.models import OpenAIChat
        >>> url = "http://127.0.0.1:9/v1"  # nothing listens there
        >>> chat = OpenAIChat("llama3.2", base_url=url, api_key="", max_retries=0)
        >>> try:
        ...     Agent(chat, store=False).run_sync("hi")
        ... except PlannerFailed as err:
        ...     print(type(err.__cause__).__name__, err.__cause__.status_code)
        ...     print(err.__cause__.hint)
        ModelError None
        is the server running, and is the base URL right? set OPENAI_BASE_URL or pass base_url=
    """

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        base_url: str = "",
        status_code: int | None = None,
        hint: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(f"{message}; {hint}" if hint else message)
        self.model = model
        self.base_url = base_url
        self.status_code = status_code
        self.hint = hint
        self.attempts = attempts

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),), dict(self.__dict__))


class ModelAuthError(ModelError):
    """The model server refused the API key (HTTP 401) or access to the model (HTTP 403).

    Example:
        >>> import http.server, threading
        >>> from planloop import Agent, PlannerFailed
        >>> from planloop.models import OpenAIChat
        >>> class BadKey(http.server.BaseHTTPRequestHandler):
        ...     def do_POST(self):
        ...         self.send_error(401, "invalid api key")
        >>> with http.server.HTTPServer(("127.0.0.1", 0), BadKey) as server:
        ...     threading.Thread(target=server.handle_request).start()
        ...     url = f"http://127.0.0.1:{server.server_port}/v1"
        ...     chat = OpenAIChat("gpt-4o-mini", base_url=url, api_key="")
        ...     try:
        ...         Agent(chat, store=False).run_sync("hi")
        ...     except PlannerFailed as err:
        ...         print(type(err.__cause__).__name__, err.__cause__.hint)
        ModelAuthError set OPENAI_API_KEY or pass api_key=
    """


class ModelNotFound(ModelError):
    """The model server has no such model, or no such endpoint (HTTP 404).

    Example:
        >>> import http.server, threading
        >>> from planloop import Agent, PlannerFailed
        >>> from planloop.models import OpenAIChat
        >>> class NoSuchModel(http.server.BaseHTTPRequestHandler):
        ...     def do_POST(self):
        ...         self.send_error(404, "model not found")
        >>> with http.server.HTTPServer(("127.0.0.1", 0), NoSuchModel) as server:
        ...     threading.Thread(target=server.handle_request).start()
        ...     url = f"http://127.0.0.1:{server.server_port}/v1"
        ...     chat = OpenAIChat("gpt-9", base_url=url, api_key="")
        ...     try:
        ...         Agent(chat, store=False).run_sync("hi")
        ...     except PlannerFailed as err:
        ...         print(type(err.__cause__).__name__, err.__cause__.status_code)
        ModelNotFound 404
    """


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


class TraceError(PlanloopError, ValueError):
    """A trace file or JSON text is not a valid planloop trace.

    Example:
        >>> from planloop import Trace
        >>> try:
        ...     Trace.from_json('{"events": 3}')
        ... except TraceError as err:
        ...     print(err)
        not a valid planloop trace:
          - at run_id: Field required
          - at events: Input should be a valid array
    """


class ReplayError(PlanloopError, ValueError):
    """A trace cannot be replayed: it is incomplete, inconsistent, or of a kind replay
    does not reproduce (see :mod:`planloop.engine.replay`). ``run_id`` names the run.

    Example:
        >>> from planloop import ReplayError, Trace
        >>> try:
        ...     Trace(run_id="empty").replay()
        ... except ReplayError as err:
        ...     print(err.run_id, "-", str(err).split(";")[0])
        empty - trace 'empty' does not start with a run_started event
    """

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class RenderError(PlanloopError, RuntimeError):
    """Graphviz is missing or could not draw the diagram (the message says how to install it).

    Example:
        >>> from planloop.visualize import render_dot
        >>> try:
        ...     render_dot("digraph { a -> }", "svg")
        ... except RenderError as err:
        ...     print(type(err).__name__)
        RenderError
    """


class InvalidFormat(PlanloopError, ValueError):
    """An image format (or file suffix) planloop cannot write.

    Example:
        >>> from planloop import Plan, Step
        >>> from planloop.visualize import render
        >>> try:
        ...     render(Plan([Step(id="a", tool="t")]), "plan.bmp")
        ... except InvalidFormat as err:
        ...     print(str(err).split(";")[0])
        cannot tell the image format of 'plan.bmp' from '.bmp'
    """


class InvariantViolation(PlanloopError, AssertionError):
    """A trace broke a loop invariant (raised by :func:`planloop.testing.check_trace`).

    An :class:`AssertionError` too, so test runners report it as a failed check.

    Attributes:
        invariant: its number in :data:`planloop.testing.INVARIANTS`.
        detail: what was wrong, in one line.
        events: the positions in ``trace.events`` of the offending events.
        run_id: the run whose trace it is.

    Example:
        >>> from planloop import Trace
        >>> from planloop.testing import check_trace
        >>> try:
        ...     check_trace(Trace(run_id="empty"))
        ... except InvariantViolation as err:
        ...     print(err.invariant, err.detail)
        5 the trace has no events; a run's trace starts with run_started
    """

    def __init__(
        self, message: str, *, invariant: int, detail: str, run_id: str, events: Sequence[int] = ()
    ) -> None:
        super().__init__(message)
        self.invariant = invariant
        self.detail = detail
        self.events = tuple(events)
        self.run_id = run_id


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


class DiagramWarning(UserWarning):
    """The picture of a run (``diagram_dir=`` or ``PLANLOOP_DIAGRAM_DIR``) was not written.

    A warning, not an error: the run's result, or its :class:`RunError`, is
    unaffected. The message says what failed and how to fix it. Silence it
    with ``warnings.simplefilter("ignore", planloop.DiagramWarning)``.

    Example:
        >>> import pathlib, tempfile, warnings
        >>> from planloop import Workflow
        >>> pictures = pathlib.Path(tempfile.mkdtemp()) / "runs"
        >>> wf = Workflow("nightly", diagram_dir=pictures, store=False)
        >>> _ = wf.step(lambda: 1, id="load")
        >>> _ = pictures.write_text("a file where the directory should be")
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     output = wf.run_sync().output
        >>> print(caught[0].message)  # doctest: +ELLIPSIS
        planloop wrote no run diagram: diagram_dir='...runs': it is a file, not a directory; ...
    """
