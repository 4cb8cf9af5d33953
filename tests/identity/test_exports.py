"""The package ``__init__`` is the contract: one sorted ``__all__`` matching the namespace."""

from __future__ import annotations

import importlib
import pkgutil

import parcours.identity as identity


def isort_style(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


def test_all_is_sorted_and_complete() -> None:
    assert identity.__all__ == sorted(identity.__all__, key=isort_style)
    public = {name for name in vars(identity) if not name.startswith("_")}
    modules = {m.name for m in pkgutil.iter_modules(identity.__path__)}
    assert public - modules - {"annotations"} == set(identity.__all__)


def test_every_module_declares_all_and_the_package_reexports_it() -> None:
    for info in pkgutil.iter_modules(identity.__path__):
        module = importlib.import_module(f"parcours.identity.{info.name}")
        assert module.__all__ == sorted(module.__all__, key=isort_style), info.name
        if info.name != "frcore":
            assert set(module.__all__) <= set(identity.__all__), info.name
