"""Server time of the coordinator's workspace: the home page ("ma file active") and the patient
page, p95, with the demo region loaded at the given scale (issue 8's goal: ≤ 150 ms at
100 k patients).

The demo region is loaded through the store (validated, indexed, matched: slow at regional
scale, about an hour for 100 k patients on 2 cores), so a loaded database can be reused with
``--database-url``. ``parcours serve`` runs as a real process; each page is requested over
real HTTP with the session cookie of a demo account (the GP and the DAC coordinator), every
read going through the FHIR engine and the audit trail as in production. The server time is
the page's ``Server-Timing`` (from the session check to the rendered page); the client time
over loopback is reported too.

    .venv/bin/python -m bench.web_bench --patients 2000 --repeats 200
    .venv/bin/python -m bench.web_bench --database-url sqlite:////tmp/p100k.db --repeats 300
"""

from __future__ import annotations

import argparse
import json
import platform as host
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench._server import running_server, scratch_database
from bench.fhir_bench import percentiles
from parcours.config import Settings
from parcours.demo import DEMO_USERS, load_demo
from parcours.platform import build_platform
from parcours.store.schema import resource
from parcours.store.schema_version import ensure_schema
from parcours.store.search import parse_search
from parcours.web import DEMO_PASSWORD, ensure_demo_accounts

TOKEN = "bench-admin-token-0123456789"
RESULTS = Path(__file__).parent / "results" / "web.json"


def load(database_url: str, patients: int) -> float:
    settings = Settings(database_url=database_url, admin_token=TOKEN, sqlite_synchronous="OFF")
    platform = build_platform(settings)
    try:
        ensure_schema(platform.store.engine)
        started = time.perf_counter()
        load_demo(platform.store, patients=patients, batch_size=500)
        ensure_demo_accounts(platform.store, settings)
        return time.perf_counter() - started
    finally:
        platform.close()


def census(database_url: str) -> tuple[int, dict[str, list[str]]]:
    """Patients stored, and for each demo user the patients of their circles (page targets)."""
    platform = build_platform(Settings(database_url=database_url, admin_token=TOKEN))
    try:
        ensure_demo_accounts(platform.store, platform.settings)
        with platform.store.begin(readonly=True) as tx:
            count = tx.conn.execute(
                select(func.count()).where(
                    resource.c.type == "Patient", resource.c.deleted.is_(False)
                )
            ).scalar_one()
            targets = {}
            for user in DEMO_USERS:
                if user.username not in ("medecin", "coordinatrice"):
                    continue
                query = parse_search(
                    "CareTeam",
                    [
                        ("participant", f"PractitionerRole/{user.practitioner_role_id}"),
                        ("_count", "50"),
                    ],
                    platform.registry,
                )
                targets[user.username] = [
                    t["subject"]["reference"].split("/", 1)[1] for t in tx.search(query).matches
                ]
        return int(count), targets
    finally:
        platform.close()


def _server_ms(response: httpx.Response) -> float:
    timing = response.headers.get("server-timing", "")
    for part in timing.split(","):
        name, _, params = part.strip().partition(";")
        if name == "app" and params.startswith("dur="):
            return float(params[4:])
    raise RuntimeError(f"no Server-Timing on {response.request.url}")


def measure(base: str, targets: dict[str, list[str]], repeats: int) -> dict[str, Any]:
    rng = random.Random(8)
    out: dict[str, Any] = {}
    for username, patients in targets.items():
        with httpx.Client(base_url=base, timeout=60) as client:
            login = client.post(
                "/connexion",
                data={"identifiant": username, "mot_de_passe": DEMO_PASSWORD, "suivant": "/"},
            )
            if login.status_code >= 400 or "parcours_session" not in client.cookies:
                raise RuntimeError(f"login of {username} failed: {login.status_code}")
            for page in ("home", "patient"):
                server, client_ms = [], []
                for i in range(repeats + 5):
                    url = "/" if page == "home" else f"/patients/{rng.choice(patients)}"
                    started = time.perf_counter()
                    response = client.get(url)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        raise RuntimeError(f"{url} -> {response.status_code}")
                    if i >= 5:  # warm-up
                        server.append(_server_ms(response))
                        client_ms.append(elapsed)
                out[f"{page}:{username}"] = {
                    "server_ms": percentiles(server),
                    "client_ms": percentiles(client_ms),
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=2000, help="demo region size to load")
    parser.add_argument("--database-url", help="an already loaded demo database (reused)")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    load_seconds = None
    cleanup = None
    with tempfile.TemporaryDirectory() as workdir:
        url = args.database_url
        if url is None:
            url, cleanup = scratch_database("sqlite", Path(workdir), "web")
            load_seconds = load(url, args.patients)
        try:
            patients, targets = census(url)
            with running_server(url, TOKEN) as base:
                pages = measure(base, targets, args.repeats)
        finally:
            if cleanup is not None:
                cleanup()
    goal = 150.0
    worst = max(v["server_ms"]["p95"] for v in pages.values())
    result = {
        "benchmark": "web",
        "goal": "server time p95 <= 150 ms for the home and patient pages at regional scale",
        "database": "sqlite" if url.startswith("sqlite") else "postgresql",
        "patients": patients,
        "load_seconds": round(load_seconds, 1) if load_seconds is not None else None,
        "repeats": args.repeats,
        "pages": pages,
        "worst_server_p95_ms": worst,
        "meets_goal": worst <= goal,
        "machine": {"python": host.python_version(), "cpus": host.machine()},
        "command": "python -m bench.web_bench "
        + (
            f"--database-url <{patients} patients>"
            if args.database_url
            else f"--patients {args.patients}"
        )
        + f" --repeats {args.repeats}",
    }
    for name, figures in pages.items():
        server_p95, client_p95 = figures["server_ms"]["p95"], figures["client_ms"]["p95"]
        print(f"{name:28} server p95 {server_p95:7.1f} ms   client p95 {client_p95:7.1f} ms")
    print(f"worst server p95: {worst} ms (goal {goal} ms) with {patients} patients")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
