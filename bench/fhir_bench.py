"""FHIR store benchmark: bundle import, CRUD throughput and ten coordination searches.

Runs the real server (``parcours serve``) on SQLite and/or PostgreSQL, loads a synthetic
population through transaction Bundles of 100 resources, then measures single create / read /
update throughput with concurrent clients and the latency of ten typical coordination queries.
Prints the figures and writes ``bench/results/fhir.json``. A benchmark, never a test.

    .venv/bin/python bench/fhir_bench.py --patients 100000 --observations 1000000
    .venv/bin/python bench/fhir_bench.py --db postgresql --patients 10000 --observations 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import create_engine, text

from bench._names import FAMILIES
from bench._server import running_server, scratch_database

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "bench-token-" + "x" * 20
INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.10"
GIVENS = [
    "JEAN",
    "MARIE",
    "PIERRE",
    "NATHALIE",
    "MICHEL",
    "ISABELLE",
    "ALAIN",
    "SYLVIE",
    "PHILIPPE",
    "CATHERINE",
    "LOUIS",
    "CHANTAL",
    "PAUL",
    "MONIQUE",
    "JACQUES",
    "ANNE",
]
LOINC = [
    ("8867-4", "Heart rate", "/min"),
    ("8480-6", "Systolic blood pressure", "mm[Hg]"),
    ("29463-7", "Body weight", "kg"),
    ("2339-0", "Glucose", "mg/dL"),
]


COMMUNES = [
    ("21231", "Dijon", "21000"),
    ("25056", "Besançon", "25000"),
    ("39300", "Lons-le-Saunier", "39000"),
    ("58194", "Nevers", "58000"),
    ("70550", "Vesoul", "70000"),
    ("71270", "Mâcon", "71000"),
    ("89024", "Auxerre", "89000"),
    ("90010", "Belfort", "90000"),
]
FR_CORE = "https://hl7.fr/ig/fhir/core"
BIRTH_GIVEN_NAMES = f"{FR_CORE}/StructureDefinition/fr-core-patient-birth-list-given-name"


def traits(n: int) -> tuple[str, int, int, int, tuple[str, str, str]]:
    """Sex, birth year, month, day and birthplace of person ``n``, all distinct INS for n < 15 M."""
    sex = "male" if n % 2 else "female"
    year = 1930 + (n // 2) % 80
    month = 1 + (n // 160) % 12
    return sex, year, month, 1 + n % 28, COMMUNES[(n // 1920) % 8]


def ins_for(n: int) -> str:
    sex, year, month, _day, (cog, _city, _postcode) = traits(n)
    first13 = (
        f"{1 if sex == 'male' else 2}{year % 100:02d}{month:02d}{cog}{(n // 15360) % 1000:03d}"
    )
    return first13 + f"{97 - int(first13) % 97:02d}"


def patient(n: int) -> dict[str, Any]:
    """An FR Core Patient with a qualified test INS, as a hospital would send it."""
    rng = random.Random(n)
    sex, year, month, day, (cog, city, postcode) = traits(n)
    family = rng.choice(FAMILIES) + ("" if n % 7 else f"-{rng.choice(FAMILIES)}")
    given = [rng.choice(GIVENS), rng.choice(GIVENS)]
    return {
        "resourceType": "Patient",
        "meta": {"profile": [f"{FR_CORE}/StructureDefinition/fr-core-patient-ins"]},
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {
                    "extension": [
                        {
                            "url": f"{FR_CORE}/StructureDefinition/fr-core-address-insee-code",
                            "valueCoding": {
                                "system": "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/"
                                "TRE-R13-CommuneOM",
                                "code": cog,
                            },
                        }
                    ],
                    "city": city,
                },
            },
            {
                "url": f"{FR_CORE}/StructureDefinition/fr-core-identity-reliability",
                "extension": [
                    {
                        "url": "identityStatus",
                        "valueCoding": {
                            "system": f"{FR_CORE}/CodeSystem/fr-core-cs-identity-status",
                            "code": "QUAL",
                        },
                    },
                    {
                        "url": "validationMode",
                        "valueCoding": {
                            "system": f"{FR_CORE}/CodeSystem/fr-core-cs-mode-validation-identity",
                            "code": "CN",
                        },
                    },
                ],
            },
        ],
        "identifier": [
            {
                "use": "official",
                "type": {
                    "coding": [
                        {
                            "system": f"{FR_CORE}/CodeSystem/fr-core-cs-v2-0203",
                            "code": "INS-NIR-TEST",
                        }
                    ]
                },
                "system": INS_SYSTEM,
                "value": ins_for(n),
            },
            {"use": "usual", "system": "urn:oid:1.2.250.1.71.4.2.7.999", "value": f"IPP{n:08d}"},
        ],
        "name": [
            {
                "use": "official",
                "family": family,
                "given": given[:1],
                "extension": [
                    {
                        "url": BIRTH_GIVEN_NAMES,
                        "valueString": " ".join(given),
                    }
                ],
            }
        ],
        "gender": sex,
        "birthDate": f"{year}-{month:02d}-{day:02d}",
        "address": [{"city": city, "postalCode": postcode}],
    }


def observation(n: int, patient_ref: str) -> dict[str, Any]:
    code, display, unit = LOINC[n % len(LOINC)]
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": (
            f"{2024 + n % 2}-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00Z"
        ),
        "valueQuantity": {
            "value": 40 + n % 160,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def bundle(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def put(res: dict[str, Any], res_id: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{res['resourceType']}/{res_id}",
        "resource": {**res, "id": res_id},
        "request": {"method": "PUT", "url": f"{res['resourceType']}/{res_id}"},
    }


def population_bundles(
    patients: int, observations: int, organisations: int
) -> list[dict[str, Any]]:
    """Transactions of 100: organisations, patients (+ encounters, tasks), observations."""
    entries: list[dict[str, Any]] = []
    for o in range(organisations):
        entries.append(
            put(
                {
                    "resourceType": "Organization",
                    "name": f"CH bench {o}",
                    "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.2", "value": f"1{o:08d}"}],
                },
                f"org-{o}",
            )
        )
    for p in range(patients):
        entries.append(put(patient(p), f"pat-{p}"))
        if p % 2 == 0:
            entries.append(
                put(
                    {
                        "resourceType": "Encounter",
                        "status": "in-progress" if p % 10 == 0 else "finished",
                        "class": {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "EMER" if p % 20 == 0 else "IMP",
                        },
                        "subject": {"reference": f"Patient/pat-{p}"},
                        "serviceProvider": {"reference": f"Organization/org-{p % organisations}"},
                        "period": {"start": f"2025-{1 + p % 12:02d}-{1 + p % 28:02d}T10:05:00Z"},
                    },
                    f"enc-{p}",
                )
            )
        if p % 5 == 0:
            entries.append(
                put(
                    {
                        "resourceType": "Task",
                        "status": "requested" if p % 3 else "completed",
                        "intent": "plan",
                        "for": {"reference": f"Patient/pat-{p}"},
                        "description": "Appel de suivi à J+10",
                    },
                    f"task-{p}",
                )
            )
    for n in range(observations):
        entries.append(put(observation(n, f"Patient/pat-{n % patients}"), f"obs-{n}"))
    return [bundle(entries[i : i + 100]) for i in range(0, len(entries), 100)]


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "n": len(ordered)}


async def run_concurrently(
    jobs: list[Callable[[], Awaitable[float]]], concurrency: int
) -> list[float]:
    queue: asyncio.Queue[Callable[[], Awaitable[float]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    results: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            results.append(await job())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def timed(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> float:
    start = time.perf_counter()
    response = await client.request(method, url, **kwargs)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code >= 400:
        raise RuntimeError(f"{method} {url} -> {response.status_code}: {response.text[:300]}")
    return elapsed


def analyze(database_url: str) -> None:
    """What an operator runs after a bulk import (docs/operations.md): fresh planner
    statistics, instead of waiting for autovacuum to notice a million new rows."""
    if "postgresql" not in database_url:
        return
    engine = create_engine(database_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


async def measure(base: str, args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    async with httpx.AsyncClient(
        base_url=f"{base}/fhir", headers=headers, timeout=300, limits=limits
    ) as client:
        out: dict[str, Any] = {}
        bundles = population_bundles(args.patients, args.observations, args.organisations)
        resources = sum(len(b["entry"]) for b in bundles)
        print(f"  import: {resources} resources in {len(bundles)} transactions ...", flush=True)
        start = time.perf_counter()
        # Serialised before the clock starts: the client's JSON work is not the server's.
        bodies = [orjson.dumps(b) for b in bundles]
        del bundles
        lat = await run_concurrently(
            [lambda b=b: timed(client, "POST", "", content=b) for b in bodies], args.concurrency
        )
        seconds = time.perf_counter() - start
        out["bundle_import"] = {
            "resources": resources,
            "seconds": round(seconds, 1),
            "resources_per_s": round(resources / seconds, 1),
            "transaction_latency_ms": percentiles(lat),
        }
        print(f"  import: {out['bundle_import']['resources_per_s']} resources/s", flush=True)
        analyze(database_url)

        n = args.crud
        created: list[str] = [str(uuid.uuid4()) for _ in range(n)]
        for name, jobs in (
            (
                "create",
                [
                    lambda i=i: timed(client, "POST", "Patient", json=patient(10_000_000 + i))
                    for i in range(n)
                ],
            ),
            (
                "read",
                [
                    lambda i=i: timed(client, "GET", f"Patient/pat-{i % args.patients}")
                    for i in range(n)
                ],
            ),
            (
                "update",
                [
                    lambda i=i: timed(
                        client,
                        "PUT",
                        f"Patient/upd-{created[i % 50]}",
                        json={**patient(i), "id": f"upd-{created[i % 50]}", "active": bool(i % 2)},
                    )
                    for i in range(n)
                ],
            ),
        ):
            start = time.perf_counter()
            lat = await run_concurrently(jobs, args.concurrency)
            seconds = time.perf_counter() - start
            out[name] = {"requests_per_s": round(n / seconds, 1), "latency_ms": percentiles(lat)}
            print(
                f"  {name}: {out[name]['requests_per_s']} req/s, "
                f"p95 {out[name]['latency_ms']['p95']} ms",
                flush=True,
            )

        rng = random.Random(7)

        def some_patient() -> int:
            return rng.randrange(args.patients)

        queries: dict[str, Callable[[], str]] = {
            "by_ins": lambda: f"Patient?identifier={INS_SYSTEM}|{ins_for(some_patient())}",
            "by_name_birthdate": lambda: (
                lambda p: (
                    f"Patient?family={patient(p)['name'][0]['family']}"
                    f"&birthdate={patient(p)['birthDate']}"
                )
            )(some_patient()),
            "by_name_prefix_given": lambda: (
                f"Patient?family=mor&given={rng.choice(GIVENS).lower()}&_count=20"
            ),
            "open_tasks_of_patient": lambda: (
                f"Task?subject=Patient/pat-{some_patient() // 5 * 5}&status=requested,in-progress"
            ),
            "encounters_in_progress_by_org": lambda: (
                f"Encounter?service-provider=Organization/org-"
                f"{rng.randrange(args.organisations)}&status=in-progress"
            ),
            "patient_observations_sorted": lambda: (
                f"Observation?subject=Patient/pat-{some_patient()}"
                "&code=http://loinc.org|8867-4&_sort=-date&_count=10"
            ),
            "chained_subject_identifier": lambda: (
                f"Observation?subject.identifier={INS_SYSTEM}|{ins_for(some_patient())}&_count=20"
            ),
            "er_in_progress_include_patient": lambda: (
                "Encounter?class=EMER&status=in-progress&_include=Encounter:subject&_count=20"
            ),
            "patient_revinclude_encounters": lambda: (
                f"Patient?_id=pat-{some_patient() // 2 * 2}&_revinclude=Encounter:subject"
            ),
            "observation_value_range": lambda: (
                "Observation?code=http://loinc.org|8480-6"
                "&value-quantity=gt180&date=ge2025-06-01&_count=20"
            ),
        }
        searches: dict[str, Any] = {}
        for name, make in queries.items():
            urls = [make() for _ in range(args.search_repeats)]
            await timed(client, "GET", urls[0])  # warm the plan cache
            lat = await run_concurrently([lambda u=u: timed(client, "GET", u) for u in urls], 1)
            searches[name] = {"example": urls[0], **percentiles(lat)}
            print(
                f"  search {name}: p50 {searches[name]['p50']} ms, p95 {searches[name]['p95']} ms",
                flush=True,
            )
        out["search_ms"] = searches
        return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--organisations", type=int, default=100)
    parser.add_argument("--crud", type=int, default=2000, help="requests per CRUD interaction")
    parser.add_argument("--search-repeats", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    parser.add_argument("--output", type=Path, default=RESULTS / "fhir.json")
    args = parser.parse_args()

    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    report: dict[str, Any] = {
        "benchmark": "fhir",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "scale": {
            "patients": args.patients,
            "observations": args.observations,
            "organisations": args.organisations,
            "concurrency": args.concurrency,
        },
        "goals": {
            "bundle_import_resources_per_s": 1500,
            "crud_requests_per_s_postgresql": 1000,
            "search_p95_ms": 50,
        },
        "results": {},
    }
    if args.output.exists():
        previous = json.loads(args.output.read_text())
        if previous.get("scale") == report["scale"]:
            report["results"] = previous.get("results", {})
    for kind in kinds:
        print(f"== {kind}", flush=True)
        url, cleanup = scratch_database(kind, args.workdir, "bench")
        try:
            with running_server(url, TOKEN) as base:
                report["results"][kind] = asyncio.run(measure(base, args, url))
        finally:
            cleanup()
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
