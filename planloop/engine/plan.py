"""Plans: a DAG of steps, with references from one step's arguments to another's output.

An argument value ``{"$ref": "fetch"}`` is replaced at run time by the output
of step ``fetch``; ``{"$ref": "fetch.body"}`` by its field ``body`` (see
:mod:`planloop.engine.refs`). A reference adds the dependency edge by itself.

Steps and plans are immutable, so what is derived from them (a step's tool
name and references; a plan's graph index and structural
problems) is computed on first use and kept on the instance
(``functools.cached_property``, which pydantic supports on frozen models).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from planloop.engine._plan_index import PlanIndex, build_index, find_cycle, first_positions
from planloop.engine.refs import contains_ref, ref, refs_in, resolve_refs, split_ref
from planloop.engine.retry import RetryPolicy
from planloop.errors import InvalidPlan

if TYPE_CHECKING:
    import networkx as nx

    from planloop.engine.tooling import ToolLike

__all__ = [
    "DEFAULT_MAX_STEPS",
    "Plan",
    "PlanIndex",
    "Step",
    "callable_name",
    "independent_plan",
    "ref",
    "resolve_refs",
]

DEFAULT_MAX_STEPS = 1000
"""Plans longer than this are rejected unless ``validate(max_steps=...)`` says otherwise."""


def callable_name(fn: Callable[..., Any]) -> str:
    """A readable name for a callable used as a step."""
    name = getattr(fn, "__name__", None) or getattr(fn, "__qualname__", None)
    return str(name) if name else type(fn).__name__


def _forget_computed(copied: BaseModel) -> None:
    """Drop the values ``copied`` took from its original's cached properties.

    ``model_copy`` copies the instance dict, computed values included; with a
    field changed they could be wrong. Everything in the dict that is not a
    field is such a value. They are removed from the dict itself, which works
    with every pydantic 2 release planloop supports (``delattr`` on a frozen
    model raises in some).
    """
    computed = vars(copied)
    for name in [n for n in computed if n not in type(copied).model_fields]:
        del computed[name]


class Step(BaseModel):
    """One node of a plan.

    Args:
        id: unique within the plan.
        tool: the name of the tool that runs this step, or (in plans built in
            Python) any callable, sync or async.
        args: arguments; ``{"$ref": "<id>"}`` values are replaced by outputs.
        depends_on: steps that must succeed first (references add these too).
        timeout: seconds one try of this step may run before it is cancelled.
        retry: how to try again when the step raises (none by default).

    Example:
        >>> Step(id="total", tool="add", args={"a": ref("x", "n"), "b": 2}).references
        ('x.n',)
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    id: str
    tool: str | Callable[..., Any]
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    timeout: float | None = Field(default=None, gt=0)
    retry: RetryPolicy | None = None

    @field_serializer("tool")
    def _tool_name(self, tool: str | Callable[..., Any]) -> str:
        return self.tool_name

    @cached_property
    def tool_name(self) -> str:
        """The tool's name; for a callable, its qualified name."""
        tool = self.tool
        return tool if isinstance(tool, str) else callable_name(tool)

    @cached_property
    def references(self) -> tuple[str, ...]:
        """The raw ``$ref`` targets in this step's arguments, in order."""
        if not self.args:
            return ()
        found: list[str] = []
        refs_in(self.args, found)
        return tuple(found)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Step:
        copied = super().model_copy(update=update, deep=deep)
        if update:
            _forget_computed(copied)
        return copied


