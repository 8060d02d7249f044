"""What agents, workflows and plan-and-execute share: one async ``run`` and its sync form."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planloop._diagrams import diagram_hook, inside_run
from planloop.engine._sync import run_sync
from planloop.engine.loop import LoopConfig, run_loop
from planloop.engine.result import RunResult

__all__ = ["Runnable"]


class Runnable:
    """Runs its loop configuration on an input; subclasses say what the configuration is."""

    diagram_dir: Path | None = None
    """Where each run writes ``<run_id>.svg`` (``None``: ``$PLANLOOP_DIAGRAM_DIR`` if set)."""

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

        With a ``diagram_dir`` (or ``PLANLOOP_DIAGRAM_DIR``) the run's picture is
        written there as ``<run_id>.svg`` when it ends, also when it stops or raises.

        Raises:
            RunError: the run stopped with reason ``error`` (a step raised and
                nothing handled it, the planner or its model raised, or its output
                could not be parsed with ``handle_parsing_errors=False``);
                ``.result`` holds the partial result and its trace.
        """
        config = self._loop_config()
        hook = diagram_hook(self.diagram_dir, nested=inside_run.get())
        if hook is not None:
            config = dataclasses.replace(config, on_end=_then(config.on_end, hook))
        token = inside_run.set(True)
        try:
            return await run_loop(config, input, run_id=run_id, on_event=on_event)
        finally:
            inside_run.reset(token)

    def run_sync(
        self,
        input: Any = None,
        *,
        run_id: str | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> RunResult:
        """:meth:`run` from sync code, also where an event loop is already running."""
        return run_sync(self.run(input, run_id=run_id, on_event=on_event))


def _then(
    first: Callable[[RunResult], None] | None, second: Callable[[RunResult], None]
) -> Callable[[RunResult], None]:
    if first is None:
        return second

    def both(result: RunResult) -> None:
        try:
            first(result)
        finally:
            second(result)

    return both
