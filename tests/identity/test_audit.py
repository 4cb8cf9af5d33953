"""``parcours identity audit`` on a small generated set, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from parcours.cli import main
from parcours.config import Settings
from parcours.errors import InvalidResource
from parcours.identity import AUDIT_MODEL, IdentityCollision
from parcours.platform import build_platform
from parcours.store.schema_version import ensure_schema

GENERATOR = Path(__file__).resolve().parents[2] / "bench" / "identity" / "generate.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("identity_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is being built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_splink_model_is_versioned_package_data() -> None:
    model = json.loads(AUDIT_MODEL.read_text("utf-8"))
    assert model["link_type"] == "dedupe_only"
    assert model["blocking_rules_to_generate_predictions"]
    # Trained: every level but the null one carries m and u (nothing is estimated at run time).
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                assert "m_probability" in level and "u_probability" in level


def test_audit_prints_json_pairs_and_fills_the_queue(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _generator().generate(120, 3)
    platform = build_platform(Settings(database_url=database_url))
    ensure_schema(platform.store.engine)
    stored: set[str] = set()
    try:
        for patient in [*data.store, *data.incoming]:
            try:
                platform.store.update(patient)
            except (IdentityCollision, InvalidResource):
                # Refused as they must be: same INS with conflicting traits, or an INS
                # without the FR Core list of given names (a corruption of the generator).
                continue
            stored.add(patient["id"])
    finally:
        platform.close()
    monkeypatch.setenv("PARCOURS_DATABASE_URL", database_url)

    assert main(["identity", "audit", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["records"] == len(stored)
    pairs = out["pairs"]
    assert pairs and out["queued"] == len(pairs)
    scores = [p["match_probability"] for p in pairs]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.5
    truth = data.truth
    ids = [[ref.removeprefix("Patient/") for ref in p["patients"]] for p in pairs]
    correct = sum(truth[a] == truth[b] for a, b in ids)
    assert correct / len(ids) >= 0.8
    # No trait or INS in the output: ids, scores and flags only.
    assert set(pairs[0]) == {"patients", "match_probability", "match_weight", "same_ins"}

    assert main(["identity", "queue", "--format", "json", "--limit", "1000"]) == 0
    queue = json.loads(capsys.readouterr().out)
    audited = {tuple(sorted(row["patients"])) for row in queue if row["source"] == "audit"}
    assert audited <= {tuple(sorted(p["patients"])) for p in pairs}
    assert len(audited) > 0
    assert all(row["status"] == "open" for row in queue if row["source"] == "audit")

    # Rerunning the audit keeps the queue as it is (one row per pair).
    assert main(["identity", "audit"]) == 0
    assert "pairs" in capsys.readouterr().out
    assert main(["identity", "queue", "--format", "json", "--limit", "1000"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(queue)
