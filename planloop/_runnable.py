"""What agents, workflows and plan-and-execute share: ``run``, ``resume`` and their sync forms."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

from planloop._diagrams import diagram_hook, inside_run
from planloop.engine._sync import run_sync
from planloop.engine.durable import Decision, StoreOption, open_store
from planloop.engine.loop import LoopConfig, resume_loop, run_loop
from planloop.engine.result import RunResult
from planloop.errors import DefinitionError

__all__ = ["Runnable"]


class Runnable:
    """Runs its loop configuration on an input; subclasses say what the configuration is."""

    diagram_dir: Path | None = None
    """Where each run writes ``<run_id>.svg`` (``None``: ``$PLANLOOP_DIAGRAM_DIR`` if set)."""

    store: StoreOption = None
    """Where runs are recorded (see :data:`planloop.engine.durable.StoreOption`)."""

    interrupt_before: frozenset[str] = frozenset()
    """States a run pauses before entering, until :meth:`resume` is given a decision."""

    definition: str | None = None
    """Where this object is defined (``FILE.py:NAME``), recorded with each run by the CLI."""

    def _loop_config(self) -> LoopConfig:
        raise NotImplementedError

    def _set_durability(self, store: StoreOption, interrupt_before: Iterable[str]) -> list[str]:
        """Keep the ``store=`` and ``interrupt_before=`` options; the problems with them."""
        self.store = store
        self.interrupt_before = frozenset(str(s) for s in interrupt_before)
        if self.interrupt_before and store is False:
            return [
                "interrupt_before needs a store to keep the paused run in; leave store= at "
                "its default (or pass one) instead of store=False"
            ]
        return []

    def _config_for_run(self) -> LoopConfig:
        config = self._loop_config()
        changes: dict[str, Any] = {}
        # A run nested in another (a sub-agent) is part of the outer run's trace; it
        # is recorded on its own only when given a store explicitly.
        nested = inside_run.get()
        store = None if nested and self.store is None else open_store(self.store)
        if store is not None:
            changes["store"] = store
        if config.interrupt_before and store is None:
            raise DefinitionError(
                "interrupt_before needs a store to keep the paused run in, and this run "
                "has none (PLANLOOP_STORE=off, or a nested run); pass store= explicitly"
            )
        if self.definition is not None:
            changes["definition"] = self.definition
        hook = diagram_hook(self.diagram_dir, nested=nested)
        if hook is not None:
            changes["on_end"] = _then(config.on_end, hook)
        return dataclasses.replace(config, **changes) if changes else config

    async def run(
        self,
        input: Any = None,
        *,
        run_id: str | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> RunResult:
        """Run once on ``input``; ``on_event`` sees every trace event as it is recorded.

        With a store (the default) the run is recorded as it goes, with a
        checkpoint written before each state that has effects (the planner, the
        tools) and every completed step on disk before another starts, so it can
        be listed, shown, replayed and resumed. With a ``diagram_dir`` (or
        ``PLANLOOP_DIAGRAM_DIR``) the run's picture is written there as
        ``<run_id>.svg`` when it ends, also when it stops or raises.

        Raises:
            RunError: the run stopped with reason ``error`` (a step raised and
                nothing handled it, the planner or its model raised, or its output
                could not be parsed with ``handle_parsing_errors=False``);
                ``.result`` holds the partial result and its trace.
        """
        config = self._config_for_run()
        return await _inside_run(run_loop(config, input, run_id=run_id, on_event=on_event))

    def run_sync(
        self,
        input: Any = None,
        *,
        run_id: str | None = None,
        on_event: Callable[[Any], None] | None = None,
    ) -> RunResult:
        """:meth:`run` from sync code, also where an event loop is already running."""
        return run_sync(self.run(input, run_id=run_id, on_event=on_event))

    async def resume(
        self,
        run_id: str,
        decision: Decision | None = None,
        *,
        on_event: Callable[[Any], None] | None = None,
    ) -> RunResult:
        """Continue the stored run ``run_id`` from its last checkpoint.

        This works in the process that started the run or in a new one that built
        the same agent or workflow. A step that completed before the run was
        interrupted is not executed again; a step that was running when its
        process died runs again. A paused run (``interrupt_before``) needs a
        ``decision``: :class:`~planloop.Approve`, :class:`~planloop.Edit` with
        another plan, or :class:`~planloop.Reject` with a message that becomes
        the observation.

        Raises:
            CannotResume: the run already ended, was started by another definition,
                or the decision is missing or does not fit (the run is unchanged).
            InvalidPlan: an ``Edit`` plan is invalid (the run stays paused).
            StoreError: the run is not in this object's store, or is corrupt there.
            RunError: as for :meth:`run`.
        """
        config = self._config_for_run()
        return await _inside_run(resume_loop(config, run_id, decision=decision, on_event=on_event))

    def resume_sync(
        self,
        run_id: str,
        decision: Decision | None = None,
        *,
        on_event: Callable[[Any], None] | None = None,
    ) -> RunResult:
        """:meth:`resume` from sync code, also where an event loop is already running."""
        return run_sync(self.resume(run_id, decision, on_event=on_event))


async def _inside_run(run: Coroutine[Any, Any, RunResult]) -> RunResult:
    # Runs started while this one goes (sub-agents) see that they are nested.
    token = inside_run.set(True)
    try:
        return await run
    finally:
        inside_run.reset(token)


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
