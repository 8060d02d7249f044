"""The public names are a contract: exported, sorted, and importing stays cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import planloop
import planloop.models
import planloop.testing

PACKAGE = Path(planloop.__file__).parent

CONTRACT = {
    "Agent",
    "tool",
    "Tool",
    "RunResult",
    "StopReason",
    "LoopState",
    "Trace",
    "MachineSpec",
    "Planned",
    "Answered",
    "Rejected",
    "Acted",
    "Continued",
    "ReturnedDirect",
    "Stopped",
    "ToolCallingPlanner",
    "ReActPlanner",
    "FunctionPlanner",
    "PlanloopError",
    "InvalidTransition",
    "StepFailed",
}


def test_all_is_sorted_complete_and_has_the_contract() -> None:
    assert planloop.__all__ == sorted(planloop.__all__)
    assert set(planloop.__all__) >= CONTRACT
    for name in planloop.__all__:
        assert hasattr(planloop, name), name
    assert {"ChatModel", "OpenAIChat", "ToolCall", "from_env"} <= set(planloop.models.__all__)
    assert planloop.models.__all__ == sorted(planloop.models.__all__)
    for name in planloop.models.__all__:
        assert hasattr(planloop.models, name), name
    assert {"ScriptedModel", "check_trace", "model_scripts", "limits"} <= set(
        planloop.testing.__all__
    )


def test_every_module_declares_all() -> None:
    # ruff's RUF022 keeps each module's __all__ sorted; here: every module has one.
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        declared = any(
            (
                isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            )
            or (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.target.id == "__all__"
            )
            for node in tree.body
        )
        assert declared or path.name == "__main__.py", f"{path.relative_to(PACKAGE)} has no __all__"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_engine_imports_nothing_above_it() -> None:
    above = (
        "planloop.nodes",
        "planloop.models",
        "planloop.visualize",
        "planloop.testing",
        "planloop.compat",
        "planloop.cli",
        "planloop.agent",
    )
    for path in (PACKAGE / "engine").rglob("*.py"):
        bad = sorted(m for m in _imports(path) if m.startswith(above))
        assert not bad, f"engine/{path.name} imports {bad}"


def test_only_the_machine_module_imports_transitions() -> None:
    users = sorted(
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if any(m == "transitions" or m.startswith("transitions.") for m in _imports(p))
    )
    assert users == ["engine/machine.py"]


def test_import_planloop_does_not_load_heavy_modules() -> None:
    code = (
        "import sys, planloop; "
        "heavy = [m for m in ('networkx', 'pygraphviz', 'graphviz', 'hypothesis', 'click', "
        "'httpx', 'planloop.models.openai') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_exception_is_defined_in_errors() -> None:
    # One tree (issue 17): an exception class a caller can meet lives in the
    # planloop.errors package and is importable from planloop.errors itself.
    # Private ones (``_Name``) carry control flow inside one module and never escape it.
    import builtins

    import planloop.errors

    bases = {name for name, obj in vars(builtins).items() if isinstance(obj, type)}
    bases = {b for b in bases if issubclass(getattr(builtins, b), BaseException)}
    tree_dir = PACKAGE / "errors"
    elsewhere = []
    not_exported = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            if path.parent == tree_dir:
                if node.name not in planloop.errors.__all__:
                    not_exported.append(f"{path.relative_to(PACKAGE)}: {node.name}")
                continue
            names = {
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            }
            if names & bases or any(n.endswith(("Error", "Exception")) for n in names):
                elsewhere.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert elsewhere == []
    assert not_exported == []
