"""``parcours audit verify | report | break-glass`` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from parcours.audit import AuditTrail
from parcours.cli import main

from .conftest import NURSE, T0, Tamper, entry


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PARCOURS_DATABASE_URL", database_url)
    monkeypatch.setenv("PARCOURS_LOG_JSON", "false")
    return database_url


def _fill(trail: AuditTrail) -> None:
    trail.record([entry("read", at=T0, patients=("p1",))])
    trail.record(
        [entry("break-glass", at=T0 + 1, agent=NURSE, patients=("p1",), reason="urgence vitale")]
    )
    trail.record([entry("read", at=T0 + 2, agent=NURSE, patients=("p1",), purpose="BTG")])


def test_verify_intact_then_broken(
    env: str, trail: AuditTrail, tamper: Tamper, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(trail)
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("intact: 3 entries; head seq=3 hash=")
    tamper("UPDATE audit_event SET outcome = 8 WHERE seq = 2")
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert "seq=2" in err and "hash mismatch" in err


def test_verify_with_anchor(
    env: str, trail: AuditTrail, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(trail)
    head = trail.verify()
    assert main(["audit", "verify", "--anchor", f"{head.head_seq}:{head.head_hash}"]) == 0
    assert main(["audit", "verify", "--anchor", f"2:{'a' * 64}"]) == 1
    assert "seq=2" in capsys.readouterr().err


def test_verify_in_a_subprocess(env: str, trail: AuditTrail, tamper: Tamper) -> None:
    _fill(trail)
    command = [sys.executable, "-m", "parcours.cli", "audit", "verify"]
    ok = subprocess.run(command, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    tamper("DELETE FROM audit_event WHERE seq = 3")
    broken = subprocess.run(command, capture_output=True, text=True, check=False)
    assert broken.returncode == 1
    assert "seq=3" in broken.stderr and "missing" in broken.stderr


def test_report(env: str, trail: AuditTrail, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(trail)
    assert main(["audit", "report", "--patient", "Patient/p1", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["patient"] == "Patient/p1"
    assert [(a["agent"], a["count"], a["break_glass"]) for a in report["agents"]] == [
        ("account/bmartin", 2, True),
        ("account/jdupont", 1, False),
    ]
    assert main(["audit", "report", "--patient", "p1", "--since", "2025-01-07T09:30:00.001Z"]) == 0
    text = capsys.readouterr().out
    assert "Bruno Martin" in text and "BREAK-GLASS" in text and "Dupont" not in text
    # Consulting the trail about a patient is itself recorded, and the chain stays intact.
    assert trail.verify().checked == 5
    with trail.store.begin(readonly=True) as tx:
        (last,), _, _ = trail.search(tx.conn, [("_count", "1")], 1, None)
    assert last["agent"][0]["altId"].startswith("cli/")
    assert last["entity"][0]["what"]["reference"] == "Patient/p1"


def test_break_glass_listing(
    env: str, trail: AuditTrail, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(trail)
    assert main(["audit", "break-glass"]) == 0
    out = capsys.readouterr().out
    assert "2 break-glass access(es)" in out
    assert "urgence vitale" in out and "Patient/p1" in out and "Bruno Martin" in out
    assert main(["audit", "break-glass", "--since", "2026-01-01", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_bad_date_is_a_usage_error(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["audit", "break-glass", "--since", "yesterday"])
    assert exc.value.code == 2
    assert "not a FHIR date" in capsys.readouterr().err
