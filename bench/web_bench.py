"""Server time of the coordinator's workspace: the home page ("ma file active") and the patient
page, p95, with the demo region loaded at the given scale (issue 8's goal: ≤ 150 ms at
100 k patients).

The demo region is loaded through the store (validated, indexed, matched), in bulk
(``parcours.store.bulk``) with a second process validating ahead; a regional-scale database is
built once with ``--load-only`` and reused with ``--database-url``; the import's events are
then delivered (``parcours outbox work --once``) so that the pages are timed in steady state.
``parcours serve`` runs as a real process; each page is requested over real HTTP with the
session cookie of a demo account (the GP and the DAC coordinator), every read going through
the FHIR engine and the audit trail as in production. The server time is the page's
``Server-Timing`` (from the session check to the rendered page); the client time over
loopback is reported too.

    .venv/bin/python -m bench.web_bench --patients 2000 --repeats 200
    .venv/bin/python -m bench.web_bench --load-only --patients 100000 \
        --database-url sqlite:////tmp/p100k.db
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
from parcours.serve import run_outbox_worker
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
        # A second process validates the next batches while this one writes them.
        load_demo(platform.store, patients=patients, batch_size=500, prevalidate=settings)
        ensure_demo_accounts(platform.store, settings)
        return time.perf_counter() - started
    finally:
        platform.close()


def drain(database_url: str) -> float:
    """Deliver the events of the import (notifications, pathway rules...) before measuring:
    the pages are timed in the platform's steady state, not while its outbox worker is busy
    with a region's whole initial import."""
    started = time.perf_counter()
    code = run_outbox_worker(
        Settings(database_url=database_url, admin_token=TOKEN, log_level="WARNING"), once=True
    )
    if code != 0:
        raise RuntimeError(f"the outbox worker stopped with {code}")
    return time.perf_counter() - started


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
    parser.add_argument(
        "--load-only",
        action="store_true",
        help="load --patients into the empty --database-url, print the time taken and stop "
        "(build a regional-scale database once, then measure it as often as needed)",
    )
    parser.add_argument(
        "--sqlite-synchronous",
        help="the server's PARCOURS_SQLITE_SYNCHRONOUS (default: the platform's, FULL)",
    )
    parser.add_argument(
        "--no-drain",
        action="store_true",
        help="measure without delivering the import's events first; the server then runs "
        "without its in-process outbox dispatcher (as API processes do beside separate "
        "`parcours outbox work` workers), so the backlog does not compete with the pages",
    )
    args = parser.parse_args()
    if args.load_only:
        if args.database_url is None:
            parser.error("--load-only needs --database-url (an empty database to fill)")
        seconds = load(args.database_url, args.patients)
        print(f"loaded {args.patients} patients into {args.database_url} in {seconds:.1f} s")
        return
    load_seconds = None
    cleanup = None
    with tempfile.TemporaryDirectory() as workdir:
        url = args.database_url
        if url is None:
            url, cleanup = scratch_database("sqlite", Path(workdir), "web")
            load_seconds = load(url, args.patients)
        try:
            drain_seconds = None if args.no_drain else drain(url)
            patients, targets = census(url)
            env = {"PARCOURS_OUTBOX_WORKERS": "0"} if args.no_drain else {}
            if args.sqlite_synchronous:
                env["PARCOURS_SQLITE_SYNCHRONOUS"] = args.sqlite_synchronous
            with running_server(url, TOKEN, extra_env=env) as base:
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
        "outbox_drain_seconds": round(drain_seconds, 1) if drain_seconds is not None else None,
        "in_process_dispatcher": not args.no_drain,
        "repeats": args.repeats,
        "sqlite_synchronous": args.sqlite_synchronous or "FULL",
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
        + f" --repeats {args.repeats}"
        + (f" --sqlite-synchronous {args.sqlite_synchronous}" if args.sqlite_synchronous else "")
        + (" --no-drain" if args.no_drain else ""),
    }
    for name, figures in pages.items():
        server_p95, client_p95 = figures["server_ms"]["p95"], figures["client_ms"]["p95"]
        print(f"{name:28} server p95 {server_p95:7.1f} ms   client p95 {client_p95:7.1f} ms")
    print(f"worst server p95: {worst} ms (goal {goal} ms) with {patients} patients")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
