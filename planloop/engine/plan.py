"""Plans: a DAG of steps, with references from one step's arguments to another's output.

An argument value ``{"$ref": "fetch"}`` is replaced at run time by the output
of step ``fetch``; ``{"$ref": "fetch.body"}`` by its field ``body``. A
reference adds the dependency edge by itself.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from planloop.engine._trusted import trusted_maker
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
    "plan_json",
    "ref",
    "resolve_refs",
    "step_json",
]

DEFAULT_MAX_STEPS = 1000
"""Plans longer than this are rejected unless ``validate(max_steps=...)`` says otherwise."""

_REF = "$ref"


def callable_name(fn: Callable[..., Any]) -> str:
    """A readable name for a callable used as a step."""
    name = getattr(fn, "__name__", None) or getattr(fn, "__qualname__", None)
    return str(name) if name else type(fn).__name__


def ref(step_id: str, field: str | None = None) -> dict[str, str]:
    """A reference to the output of step ``step_id`` (or one field of it).

    Example:
        >>> ref("fetch")
        {'$ref': 'fetch'}
        >>> ref("fetch", "body")
        {'$ref': 'fetch.body'}
    """
    return {_REF: step_id if field is None else f"{step_id}.{field}"}


_T = TypeVar("_T")


class _cached(cached_property[_T]):
    """``functools.cached_property`` without the lock that Python 3.11 takes on every
    first read: a 10,000-step plan reads two such properties per step, and computing
    one twice in a race would give the same value."""

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> _cached[_T]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> _T: ...
    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.attrname] = self.func(instance)  # type: ignore[index]
        return value


def _refs_in(value: Any, out: list[str]) -> None:
    if type(value) is dict:
        if len(value) == 1 and _REF in value:
            out.append(str(value[_REF]))
            return
        for item in value.values():
            _refs_in(item, out)
    elif type(value) in (list, tuple):
        for item in value:
            _refs_in(item, out)


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

    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, ignored_types=(_cached,)
    )

    id: str
    tool: str | Callable[..., Any]
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    timeout: float | None = Field(default=None, gt=0)
    retry: RetryPolicy | None = None

    @field_serializer("tool")
    def _tool_name(self, tool: str | Callable[..., Any]) -> str:
        return self.tool_name

    @_cached
    def tool_name(self) -> str:
        """The tool's name; for a callable, its qualified name."""
        tool = self.tool
        return tool if isinstance(tool, str) else callable_name(tool)

    @_cached
    def references(self) -> tuple[str, ...]:
        """The raw ``$ref`` targets in this step's arguments, in order."""
        if not self.args:
            return ()
        found: list[str] = []
        _refs_in(self.args, found)
        return tuple(found)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Step:
        copied = super().model_copy(update=update, deep=deep)
        # The copy takes the instance dict along, cached values included: with a
        # field changed they could be stale.
        if update:
            for name in _CACHED_ON_STEP:
                copied.__dict__.pop(name, None)
        return copied


_CACHED_ON_STEP = ("tool_name", "references", "_json")