class Plan(BaseModel):
    """An ordered list of steps forming a DAG.

    Example:
        >>> plan = Plan(steps=[
        ...     Step(id="a", tool="lookup", args={"key": "x"}),
        ...     Step(id="b", tool="lookup", args={"key": "y"}),
        ...     Step(id="sum", tool="add", args={"a": ref("a"), "b": ref("b")}),
        ... ])
        >>> plan.validate()
        >>> sorted(plan.graph().edges)
        [('a', 'sum'), ('b', 'sum')]
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: tuple[Step, ...]
    log: str = ""
    """What the planner said while making this plan (shown to it again later)."""

    def __init__(self, steps: Iterable[Step] | None = None, /, **data: Any) -> None:
        if steps is not None:
            data["steps"] = tuple(steps)
        super().__init__(**data)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Plan:
        copied = super().model_copy(update=update, deep=deep)
        if update:
            _forget_computed(copied)
        return copied

    @cached_property
    def index(self) -> PlanIndex:
        """The edges by position (unknown ids and self-dependencies left out)."""
        steps = self.steps
        position = first_positions([step.id for step in steps])
        if not any(step.depends_on or step.references for step in steps):
            # Independent steps (each plan a tool-calling model makes): no edges.
            return PlanIndex(((),) * len(steps), ((),) * len(steps), (0,) * len(steps), position)
        deps = tuple(
            [
                # No references and at most one dependency: nothing to merge or resolve.
                step.depends_on
                if not step.references and len(step.depends_on) < 2
                else _dependencies(step, position)
                for step in steps
            ]
        )
        return build_index(deps, position)

    @cached_property
    def by_id(self) -> dict[str, Step]:
        """Steps by id (the first one wins if ids repeat; ``validate`` reports that)."""
        steps = self.steps
        return {step_id: steps[i] for step_id, i in self.index.position.items()}

    def dependencies(self, step: Step) -> tuple[str, ...]:
        """The ids ``step`` waits for, resolving dotted references to step ids."""
        index = self.index
        i = index.position.get(step.id)
        if i is not None and self.steps[i] is step:
            return index.deps[i]
        return _dependencies(step, index.position)

    def _split_ref(self, target: str) -> tuple[str, str | None]:
        return split_ref(target, self.index.position)

    def graph(self) -> nx.DiGraph[str]:
        """The plan as a ``networkx.DiGraph``; node attribute ``step`` holds the Step."""
        import networkx as nx

        g: nx.DiGraph[str] = nx.DiGraph()
        for step in self.steps:
            g.add_node(step.id, step=step)
        for step in self.steps:
            for dep in self.dependencies(step):
                g.add_edge(dep, step.id)
        return g

    def validate(  # type: ignore[override]
        self,
        tools: Mapping[str, ToolLike] | Sequence[ToolLike] | None = None,
        *,
        max_steps: int | None = DEFAULT_MAX_STEPS,
    ) -> None:
        """Check the plan and raise :class:`InvalidPlan` listing every problem.

        Checks duplicate ids, unknown dependencies and references, cycles (with the
        path), plan size, and, when ``tools`` is given, unknown tools and arguments
        that fail a tool's schema.
        """
        problems = self.problems(tools, max_steps=max_steps)
        if problems:
            raise InvalidPlan(problems)

    def problems(
        self,
        tools: Mapping[str, ToolLike] | Sequence[ToolLike] | None = None,
        *,
        max_steps: int | None = DEFAULT_MAX_STEPS,
    ) -> list[str]:
        """Every problem ``validate`` would report, as a list (empty when valid)."""
        problems: list[str] = []
        if not self.steps:
            return ["the plan has no steps; add at least one step, or answer instead"]
        if max_steps is not None and len(self.steps) > max_steps:
            problems.append(
                f"the plan has {len(self.steps)} steps, more than max_steps={max_steps}; "
                "split the work or raise max_steps"
            )
        problems.extend(self._structure_problems)
        if tools is not None:
            problems.extend(self._tool_problems(_tool_map(tools)))
        return problems

    @cached_property
    def _structure_problems(self) -> tuple[str, ...]:
        # Cached: a workflow's plan is checked when it is built and again on every run.
        problems: list[str] = []
        index = self.index
        # With unique ids, a dependency or reference that became an edge of the
        # index is known and not the step itself: when all of them did, the only
        # possible problem is a cycle.
        if len(index.position) < len(self.steps) or sum(index.indegree) < sum(map(len, index.deps)):
            problems.extend(self._edge_problems())
        cycle = self.find_cycle()
        if cycle:
            path = " -> ".join(repr(s) for s in [*cycle, cycle[0]])
            problems.append(f"the steps form a cycle: {path}; remove one of these dependencies")
        return tuple(problems)

    def _edge_problems(self) -> list[str]:
        problems: list[str] = []
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                problems.append(
                    f"step id {step.id!r} is used more than once; give each step a unique id"
                )
            seen.add(step.id)
        for step in self.steps:
            for dep in step.depends_on:
                if dep == step.id:
                    problems.append(f"step {step.id!r} depends on itself; drop that dependency")
                elif dep not in self.by_id:
                    problems.append(
                        f"step {step.id!r} depends on {dep!r}, which is not in the plan; "
                        f"add a step {dep!r} or drop the dependency"
                    )
            for target in step.references:
                head, _ = self._split_ref(target)
                if head == step.id:
                    problems.append(
                        f"step {step.id!r} refers to its own output ({target!r}); "
                        "a step can only use outputs of steps that run before it"
                    )
                elif head not in self.by_id:
                    problems.append(
                        f"step {step.id!r} refers to {target!r}, but there is no step "
                        f"{head!r}; refer to one of: {_names(self.by_id)}"
                    )
        return problems

    def _tool_problems(self, tools: Mapping[str, ToolLike]) -> list[str]:
        from planloop.errors import ToolArgumentsError

        problems: list[str] = []
        for step in self.steps:
            if not isinstance(step.tool, str):
                continue  # a callable runs as it is; its arguments are checked when bound
            tool = tools.get(step.tool)
            if tool is None:
                problems.append(
                    f"step {step.id!r} uses tool {step.tool!r}, which does not exist; "
                    f"use one of: {_names(tools)}"
                )
                continue
            concrete = {k: v for k, v in step.args.items() if not contains_ref(v)}
            try:
                tool.validate_args(concrete, partial=set(step.args) - set(concrete))
            except ToolArgumentsError as exc:
                problems.append(f"step {step.id!r}: {exc}")
        return problems

    def find_cycle(self) -> list[str]:
        """One cycle among the steps as a list of ids, or ``[]`` when there is none."""
        return [self.steps[i].id for i in find_cycle(self.index)]

    def _repr_svg_(self) -> str | None:
        from planloop.engine._display import svg_of

        return svg_of(self)

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, str]:
        from planloop.engine._display import mimebundle_of

        return mimebundle_of(self, repr(self), include, exclude)


def _dependencies(step: Step, ids: Container[str]) -> tuple[str, ...]:
    """``step``'s ``depends_on``, then the steps its references name, each once."""
    deps = dict.fromkeys(step.depends_on)
    for target in step.references:
        deps.setdefault(split_ref(target, ids)[0])
    return tuple(deps)


def _names(items: Iterable[str]) -> str:
    names = sorted(items)
    return ", ".join(names) if names else "(none)"


def _tool_map(tools: Mapping[str, ToolLike] | Sequence[ToolLike]) -> Mapping[str, ToolLike]:
    if isinstance(tools, Mapping):
        return tools
    return {t.name: t for t in tools}


def independent_plan(steps: tuple[Step, ...], log: str = "") -> Plan:
    """A plan of ``steps`` for planners that turn a model's tool calls into steps.

    The steps are already validated :class:`Step` instances; the plan's
    structure is checked when the loop validates it, like any other plan's.

    Example:
        >>> independent_plan((Step(id="c1", tool="search"),), "looking").steps[0].id
        'c1'
    """
    return Plan(steps, log=log)
