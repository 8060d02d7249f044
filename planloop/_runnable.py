"""What agents, workflows and plan-and-execute share: one async ``run`` and its sync form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from planloop.engine._sync import run_sync
from planloop.engine.loop import LoopConfig, run_loop
from planloop.engine.result import RunResult

__all__ = ["Runnable"]


class Runnable:
    """Runs its loop configuration on an input; subclasses say what the configuration is."""

    def _loop_config(self) -> LoopConfig:
        raise NotImplementedError

    async def run(
        self,
        input: Any = None,
        *,
        run_id: str | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> RunResult:
        """Run once on ``input``; ``on_event`` sees every trace event as it is recorded.

        Raises:
            RunError: the run stopped with reason ``error`` (a step raised and
                nothing handled it, the planner or its model raised, or its output
                could not be parsed with ``handle_parsing_errors=False``);
                ``.result`` holds the partial result and its trace.
        """
        return await run_loop(self._loop_config(), input, run_id=run_id, on_event=on_event)

    def run_sync(
        self,
        input: Any = None,
        *,
        run_id: str | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> RunResult:
        """:meth:`run` from sync code, also where an event loop is already running."""
        return run_sync(self.run(input, run_id=run_id, on_event=on_event))
