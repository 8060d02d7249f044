"""The one exception tree of planloop.

```
PlanloopError
├── DefinitionError (ValueError)        a definition is wrong; raised before anything runs
│   ├── InvalidSpec                      a MachineSpec breaks a structural rule
│   ├── InvalidPlan                      a Plan breaks a rule (all problems listed at once)
│   └── InvalidTool                      a tool cannot be built from the given function
├── InvalidTransition (RuntimeError)     an event the current state does not accept
├── OutputParserError (ValueError)       a planner could not read the model's output
├── InvalidMessage (ValueError)          messages given to a chat model are not chat messages
├── ToolArgumentsError (ValueError)      arguments failed a tool's schema
├── ScriptExhausted (RuntimeError)       a ScriptedModel was asked for more than its script
├── StoreError (RuntimeError)            the run store cannot be opened, or a stored run is bad
├── CannotResume (RuntimeError)          a stored run cannot be resumed (ended, other definition)
│   └── RunLocked                        another process is running it (holds its lease)
├── ModelError (RuntimeError)            a chat model's server failed, refused or answered garbage
│   ├── ModelAuthError                   the server refused the API key (401) or access (403)
│   └── ModelNotFound                    the server has no such model or endpoint (404)
├── TraceError (ValueError)              not a valid trace, or a trace value with no JSON form
├── ReplayError (ValueError)             a trace cannot be replayed (incomplete, inconsistent)
├── RenderError (RuntimeError)           Graphviz is missing or could not draw a diagram
├── InvalidFormat (ValueError)           an image format planloop cannot write
├── InvariantViolation (AssertionError)  a trace broke a loop invariant (planloop.testing)
└── RunError (RuntimeError)              a run ended ``stopped`` with reason ``error``
    ├── StepFailed                       a tool raised and nothing handled it
    ├── ParsingFailed                    model output unreadable, ``handle_parsing_errors`` off
    └── PlannerFailed                    the planner (or its model) raised
        └── ModelFailed (ModelError)     the planner's chat model raised a ModelError

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
run as ``.result`` (trace included), so nothing that was recorded is lost. A run
whose model failed raises a :class:`ModelFailed`, which is both a
:class:`PlannerFailed` and a :class:`ModelError`: ``except ModelError`` catches a
failing model whether it was called directly or by a run, and ``__cause__`` is
the model's own error (a :class:`ModelAuthError`, say).

Import every class from here (``from planloop.errors import StepFailed``). Each
family is written in a private module of its own: ``_definition`` (invalid
definitions), ``_run`` (failures and signals of a run), ``_model`` (chat models
and their servers), ``_store`` (the run store), ``_trace`` (traces, replay, invariants) and
``_diagram`` (drawing).
"""

from __future__ import annotations

from planloop.errors._definition import DefinitionError, InvalidPlan, InvalidSpec, InvalidTool
from planloop.errors._diagram import DiagramWarning, InvalidFormat, RenderError
from planloop.errors._model import InvalidMessage, ModelAuthError, ModelError, ModelNotFound
from planloop.errors._root import PlanloopError
from planloop.errors._run import (
    InvalidTransition,
    ModelFailed,
    OutputParserError,
    ParsingFailed,
    PauseForApproval,
    PlannerFailed,
    RunError,
    ScriptExhausted,
    StepFailed,
    StopRun,
    ToolArgumentsError,
)
from planloop.errors._store import CannotResume, RunLocked, StoreError
from planloop.errors._trace import InvariantViolation, ReplayError, TraceError

__all__ = [
    "CannotResume",
    "DefinitionError",
    "DiagramWarning",
    "InvalidFormat",
    "InvalidMessage",
    "InvalidPlan",
    "InvalidSpec",
    "InvalidTool",
    "InvalidTransition",
    "InvariantViolation",
    "ModelAuthError",
    "ModelError",
    "ModelFailed",
    "ModelNotFound",
    "OutputParserError",
    "ParsingFailed",
    "PauseForApproval",
    "PlanloopError",
    "PlannerFailed",
    "RenderError",
    "ReplayError",
    "RunError",
    "RunLocked",
    "ScriptExhausted",
    "StepFailed",
    "StopRun",
    "StoreError",
    "ToolArgumentsError",
    "TraceError",
]

# Each class is known by the name users import, ``planloop.errors.StepFailed``, in
# tracebacks, reprs and pickles, whichever private module defines it.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
