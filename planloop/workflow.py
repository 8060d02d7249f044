"""Workflows defined in Python: a fixed plan of callables, run through the same loop."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from planloop._diagrams import check_dir
from planloop._runnable import Runnable
from planloop.engine.approval import Approval
from planloop.engine.durable import StoreOption
from planloop.engine.events import Rejected, ReturnedDirect
from planloop.engine.loop import LoopConfig
from planloop.engine.plan import Plan, Step, callable_name
from planloop.engine.planner import Answer, RunContext
from planloop.engine.retry import RetryPolicy
from planloop.engine.spec import MachineSpec
from planloop.engine.states import StepStatus
from planloop.engine.trace import Limits
from planloop.errors import DefinitionError, StepFailed
from planloop.nodes.planners import FunctionPlanner

__all__ = ["StepHandle", "Workflow"]

# Memory addresses in an argument's repr differ between processes; the
# definition a resumed run is checked against must not.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

_MACHINE = MachineSpec(
    states=MachineSpec.default().states,
    transitions={
        event: edges
        for event, edges in MachineSpec.default().transitions.items()
        if event not in (Rejected, ReturnedDirect)
    },
)
"""A workflow's machine: the agent loop without the moves a workflow never makes.

Its plan is fixed and validated when it is built, so the planner's output is never
``Rejected``; its steps are callables, never ``return_direct`` tools, so nothing is
``ReturnedDirect``. Traces and pictures show this machine.
"""


class StepHandle:
    """What :meth:`Workflow.step` returns: pass it as an argument to use the step's output.

    ``handle["field"]`` refers to one field of the output (a key of a dict output, or an
    attribute).

    Example:
        >>> wf = Workflow("greeting", store=False)
        >>> user = wf.step(lambda: {"name": "Ada"}, id="user")
        >>> user, user["name"]
        (StepHandle('user'), StepHandle('user')['name'])
        >>> _ = wf.step(lambda name: f"Hello, {name}", name=user["name"])
        >>> wf.run_sync().output
        'Hello, Ada'
    """

    __slots__ = ("field", "id")

    def __init__(self, step_id: str, field: str | None = None) -> None:
        self.id = step_id
        self.field = field

    def __getitem__(self, field: str) -> StepHandle:
        return StepHandle(self.id, field if self.field is None else f"{self.field}.{field}")

    def as_ref(self) -> dict[str, str]:
        return {"$ref": self.id if self.field is None else f"{self.id}.{self.field}"}

    def __repr__(self) -> str:
        suffix = "" if self.field is None else f"[{self.field!r}]"
        return f"StepHandle({self.id!r}){suffix}"


class Workflow(Runnable):
    """A DAG of Python callables, run by the plan → act → observe → finish loop.

    Args:
        name: shown in traces and diagrams.
        max_execution_time: a hard deadline in seconds for the whole run.
        max_concurrency: how many steps may run at once (default: as many as are ready).
        diagram_dir: a directory (created if missing) where every run writes
            ``<run_id>.svg``, a picture of the run with each step's status and
            timing, when it ends: finished, stopped, or failed with
            :class:`StepFailed`. ``None`` (default) uses ``$PLANLOOP_DIAGRAM_DIR``
            if it is set when the run starts (unless the run is nested in another
            planloop run). A picture that cannot be drawn or written gives a
            :class:`~planloop.DiagramWarning` and leaves the result as it is.

    Raises:
        DefinitionError: an argument is invalid, e.g. ``diagram_dir`` is a file.

    Example:
        >>> import asyncio
        >>> wf = Workflow("report")
        >>> def fetch(url: str) -> str:
        ...     return f"<p>text of {url}</p>"
        >>> async def clean(html: str) -> str:
        ...     return html.removeprefix("<p>").removesuffix("</p>")
        >>> def summarize(text: str) -> str:
        ...     return text.upper()
        >>> raw = wf.step(fetch, url="https://example.org")
        >>> text = wf.step(clean, html=raw)
        >>> _ = wf.step(summarize, text=text, id="summary")
        >>> wf.run_sync().output
        'TEXT OF HTTPS://EXAMPLE.ORG'
    """

    def __init__(
        self,
        name: str = "workflow",
        *,
        max_execution_time: float | None = None,
        max_concurrency: int | None = None,
        diagram_dir: str | os.PathLike[str] | None = None,
        store: StoreOption = None,
    ) -> None:
        self._set_durability(store, ())
        if max_execution_time is not None and not max_execution_time >= 0:
            raise DefinitionError(
                f"max_execution_time={max_execution_time!r}; use seconds >= 0 or None"
            )
        if max_concurrency is not None and max_concurrency < 1:
            raise DefinitionError(f"max_concurrency={max_concurrency!r}; use a number >= 1")
        self.diagram_dir = check_dir(diagram_dir)
        self.name = name
        self.max_execution_time = max_execution_time
        self.max_concurrency = max_concurrency
        self._steps: list[Step] = []
        self._ids: set[str] = set()
        self._plan: Plan | None = None  # built once per set of steps

    def step(
        self,
        fn: Callable[..., Any],
        /,
        *,
        id: str | None = None,
        depends_on: Iterable[StepHandle | str] = (),
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        **args: Any,
    ) -> StepHandle:
        """Add a step that calls ``fn(**args)``; handles among ``args`` pass outputs along.

        Raises:
            DefinitionError: the id is taken, a dependency is unknown, or ``args``
                do not fit ``fn``'s signature.
        """
        if not callable(fn):
            raise DefinitionError(f"a workflow step needs a callable, got {type(fn).__name__}")
        step_id = id if id is not None else self._fresh_id(getattr(fn, "__name__", "step"))
        if step_id in self._ids:
            raise DefinitionError(
                f"workflow {self.name!r} already has a step {step_id!r}; pass another id="
            )
        deps = tuple(d.id if isinstance(d, StepHandle) else str(d) for d in depends_on)
        resolved = {k: _refs(v) for k, v in args.items()}
        problems = [
            f"step {step_id!r} depends on {d!r}, which is not in the workflow; add it first"
            for d in deps
            if d not in self._ids
        ]
        problems.extend(self._binding_problems(fn, step_id, args))
        if problems:
            raise DefinitionError(
                "invalid workflow step:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        step = Step(
            id=step_id,
            tool=fn,
            args=resolved,
            depends_on=deps,
            timeout=timeout,
            retry=retry,
        )
        # Read once here, where the workflow is defined, rather than by each run's
        # first look at its plan (a step is immutable, so these never change).
        _ = step.tool_name, step.references
        self._steps.append(step)
        self._ids.add(step_id)
        self._plan = None
        return StepHandle(step_id)

    def approval(
        self,
        question: str,
        /,
        *,
        id: str | None = None,
        depends_on: Iterable[StepHandle | str] = (),
    ) -> StepHandle:
        """Add a step where the run pauses until a person decides.

        When the steps it depends on have succeeded, everything that does not wait
        for it runs to the end, then the run ends with status ``paused``.
        ``resume(run_id, Approve())`` makes the step succeed (output ``True``) and
        the run goes on; ``resume(run_id, Reject(message=...))`` makes it fail, so
        the steps after it are skipped and the run raises :class:`StepFailed`.

        Example:
            >>> from planloop import Approve
            >>> wf = Workflow("release")
            >>> built = wf.step(lambda: "v1.2", id="build")
            >>> ok = wf.approval("Ship it?", depends_on=[built])
            >>> _ = wf.step(lambda version, approved: f"shipped {version}",
            ...             id="ship", version=built, approved=ok)
            >>> paused = wf.run_sync()
            >>> paused.status, [s.step_id for s in paused.steps]
            (<RunStatus.paused: 'paused'>, ['build'])
            >>> wf.resume_sync(paused.run_id, Approve()).output
            'shipped v1.2'
        """
        step_id = id if id is not None else self._fresh_id("approval")
        return self.step(Approval(question), id=step_id, depends_on=depends_on)

    @property
    def plan(self) -> Plan:
        """The workflow as a :class:`Plan` (validated)."""
        plan = self._plan
        if plan is None:
            plan = Plan(self._steps, log=f"workflow {self.name}")
            plan.validate(max_steps=None)
            self._plan = plan
        return plan

    @property
    def sinks(self) -> list[str]:
        """Ids of the steps nothing depends on: their outputs are the result."""
        plan = self._plan or Plan(self._steps)
        used = {d for deps in plan.index.deps for d in deps}
        return [s.id for s in self._steps if s.id not in used]

    def _loop_config(self) -> LoopConfig:
        # Built per run: steps may have been added since the last one. One sink gives
        # its output; several give a dict by step id. A step that fails, raises
        # StepFailed with what was recorded.
        plan = self.plan
        sinks = self.sinks
        wanted = set(sinks)
        succeeded = StepStatus.succeeded

        def decide(ctx: RunContext) -> Plan | Answer:
            if not ctx.iteration:
                return plan
            # One pass over the results (a result per step: 10,001 in a big workflow),
            # keeping only the sinks' outputs; the first step that failed stops it.
            outputs: dict[str, Any] = {}
            for r in ctx.last_results:
                if r.status is not succeeded:
                    raise StepFailed(
                        f"workflow {self.name!r}: step {r.step_id!r} {r.status.value}: {r.error}",
                        step_id=r.step_id,
                        tool=r.tool,
                    )
                if r.step_id in wanted:
                    outputs[r.step_id] = r.output
            if len(sinks) == 1:
                return Answer(outputs[sinks[0]])
            return Answer({sid: outputs[sid] for sid in sinks})

        return LoopConfig(
            planner=FunctionPlanner(decide),
            tools={},
            limits=Limits(max_iterations=None, max_execution_time=self.max_execution_time),
            max_concurrency=self.max_concurrency,
            max_plan_steps=None,
            name=self.name,
            spec=_MACHINE,
            restore_plan=self._restore_plan,
            identity=self._identity,
        )

    def _identity(self) -> list[list[Any]]:
        return [
            [s.id, s.tool_name, list(self.plan.dependencies(s)), _ADDRESS.sub("", repr(s.args))]
            for s in self.plan.steps
        ]

    def _restore_plan(self, stored: Plan) -> Plan:
        # The stored plan names the callables; this workflow holds them. The run's
        # definition hash already says the steps are the same.
        plan = self.plan
        if [s.id for s in stored.steps] != [s.id for s in plan.steps]:
            raise DefinitionError(
                f"workflow {self.name!r}: the stored plan has steps "
                f"{[s.id for s in stored.steps]}, this workflow {[s.id for s in plan.steps]}"
            )
        return plan

    def _fresh_id(self, base: str) -> str:
        if base not in self._ids:
            return base
        n = 2
        while f"{base}_{n}" in self._ids:
            n += 1
        return f"{base}_{n}"

    def _binding_problems(
        self, fn: Callable[..., Any], step_id: str, args: dict[str, Any]
    ) -> list[str]:
        problems = [
            f"step {step_id!r} uses the output of {h.id!r}, which is not in the workflow; "
            "add that step first"
            for h in _handles(args)
            if h.id not in self._ids
        ]
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return problems
        try:
            sig.bind(**args)
        except TypeError as exc:
            problems.append(f"step {step_id!r}: {callable_name(fn)}() {exc}")
        return problems

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, steps={[s.id for s in self._steps]!r})"


def _refs(value: Any) -> Any:
    if isinstance(value, StepHandle):
        return value.as_ref()
    if isinstance(value, dict):
        return {k: _refs(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_refs(v) for v in value)
    return value


def _handles(value: Any) -> list[StepHandle]:
    if isinstance(value, StepHandle):
        return [value]
    if isinstance(value, dict):
        return [h for v in value.values() for h in _handles(v)]
    if isinstance(value, list | tuple):
        return [h for v in value for h in _handles(v)]
    return []
