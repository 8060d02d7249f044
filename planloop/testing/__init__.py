"""The public test toolkit: scripted models, invariant checks and hypothesis strategies.

The strategies need hypothesis (``pip install 'planloop[testing]'``); they are
imported on first use, so ``planloop.testing`` itself does not need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planloop.testing.faults import flaky_tool, hanging_tool, raising_tool, slow_tool
from planloop.testing.invariants import INVARIANTS, check_trace
from planloop.testing.scripted import ModelRequest, ScriptedModel

if TYPE_CHECKING:
    from planloop.testing.strategies import (
        MachineEvents,
        invalid_plans,
        limits,
        model_responses,
        model_scripts,
        plans,
    )

__all__ = [
    "INVARIANTS",
    "MachineEvents",
    "ModelRequest",
    "ScriptedModel",
    "check_trace",
    "flaky_tool",
    "hanging_tool",
    "invalid_plans",
    "limits",
    "model_responses",
    "model_scripts",
    "plans",
    "raising_tool",
    "slow_tool",
]

_LAZY = {"MachineEvents", "invalid_plans", "limits", "model_responses", "model_scripts", "plans"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        try:
            from planloop.testing import strategies
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"planloop.testing.{name} needs hypothesis: pip install 'planloop[testing]'"
            ) from exc
        return getattr(strategies, name)
    raise AttributeError(f"module 'planloop.testing' has no attribute {name!r}")
