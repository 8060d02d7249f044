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
└── RunError (RuntimeError)              a run ended ``stopped`` with reason ``error``
    ├── StepFailed                       a tool raised and nothing handled it
    ├── ParsingFailed                    model output unreadable, ``handle_parsing_errors`` off
    └── PlannerFailed                    the planner (or its model) raised

DiagramWarning (UserWarning)             a run's picture (``diagram_dir``) could not be written
```

Every :class:`RunError` carries the partial :class:`~planloop.RunResult` of the
run as ``.result`` (trace included), so nothing that was recorded is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planloop.engine.result import RunResult
    from planloop.engine.trace import Usage

__all__ = [
    "CannotResume",
    "DefinitionError",
    "DiagramWarning",
    "InvalidPlan",
    "InvalidSpec",
    "InvalidTool",
    "InvalidTransition",
    "ModelAuthError",
    "ModelError",
    "ModelNotFound",
    "OutputParserError",
    "ParsingFailed",
    "PlanloopError",
    "PlannerFailed",
    "RunError",
    "ScriptExhausted",
    "StepFailed",
    "StoreError",
    "ToolArgumentsError",
]


class PlanloopError(Exception):
    """Root of every error planloop raises on purpose."""


class DefinitionError(PlanloopError, ValueError):
    """Something defined by the user (a spec, a plan, a tool) is invalid."""


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
    """

    kind = "machine spec"


class InvalidPlan(_ProblemList):
    """A :class:`~planloop.Plan` is invalid; ``problems`` lists every problem at once."""

    kind = "plan"


class InvalidTool(DefinitionError):
    """A tool could not be built from the given function or arguments."""


class InvalidTransition(PlanloopError, RuntimeError):
    """An event was fired in a state that does not accept it.

    Attributes:
        state: the current state.
        event: the name of the event that was fired.
        accepted: the names of the events ``state`` accepts.
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
    """


class CannotResume(PlanloopError, RuntimeError):
    """A stored run cannot be resumed as asked.

    Raised when the run already ended, was started by another definition of the
    agent or workflow, is paused and no decision was given, was given a decision
    while not paused, or the decision does not fit what is pending. The run is
    left as it was. ``run_id`` names it.
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
    """The model server refused the API key (HTTP 401) or access to the model (HTTP 403)."""


class ModelNotFound(ModelError):
    """The model server has no such model, or no such endpoint (HTTP 404)."""


class RunError(PlanloopError, RuntimeError):
    """A run stopped with :attr:`StopReason.error`.

    Attributes:
        result: the partial :class:`~planloop.RunResult`, trace included.
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
    """The planner could not parse the model's output and handling was off."""


class PlannerFailed(RunError):
    """The planner, or the model it called, raised an exception."""


class DiagramWarning(UserWarning):
    """The picture of a run (``diagram_dir=`` or ``PLANLOOP_DIAGRAM_DIR``) was not written.

    A warning, not an error: the run's result, or its :class:`RunError`, is
    unaffected. The message says what failed and how to fix it. Silence it
    with ``warnings.simplefilter("ignore", planloop.DiagramWarning)``.
    """
