"""The Python examples of docs/identity.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "identity.md"


def test_examples_in_the_identity_page_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.S)
    assert blocks, "docs/identity.md should show at least one example"
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})
