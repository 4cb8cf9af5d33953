"""``__all__`` is the contract of each package (STYLE 1.1): it must match the namespace."""

from __future__ import annotations

import types

import pytest

import parcours.ops
import parcours.store.outbox


@pytest.mark.parametrize("package", [parcours.ops, parcours.store.outbox])
def test_all_matches_the_public_namespace(package: types.ModuleType) -> None:
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert sorted(package.__all__) == sorted(public)
    for name in package.__all__:
        value = getattr(package, name)
        if callable(value) and hasattr(value, "__module__"):
            assert value.__module__ == package.__name__, name
