"""Every public name has a docstring with an example (the examples run as doctests)."""

from __future__ import annotations

import inspect
import sys
import types
from typing import Any

import pytest

import planloop
import planloop.testing


def _constant(obj: Any) -> bool:
    return isinstance(obj, dict | tuple | str | types.UnionType)


def _doc(obj: Any) -> str:
    if _constant(obj):  # a constant or a type alias: documented where it is defined
        return ""
    return inspect.getdoc(obj) or ""


def _constant_doc(module: Any, name: str) -> str:
    """The docstring written under a module-level constant ``NAME = ...``."""
    source = inspect.getsource(inspect.getmodule(module) or module)
    marker = f"\n{name} = "
    start = source.find(marker)
    if start < 0:
        return ""
    doc = source.find('"""', start)
    return source[doc : source.find('"""', doc + 3)] if doc >= 0 else ""


def _has_example(module: Any, name: str) -> bool:
    obj = getattr(module, name)
    text = _doc(obj)
    if not text and _constant(obj):
        owner = inspect.getmodule(getattr(module, "__getattr__", None) or module)
        loaded = [  # namespace packages (planloop.data, once the demo loads it) have no source
            m
            for n, m in sorted(sys.modules.items())
            if n.startswith(module.__name__ + ".") and getattr(m, "__file__", None)
        ]
        for candidate in (owner, *_submodules(module), *loaded):
            text = _constant_doc(candidate, name)
            if text:
                break
    return ">>>" in text


def _submodules(module: Any) -> list[Any]:
    import importlib
    import pkgutil

    found = []
    for info in pkgutil.iter_modules(module.__path__):
        if info.name != "plugin":
            found.append(importlib.import_module(f"{module.__name__}.{info.name}"))
    return found


@pytest.mark.parametrize("name", planloop.testing.__all__)
def test_every_name_of_planloop_testing_has_an_example(name: str) -> None:
    assert _has_example(planloop.testing, name), f"planloop.testing.{name} has no >>> example"


def test_every_name_of_planloop_has_an_example() -> None:
    missing = sorted(name for name in planloop.__all__ if not _has_example(planloop, name))
    assert not missing, f"give these public names a docstring with a >>> example: {missing}"


def test_the_module_of_planloop_testing_has_an_example() -> None:
    assert ">>>" in (planloop.testing.__doc__ or "")


@pytest.mark.parametrize(
    "module_name", ["planloop.models", "planloop.visualize", "planloop.compat.langchain"]
)
def test_every_name_of_the_public_subpackages_has_an_example(module_name: str) -> None:
    import importlib

    module = importlib.import_module(module_name)
    missing = sorted(name for name in module.__all__ if not _has_example(module, name))
    assert not missing, f"give these names of {module_name} a >>> example: {missing}"
