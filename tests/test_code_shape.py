"""The package stays easy to read and honest about what it uses.

No module is over 600 lines and no function over 80: a function is counted from
its ``def`` line to the last line of its body (decorators excluded), a module by
its lines. No code reaches into pydantic's private attributes or keys a cache
on ``id()`` of an object.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import planloop

PACKAGE = Path(planloop.__file__).parent
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


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
    """The length of every module (``path``) and function (``path::qualname``) in ``package``."""
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


def problems(found: dict[str, int]) -> list[str]:
    """Every module or function over its limit."""
    return [
        f"{'function' if '::' in key else 'module'} {key} has {length} lines "
        f"(limit {_limit(key)}); split it by concept"
        for key, length in sorted(found.items())
        if length > _limit(key)
    ]


def test_no_module_or_function_is_too_long() -> None:
    assert problems(sizes(PACKAGE)) == []


def test_the_check_counts_from_def_to_the_end_of_the_body(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_FUNCTION_LINES - 1))
    (tmp_path / "ok.py").write_text(f"@decorator\ndef fits():\n{body}")
    (tmp_path / "long.py").write_text(
        f"class C:\n    def over(self):\n{body.replace('    ', '        ')}        y = 0\n"
    )
    found = sizes(tmp_path)
    assert found["ok.py::fits"] == MAX_FUNCTION_LINES
    assert found["long.py::C.over"] == MAX_FUNCTION_LINES + 1
    assert problems(found) == [
        f"function long.py::C.over has {MAX_FUNCTION_LINES + 1} lines (limit 80); "
        "split it by concept"
    ]


# pydantic's private attributes and slots (``__pydantic_validator__``,
# ``__pydantic_fields_set__``...), and ``id(obj)`` used as a key.
_FORBIDDEN = re.compile(r"__pydantic_\w+__|(?<![\w.])id\(")


def forbidden_uses(package: Path) -> list[str]:
    """Lines of ``package`` that use pydantic internals or call ``id()``, as ``path:line``."""
    return [
        f"{path.relative_to(package).as_posix()}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _FORBIDDEN.search(line)
    ]


def test_no_pydantic_internals_or_identity_keys() -> None:
    assert forbidden_uses(PACKAGE) == []


def test_the_internals_check_sees_them(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "v = Model.__pydantic_validator__\ncache[id(obj)] = 1\nok = by_id(x)\n"
    )
    assert [hit.split(":")[1] for hit in forbidden_uses(tmp_path)] == ["1", "2"]
