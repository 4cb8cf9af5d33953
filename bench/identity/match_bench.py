"""``Patient/$match`` latency with 100 k stored identities, over real HTTP.

1. generate ``--persons`` stored identities and as many incoming records (generate.py:
   half of the incoming ones are corrupted copies of stored persons);
2. load the stored ones through the store (``build_platform``: FR Core validation, index,
   outbox and the online-matching hook on every write), ``--batch`` per transaction; a record
   the rules refuse (collision, FR Core error) is skipped and counted;
3. start ``parcours serve`` on that database and time ``--queries`` sequential
   ``POST /fhir/Patient/$match`` of incoming records; print p50/p95/p99.

    .venv/bin/python bench/identity/match_bench.py --persons 100000 [--db sqlite|postgresql]

Writes bench/results/identity_match.json. A benchmark, never a test (goal: p95 <= 50 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "identity"))

from bench._server import running_server  # noqa: E402
from generate import generate  # noqa: E402

from parcours.config import Settings  # noqa: E402
from parcours.errors import ParcoursError  # noqa: E402
from parcours.platform import build_platform  # noqa: E402
from parcours.store.schema_version import ensure_schema  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RESULTS = REPO / "bench" / "results"


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "n": len(ordered)}


def load(url: str, patients: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    platform = build_platform(Settings(database_url=url))
    ensure_schema(platform.store.engine)
    refused: dict[str, int] = {}
    started = time.perf_counter()
    try:
        for i in range(0, len(patients), batch):
            chunk = patients[i : i + batch]
            try:
                with platform.store.begin() as tx:
                    for patient in chunk:
                        tx.update(patient)
            except ParcoursError:
                # One refused record rolls its batch back: redo it one by one.
                for patient in chunk:
                    try:
                        platform.store.update(patient)
                    except ParcoursError as exc:
                        refused[type(exc).__name__] = refused.get(type(exc).__name__, 0) + 1
            if (i // batch) % 20 == 0:
                rate = (i + len(chunk)) / (time.perf_counter() - started)
                print(f"  loaded {i + len(chunk)} ({rate:.0f}/s)", flush=True)
    finally:
        platform.close()
    seconds = time.perf_counter() - started
    return {
        "records": len(patients),
        "refused": refused,
        "seconds": round(seconds, 1),
        "per_second": round(len(patients) / seconds, 1),
    }


def measure(base: str, incoming: list[dict[str, Any]], queries: int) -> dict[str, Any]:
    rng = random.Random(1)
    sample = rng.sample(incoming, min(queries, len(incoming)))
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}
    timings: list[float] = []
    found = 0
    with httpx.Client(base_url=f"{base}/fhir", headers=headers, timeout=30) as client:
        for patient in sample[:20]:  # warm-up
            client.post("/Patient/$match", json=_parameters(patient))
        for patient in sample:
            started = time.perf_counter()
            response = client.post("/Patient/$match", json=_parameters(patient))
            timings.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            found += bool(response.json().get("entry"))
    return {**percentiles(timings), "queries_with_a_match": found}


def _parameters(patient: dict[str, Any]) -> dict[str, Any]:
    query = {k: v for k, v in patient.items() if k != "id"}
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": query},
            {"name": "count", "valueInteger": 10},
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    parser.add_argument("--output", type=Path, default=RESULTS / "identity_match.json")
    args = parser.parse_args()

    data = generate(args.persons, args.seed)
    if args.db == "sqlite":
        path = args.workdir / f"identity-match-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    try:
        print(f"loading {len(data.store)} identities through the store ({args.db})", flush=True)
        loading = load(url, data.store, args.batch)
        print(f"  {loading}", flush=True)
        with running_server(url, TOKEN) as base:
            result = measure(base, data.incoming, args.queries)
    finally:
        if args.db == "sqlite":
            for leftover in args.workdir.glob(path.name + "*"):
                leftover.unlink()
        else:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    report: dict[str, Any] = {
        "benchmark": "identity_match",
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "stored_identities": args.persons,
        "goal": {"p95_ms": 50},
        "results": {},
    }
    if args.output.exists():
        # One file for both databases: keep the other one's figures from an equal-scale run.
        previous = json.loads(args.output.read_text())
        if previous.get("stored_identities") == args.persons:
            report["results"] = previous.get("results", {})
    report["results"][args.db] = {
        "load_through_store": loading,
        "match_ms": result,
        "command": " ".join(sys.argv),
    }
    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