class PlanIndex(NamedTuple):
    """A plan's edges by position, computed once per plan (plans are immutable)."""

    deps: tuple[tuple[str, ...], ...]
    """Each step's dependency ids, explicit ones first, then those its references add."""
    dependents: tuple[tuple[int, ...], ...]
    """Positions of the steps that wait for each step."""
    indegree: tuple[int, ...]
    """How many steps of the plan each step waits for."""
    position: Mapping[str, int]
    """Each id's position (the first, if ids repeat)."""
    forward: bool = True
    """Every step comes after all the steps it waits for: then there is no cycle."""


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

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(_cached,))

    steps: tuple[Step, ...]
    log: str = ""
    """What the planner said while making this plan (shown to it again later)."""

    def __init__(self, steps: Iterable[Step] | None = None, /, **data: Any) -> None:
        if steps is not None:
            data["steps"] = tuple(steps)
        super().__init__(**data)

    @_cached
    def by_id(self) -> dict[str, Step]:
        """Steps by id (the first one wins if ids repeat; ``validate`` reports that)."""
        out = {step.id: step for step in self.steps}
        if len(out) < len(self.steps):  # a repeated id: keep its first step
            out = {}
            for step in self.steps:
                out.setdefault(step.id, step)
        return out

    @_cached
    def index(self) -> PlanIndex:
        """The edges by position (unknown ids and self-dependencies left out)."""
        steps = self.steps
        pos = {step.id: i for i, step in enumerate(steps)}
        if len(pos) < len(steps):  # a repeated id: its first position counts
            pos = {}
            for i, step in enumerate(steps):
                pos.setdefault(step.id, i)
        if not any(step.depends_on or step.references for step in steps):
            # Independent steps (every plan a tool-calling model makes): no edges.
            no_deps: tuple[tuple[str, ...], ...] = ((),) * len(steps)
            return PlanIndex(no_deps, ((),) * len(steps), (0,) * len(steps), pos)
        deps = tuple(
            [
                self.dependencies(step)
                if step.references or len(step.depends_on) > 1
                else step.depends_on  # nothing to merge or repeat: the common case, kept cheap
                for step in steps
            ]
        )
        # Each step's first dependent, and lists only for steps with more: most steps
        # have one or none, and a list per step is an object per step to allocate.
        first = [-1] * len(steps)
        more: dict[int, list[int]] = {}
        indegree = [0] * len(steps)
        get = pos.get
        forward = True
        for i, ds in enumerate(deps):
            for d in ds:
                j = get(d)
                if j is not None and j != i:
                    f = first[j]
                    if f < 0:
                        first[j] = i
                    elif j in more:
                        more[j].append(i)
                    else:
                        more[j] = [f, i]
                    indegree[i] += 1
                    if j > i:
                        forward = False
        none: tuple[int, ...] = ()
        dependents = tuple(
            [
                none if f < 0 else (f,) if j not in more else tuple(more[j])
                for j, f in enumerate(first)
            ]
        )
        return PlanIndex(deps, dependents, tuple(indegree), pos, forward)

    def dependencies(self, step: Step) -> tuple[str, ...]:
        """The ids ``step`` waits for, resolving dotted references to step ids."""
        # Once the index exists it holds the answer for each of the plan's own steps
        # (a workflow asks for all of them again on every run).
        index = self.__dict__.get("index")
        if index is not None:
            i = index.position.get(step.id)
            if i is not None and self.steps[i] is step:
                deps_of: tuple[str, ...] = index.deps[i]
                return deps_of
        deps = dict.fromkeys(step.depends_on)
        for target in step.references:
            deps.setdefault(self._split_ref(target)[0])
        return tuple(deps)

    def _split_ref(self, target: str) -> tuple[str, str | None]:
        if target in self.by_id or "." not in target:
            return target, None
        # Step ids may themselves contain dots: take the longest known prefix.
        parts = target.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:cut])
            if head in self.by_id:
                return head, ".".join(parts[cut:])
        head, field = target.split(".", 1)
        return head, field

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

    @_cached
    def _structure_problems(self) -> tuple[str, ...]:
        # A plan is immutable, so its structure is checked once however often it is
        # validated (a workflow's plan is checked when built and again when it runs).
        problems: list[str] = []
        index = self.index
        if len(index.position) == len(self.steps) and not any(index.deps):
            return ()  # unique ids and no dependencies: nothing can be wrong with the edges
        # Every dependency and reference of a plan without repeated ids that became
        # an edge of the index is known and not the step itself: nothing to report
        # but a cycle, so the step-by-step search for the wording is skipped.
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
            concrete = {k: v for k, v in step.args.items() if not _contains_ref(v)}
            try:
                tool.validate_args(concrete, partial=set(step.args) - set(concrete))
            except ToolArgumentsError as exc:
                problems.append(f"step {step.id!r}: {exc}")
        return problems

    def find_cycle(self) -> list[str]:
        """One cycle among the steps as a list of ids, or ``[]`` when there is none."""
        if self.index.forward:  # every edge goes forward in the list: no way back
            return []
        succ = self.index.dependents
        # Kahn's algorithm first: cheap, and enough to show there is no cycle.
        waiting = list(self.index.indegree)
        free = [i for i, w in enumerate(waiting) if not w]
        while free:
            for j in succ[free.pop()]:
                waiting[j] -= 1
                if not waiting[j]:
                    free.append(j)
        if not any(waiting):
            return []
        # Some steps never became free: search among them for the cycle's path.
        white, grey, black = 0, 1, 2
        color = [white if w else black for w in waiting]
        for root in range(len(succ)):
            if color[root] != white:
                continue
            stack: list[tuple[int, int]] = [(root, 0)]
            path: list[int] = [root]
            color[root] = grey
            while stack:
                node, i = stack[-1]
                nexts = succ[node]
                if i < len(nexts):
                    stack[-1] = (node, i + 1)
                    nxt = nexts[i]
                    if color[nxt] == grey:
                        return [self.steps[j].id for j in path[path.index(nxt) :]]
                    if color[nxt] == white:
                        color[nxt] = grey
                        stack.append((nxt, 0))
                        path.append(nxt)
                else:
                    color[node] = black
                    stack.pop()
                    path.pop()
        return []

    def _repr_svg_(self) -> str | None:
        from planloop.engine._display import svg_of

        return svg_of(self)

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> dict[str, str]:
        from planloop.engine._display import mimebundle_of

        return mimebundle_of(self, repr(self), include, exclude)


