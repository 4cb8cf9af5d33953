"""The package's public names are exactly its ``__all__``, each importable."""

from __future__ import annotations

import parcours.pathways as pathways


def test_all_is_sorted_and_complete() -> None:
    assert pathways.__all__ == sorted(pathways.__all__)
    public = {name for name in vars(pathways) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(pathways, name)).__name__ == "module"}
    assert public - modules == set(pathways.__all__)
