"""The Python example of docs/coordination.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "coordination.md"


def test_example_in_the_coordination_page_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.S)
    assert blocks, "docs/coordination.md should show an example"
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
