"""The public test toolkit: scripted models, fault tools, strategies and invariant checks.

* :class:`ScriptedModel` plays back a script of answers, tool calls and errors.
* :func:`flaky_tool`, :func:`slow_tool`, :func:`raising_tool` and
  :func:`hanging_tool` misbehave on purpose.
* :func:`plans`, :func:`invalid_plans`, :func:`model_scripts`, :func:`limits`
  (and :func:`model_responses`) are hypothesis strategies.
* :func:`check_trace` asserts the six loop invariants of :data:`INVARIANTS` on a trace.
* :class:`AgentStateMachine` property-tests your own agent or workflow;
  :class:`MachineEvents` fires random events at a machine spec.
* :func:`keep_failures` and :func:`save_failure` keep a failing run's trace and
  diagram to look at.
* The pytest plugin (:mod:`planloop.testing.plugin`, loaded automatically) adds
  the fixtures ``scripted_model``, ``planloop_store`` and ``planloop_diagrams``.

The strategies and state machines need hypothesis (``pip install 'planloop[testing]'``);
they are imported on first use, so the rest of ``planloop.testing`` does not need it.

Example:
    >>> from planloop import Agent, tool
    >>> from planloop.models import ToolCall
    >>> @tool
    ... def add(a: int, b: int) -> int:
    ...     '''Add two integers.'''
    ...     return a + b
    >>> model = ScriptedModel([ToolCall("add", {"a": 2, "b": 3}), "5"])
    >>> result = Agent(model, [add], store=False).run_sync("2 + 3?")
    >>> check_trace(result.trace)
    >>> result.output
    '5'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planloop.testing.failures import keep_failures, save_failure
from planloop.testing.faults import flaky_tool, hanging_tool, raising_tool, slow_tool
from planloop.testing.invariants import INVARIANTS, InvariantViolation, check_trace
from planloop.testing.scripted import ModelRequest, ScriptedModel

if TYPE_CHECKING:
    from planloop.testing.agent_machine import AgentStateMachine
    from planloop.testing.strategies import (
        INVALID_KINDS,
        MachineEvents,
        invalid_plans,
        limits,
        model_responses,
        model_scripts,
        plans,
    )

__all__ = [
    "INVALID_KINDS",
    "INVARIANTS",
    "AgentStateMachine",
    "InvariantViolation",
    "MachineEvents",
    "ModelRequest",
    "ScriptedModel",
    "check_trace",
    "flaky_tool",
    "hanging_tool",
    "invalid_plans",
    "keep_failures",
    "limits",
    "model_responses",
    "model_scripts",
    "plans",
    "raising_tool",
    "save_failure",
    "slow_tool",
]

_LAZY = {
    "AgentStateMachine": "agent_machine",
    "INVALID_KINDS": "strategies",
    "MachineEvents": "strategies",
    "invalid_plans": "strategies",
    "limits": "strategies",
    "model_responses": "strategies",
    "model_scripts": "strategies",
    "plans": "strategies",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'planloop.testing' has no attribute {name!r}")
    import importlib

    try:
        found = importlib.import_module(f"planloop.testing.{module}")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if exc.name is None or not exc.name.startswith("hypothesis"):
            raise
        raise ImportError(
            f"planloop.testing.{name} needs hypothesis: pip install 'planloop[testing]'"
        ) from exc
    return getattr(found, name)
