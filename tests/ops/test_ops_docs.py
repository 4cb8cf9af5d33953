"""docs/operations.md is executed: its Python blocks run against a real SQLite store, its JSON
examples parse and match what the code writes, and it documents every PARCOURS_* variable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import update

from parcours.ops import JsonFormatter, check_health
from parcours.store import Store, make_engine
from parcours.store.outbox import EventState, event_state
from parcours.store.schema import outbox
from parcours.store.schema_version import ensure_schema

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
CONFIG = Path(__file__).resolve().parents[2] / "src" / "parcours" / "config.py"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_setting_is_documented() -> None:
    names = set(re.findall(r'get\("([A-Z_]+)"\)', CONFIG.read_text()))
    assert names, "config.py no longer reads variables the way this test expects"
    documented = set(re.findall(r"`PARCOURS_([A-Z_]+)`", DOC.read_text()))
    assert names <= documented, sorted(names - documented)


def test_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'parcours.db'}"
    engine = make_engine(url)
    ensure_schema(engine)
    store = Store(engine)
    store.update({"resourceType": "Patient", "id": "p1"})
    with store.begin() as tx:
        tx.conn.execute(update(outbox).values(dead_at=1, attempts=8, last_error="x: boom"))
    monkeypatch.setenv("PARCOURS_DATABASE_URL", url)
    code = blocks("python")
    assert len(code) == 2
    for block in code:
        exec(compile(block, str(DOC), "exec"), {})
    assert event_state(store, 1) is EventState.PENDING  # the dead letter was retried
    engine.dispose()


def test_json_examples_have_the_real_fields(tmp_path: Path) -> None:
    health_example, log_example = (json.loads(b) for b in blocks("json"))
    engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
    ensure_schema(engine)
    real = check_health(Store(engine)).body
    engine.dispose()
    assert set(health_example) == set(real)
    assert set(health_example["outbox"]) == set(real["outbox"])

    import logging

    record = logging.LogRecord("parcours.access", logging.INFO, __file__, 1, "m", None, None)
    for key in ("method", "path", "status", "duration_ms"):
        setattr(record, key, 1)
    assert set(log_example) == set(json.loads(JsonFormatter().format(record)))
