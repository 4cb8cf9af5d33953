"""The package's public face: one sorted ``__all__``, and every module declares its own."""

from __future__ import annotations

import importlib
import pkgutil

import parcours.store.search as search


def test_package_all_is_sorted_and_complete() -> None:
    assert search.__all__ == sorted(search.__all__)
    assert set(search.__all__) == {
        "SearchParam",
        "SearchParameterRegistry",
        "SearchRequest",
        "SearchResult",
        "format_search",
        "parse_search",
        "run_search",
    }
    for name in search.__all__:
        assert hasattr(search, name), name


def test_every_module_declares_all() -> None:
    for info in pkgutil.iter_modules(search.__path__):
        module = importlib.import_module(f"{search.__name__}.{info.name}")
        assert hasattr(module, "__all__"), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"
