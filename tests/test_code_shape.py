"""The package stays easy to read: no module over 600 lines, no function over 80.

A function is counted from its ``def`` line to the last line of its body
(decorators excluded); a module by its lines. ``KNOWN`` lists the offenders
that are being split up: each may shrink but not grow, and must leave the list
once it is within the limit, so the list only ever gets shorter.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import planloop

PACKAGE = Path(planloop.__file__).parent
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80

# "path" for a module, "path::qualname" for a function; the value is its
# length when it was listed.
KNOWN: dict[str, int] = {
}


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """Every function and method under ``node``: its dotted name and its length."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + child.name
            yield name, (child.end_lineno or child.lineno) - child.lineno + 1
            yield from _functions(child, name + ".")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, prefix + child.name + ".")
        else:
            yield from _functions(child, prefix)


def sizes(package: Path) -> dict[str, int]:
    """The length of every module and every function in ``package``, by key as in ``KNOWN``."""
    found: dict[str, int] = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        text = path.read_text(encoding="utf-8")
        found[rel] = len(text.splitlines())
        for name, length in _functions(ast.parse(text)):
            found[f"{rel}::{name}"] = max(length, found.get(f"{rel}::{name}", 0))
    return found


def _limit(key: str) -> int:
    return MAX_FUNCTION_LINES if "::" in key else MAX_MODULE_LINES


def problems(found: dict[str, int], known: dict[str, int]) -> list[str]:
    """Every module or function over its limit and not known, and every stale ``known`` entry."""
    out = []
    for key, length in sorted(found.items()):
        limit = _limit(key)
        if length <= limit:
            continue
        what = "function" if "::" in key else "module"
        if key not in known:
            out.append(f"{what} {key} has {length} lines (limit {limit}); split it by concept")
        elif length > known[key]:
            out.append(f"{what} {key} grew to {length} lines (listed at {known[key]}); shrink it")
    for key in sorted(known):
        if found.get(key, 0) <= _limit(key):
            out.append(f"{key} is within {_limit(key)} lines now; remove it from KNOWN")
    return out


def test_no_module_or_function_is_too_long() -> None:
    assert problems(sizes(PACKAGE), KNOWN) == []


def test_the_check_counts_from_def_to_the_end_of_the_body(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES - 1))
    (tmp_path / "ok.py").write_text(f"@decorator\ndef fits():\n{body}")
    (tmp_path / "long.py").write_text(
        f"class C:\n    def over(self):\n{body.replace('    ', '        ')}        y = 0\n"
    )
    found = sizes(tmp_path)
    assert found["ok.py::fits"] == MAX_FUNCTION_LINES
    assert found["long.py::C.over"] == MAX_FUNCTION_LINES + 1
    assert problems(found, {}) == [
        f"function long.py::C.over has {MAX_FUNCTION_LINES + 1} lines (limit 80); "
        "split it by concept"
    ]


def test_the_known_list_only_shrinks(tmp_path: Path) -> None:
    (tmp_path / "big.py").write_text("x = 0\n" * (MAX_MODULE_LINES + 2))
    found = sizes(tmp_path)
    assert problems(found, {"big.py": MAX_MODULE_LINES + 2}) == []
    assert problems(found, {"big.py": MAX_MODULE_LINES + 1}) == [
        "module big.py grew to 602 lines (listed at 601); shrink it"
    ]
    assert problems(found, {"big.py": 700, "gone.py::f": 90}) == [
        "gone.py::f is within 80 lines now; remove it from KNOWN"
    ]
