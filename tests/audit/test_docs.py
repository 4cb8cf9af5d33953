"""The Python example of docs/audit.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"


def test_example_in_the_audit_page_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.S)
    assert blocks, "docs/audit.md should show an example"
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