def _contains_ref(value: Any) -> bool:
    found: list[str] = []
    _refs_in(value, found)
    return bool(found)


def _names(items: Iterable[str]) -> str:
    names = sorted(items)
    return ", ".join(names) if names else "(none)"


def _tool_map(tools: Mapping[str, ToolLike] | Sequence[ToolLike]) -> Mapping[str, ToolLike]:
    if isinstance(tools, Mapping):
        return tools
    return {t.name: t for t in tools}


_new_plan = trusted_maker(Plan)


def independent_plan(steps: tuple[Step, ...], log: str = "") -> Plan:
    """A plan of ``steps`` that declare no dependencies, built without validation.

    For planners that turn a model's tool calls into steps (one plan per model
    call): the steps must be valid :class:`Step` instances with no ``depends_on``.
    When their ids are unique and no argument refers to another step, the plan's
    index and structure check are filled in at once (there is nothing to find).
    """
    plan = _new_plan({"steps": steps, "log": log})
    n = len(steps)
    if n == 1:
        step = steps[0]
        if step.references:
            return plan
        position = {step.id: 0}
        index = _make_index((_NO_DEPS, _NO_DEPS, _ZERO, position, True))
    else:
        position = {step.id: i for i, step in enumerate(steps)}
        if len(position) < n:
            return plan
        for step in steps:
            if step.references:
                return plan
        index = PlanIndex(((),) * n, ((),) * n, (0,) * n, position)
    cached = plan.__dict__
    cached["index"] = index
    cached["_structure_problems"] = ()
    return plan


_NO_DEPS: tuple[tuple[Any, ...], ...] = ((),)
_ZERO = (0,)
_make_index = PlanIndex._make  # a NamedTuple's own __new__ is a Python function


def plan_json(plan: Plan) -> dict[str, Any]:
    """``plan.model_dump(mode="json", fallback=repr)``, built directly where that is safe.

    A trace records every plan it runs; for a 10,000-step plan pydantic's dump
    (a Python call per step for the tool's name) is a tenth of the run. Steps
    whose fields are all plain JSON values are written here, once per step: a
    step is immutable, so its dump is kept on it and every later plan that holds
    the step (each run of a workflow) records the same dict (trace records are
    read-only, like the step's own ``args`` they already share). A workflow
    writes it when a step is added (:func:`step_json`). Any other step (a retry
    policy, a value pydantic would convert or ``repr``) is left to pydantic, on
    every dump. ``tests/engine/test_hot_path.py`` holds the two to the same output.
    """
    if type(plan) is not Plan:
        return plan.model_dump(mode="json", fallback=repr)
    steps: list[dict[str, Any]] = []
    append = steps.append
    for step in plan.steps:
        dumped = step.__dict__.get("_json")
        append(dumped if dumped is not None else step_json(step))
    return {"steps": steps, "log": plan.log}


def step_json(step: Step) -> dict[str, Any]:
    """One step of :func:`plan_json`, kept on the step when it is plain JSON."""
    timeout = step.timeout
    args = step.args
    if (
        type(step) is Step
        and step.retry is None
        and (timeout is None or (type(timeout) is float and _finite(timeout)))
    ):
        try:
            dumped_args = {} if not args else _json_dict(args)
        except _NotPlain:
            pass
        else:
            dumped = step.__dict__["_json"] = {
                "id": step.id,
                "tool": step.tool_name,
                "args": dumped_args,
                "depends_on": list(step.depends_on),
                "timeout": timeout,
                "retry": None,
            }
            return dumped
    return step.model_dump(mode="json", fallback=repr)


class _NotPlain(Exception):
    """A value that pydantic's JSON mode would convert, so it is left to pydantic."""


def _finite(x: float) -> bool:
    return x - x == 0.0  # False for inf and nan


def _json_dict(value: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if type(k) is not str:
            raise _NotPlain
        out[k] = _json_value(v)
    return out


def _json_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if _finite(value):
            return value
        raise _NotPlain
    if kind is dict:
        return _json_dict(value)
    if kind is list or kind is tuple:
        return [_json_value(v) for v in value]
    raise _NotPlain


def resolve_refs(plan: Plan, value: Any, outputs: Mapping[str, Any]) -> Any:
    """Replace every ``$ref`` in ``value`` by the output it points to, keeping its type."""
    if type(value) is dict:
        if len(value) == 1 and _REF in value:
            head, field = plan._split_ref(str(value[_REF]))
            out = outputs[head]
            if field is None:
                return out
            for part in field.split("."):
                out = out[part] if isinstance(out, Mapping) else getattr(out, part)
            return out
        return {k: resolve_refs(plan, v, outputs) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(resolve_refs(plan, v, outputs) for v in value)
    return value
