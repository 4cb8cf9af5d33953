"""Only a QUAL identity exposes its INS through the API (RNIV EXI SI 08), in reads, searches
and Bundles alike; the store keeps every INS it received."""

from __future__ import annotations

from typing import Any

import httpx

from fhir_server import Server
from parcours.demo import generate_region
from parcours.identity import read_reliability

INS_TEST = "urn:oid:1.2.250.1.213.1.4.10"


def _status(patient: dict[str, Any]) -> str:
    return str(read_reliability(patient).status.value)


def _ins(patient: dict[str, Any]) -> list[str]:
    return [i["value"] for i in patient.get("identifier", []) if i.get("system") == INS_TEST]


def test_ins_leaves_only_with_a_qualified_identity(http: httpx.Client, server: Server) -> None:
    patients = [r for r in generate_region(patients=60) if r["resourceType"] == "Patient"]
    qual = next(p for p in patients if _status(p) == "QUAL" and _ins(p))
    recup = next(p for p in patients if _status(p) == "RECUP" and _ins(p))
    for patient in (qual, recup):
        assert http.put(f"/Patient/{patient['id']}", json=patient).status_code in (200, 201)

    assert _ins(http.get(f"/Patient/{qual['id']}").json()) == _ins(qual)
    assert _ins(http.get(f"/Patient/{recup['id']}").json()) == []
    found = http.get("/Patient", params={"_id": f"{qual['id']},{recup['id']}"}).json()
    by_id = {e["resource"]["id"]: e["resource"] for e in found["entry"]}
    assert _ins(by_id[qual["id"]]) == _ins(qual) and _ins(by_id[recup["id"]]) == []
    history = http.get(f"/Patient/{recup['id']}/_history").json()
    assert all(_ins(e["resource"]) == [] for e in history["entry"] if "resource" in e)
    assert _ins(server.platform.store.read("Patient", recup["id"])) == _ins(recup)
