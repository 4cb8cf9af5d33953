"""docs/pathways.md: its YAML example is a valid pathway, its Python example runs."""

from __future__ import annotations

import re
from pathlib import Path

from parcours.pathways import load_yaml
from parcours.pathways.yaml_io import iter_library

DOC = Path(__file__).resolve().parents[2] / "docs" / "pathways.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text("utf-8"), re.S)


def test_yaml_example_is_a_valid_pathway() -> None:
    (example,) = _blocks("yaml")
    definition = load_yaml(example, "docs/pathways.md")
    assert [s.id for s in definition.steps] == ["screening", "exercise", "advice"]


def test_python_example_runs() -> None:
    (example,) = _blocks("python")
    exec(compile(example, str(DOC), "exec"), {})


def test_library_table_lists_every_shipped_pathway() -> None:
    text = DOC.read_text("utf-8")
    for path in iter_library():
        assert f"| `{path.stem}` |" in text
