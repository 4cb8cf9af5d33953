"""What the access policy costs a search: p95 latency as a professional or a coordinator
against the same search with the admin token (issue 5's goal: at most +20 %).

A region in miniature is loaded in-process (patients with Observations, one care circle each
with a GP and the DAC of its département), then ``parcours serve`` runs as a real process and
each search is timed over real HTTP for the three callers, with the same concurrency. Every
request is audited for every caller, so the difference is the policy alone.

    .venv/bin/python -m bench.policy_bench --patients 5000 --repeats 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform as host
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench._server import running_server, scratch_database
from bench.fhir_bench import analyze, percentiles, run_concurrently, timed
from parcours.auth import issue_token
from parcours.config import Settings
from parcours.platform import build_platform
from parcours.security.principal import Principal
from parcours.store.schema_version import ensure_schema

TOKEN = "bench-admin-token-0123456789"
BASE = "http://parcours.bench"
GPS = 40
DACS = 4
CODES = ("29463-7", "8867-4", "8480-6", "2339-0", "39156-5")


def _ref(kind: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{kind}/{res_id}"}


def load(database_url: str, patients: int, per_patient: int) -> None:
    """Directory, patients, circles and Observations, through the store (validated, indexed)."""
    platform = build_platform(Settings(database_url=database_url, admin_token=TOKEN))
    ensure_schema(platform.store.engine)
    rng = random.Random(5)
    with platform.store.begin() as tx:
        for d in range(DACS):
            tx.update({"resourceType": "Organization", "id": f"dac-{d}", "name": f"DAC {d}"})
        for g in range(GPS):
            tx.update({"resourceType": "Organization", "id": f"cab-{g}", "name": f"Cabinet {g}"})
            tx.update(
                {"resourceType": "Practitioner", "id": f"gp-{g}", "name": [{"family": f"Gp{g}"}]}
            )
            tx.update(
                {
                    "resourceType": "PractitionerRole",
                    "id": f"gp-role-{g}",
                    "active": True,
                    "practitioner": _ref("Practitioner", f"gp-{g}"),
                    "organization": _ref("Organization", f"cab-{g}"),
                }
            )
        tx.update({"resourceType": "Practitioner", "id": "coord", "name": [{"family": "Coord"}]})
        tx.update(
            {
                "resourceType": "PractitionerRole",
                "id": "coord-role",
                "active": True,
                "practitioner": _ref("Practitioner", "coord"),
                "organization": _ref("Organization", "dac-0"),
            }
        )
    batch = 200
    for start in range(0, patients, batch):
        with platform.store.begin() as tx:
            for n in range(start, min(patients, start + batch)):
                pid = f"p{n}"
                tx.update(
                    {
                        "resourceType": "Patient",
                        "id": pid,
                        "name": [{"family": f"Nom{n % 997}", "given": ["Prenom"]}],
                        "gender": "female" if n % 2 else "male",
                        "birthDate": f"19{40 + n % 60}-0{1 + n % 9}-1{n % 10}",
                    }
                )
                tx.update(
                    {
                        "resourceType": "CareTeam",
                        "id": f"ct-{n}",
                        "status": "active",
                        "subject": _ref("Patient", pid),
                        "period": {"start": "2024-01-01"},
                        "managingOrganization": [_ref("Organization", f"dac-{n % DACS}")],
                        "participant": [
                            {
                                "member": _ref("PractitionerRole", f"gp-role-{n % GPS}"),
                                "period": {"start": "2024-01-01"},
                            }
                        ],
                    }
                )
                for k in range(per_patient):
                    tx.create(
                        {
                            "resourceType": "Observation",
                            "status": "final",
                            "code": {
                                "coding": [
                                    {"system": "http://loinc.org", "code": rng.choice(CODES)}
                                ]
                            },
                            "subject": _ref("Patient", pid),
                            "effectiveDateTime": f"2025-0{1 + k % 9}-15",
                            "valueQuantity": {"value": 60 + k, "unit": "kg"},
                        }
                    )
    platform.close()


def tokens(database_url: str) -> dict[str, str]:
    platform = build_platform(Settings(database_url=database_url, admin_token=TOKEN, base_url=BASE))
    settings = platform.settings
    out = {
        "admin": TOKEN,
        "professional": issue_token(
            platform.store,
            Principal("Practitioner/gp-0", frozenset({"professional"}), "Practitioner/gp-0"),
            7200,
            settings=settings,
        ),
        "coordinator": issue_token(
            platform.store,
            Principal("Practitioner/coord", frozenset({"coordinator"}), "Practitioner/coord"),
            7200,
            settings=settings,
        ),
    }
    platform.close()
    return out


def searches(patients: int) -> dict[str, list[str]]:
    # Patients of GP 0 (n % GPS == 0), who are visible to the three callers when also in DAC 0.
    visible = [n for n in range(patients) if n % GPS == 0 and n % DACS == 0]
    return {
        "observations of a patient": [f"/fhir/Observation?subject=Patient/p{n}" for n in visible],
        "observations by code (page of 20)": [f"/fhir/Observation?code={c}" for c in CODES],
        "patients by name": [f"/fhir/Patient?family=Nom{n % 997}" for n in visible],
        "patient with _revinclude": [
            f"/fhir/Patient?_id=p{n}&_revinclude=Observation:subject" for n in visible
        ],
    }


def _job(client: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[float]]:
    return lambda: timed(client, "GET", url)


async def measure(base: str, keys: dict[str, str], repeats: int, patients: int) -> dict[str, Any]:
    """Callers take turns in rounds of 20 requests, so that load changes on this shared machine
    hit the three alike."""
    out: dict[str, Any] = {}
    clients = {
        caller: httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        for caller, token in keys.items()
    }
    try:
        for name, urls in searches(patients).items():
            samples: dict[str, list[float]] = {caller: [] for caller in clients}
            for client in clients.values():
                for url in urls[:5]:  # warm plans and caches
                    await timed(client, "GET", url)
            done = 0
            while done < repeats:
                for caller, client in clients.items():
                    jobs = [_job(client, urls[(done + i) % len(urls)]) for i in range(20)]
                    samples[caller] += await run_concurrently(jobs, 4)
                done += 20
            row: dict[str, Any] = {c: percentiles(v) for c, v in samples.items()}
            admin_p95 = row["admin"]["p95"]
            for caller in ("professional", "coordinator"):
                row[f"{caller}_p95_ratio"] = round(row[caller]["p95"] / admin_p95, 3)
            out[name] = row
            print(
                f"  {name}: p95 admin {admin_p95} ms, professional {row['professional']['p95']}"
                f" ms (x{row['professional_p95_ratio']}), coordinator "
                f"{row['coordinator']['p95']} ms (x{row['coordinator_p95_ratio']})",
                flush=True,
            )
    finally:
        for client in clients.values():
            await client.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--observations", type=int, default=5, help="per patient")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--out", default="bench/results/policy.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "policy",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": __import__("os").cpu_count(), "python": host.python_version()},
        "patients": args.patients,
        "observations_per_patient": args.observations,
        "repeats": args.repeats,
        "concurrency": 4,
        "goal": "policy p95 <= 1.2 x admin p95",
        "databases": {},
    }
    with tempfile.TemporaryDirectory() as workdir:
        for kind in args.databases.split(","):
            url, drop = scratch_database(kind, Path(workdir), "policy")
            try:
                started = time.perf_counter()
                load(url, args.patients, args.observations)
                analyze(url)
                print(f"{kind}: loaded in {time.perf_counter() - started:.0f} s", flush=True)
                keys = tokens(url)
                env = {"PARCOURS_BASE_URL": BASE}
                with running_server(url, TOKEN, extra_env=env) as base:
                    results["databases"][kind] = asyncio.run(
                        measure(base, keys, args.repeats, args.patients)
                    )
            finally:
                drop()
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
