"""What a PPCS document costs: HTML rendering, PDF rendering (WeasyPrint) and a sign-off
(checks and PDF in a read transaction, then signed version + Provenance + DocumentReference
in a write transaction), in-process on SQLite.

The plan is a large one: ``--needs`` needs (Conditions), as many objectives (Goals) and
``--actions`` actions, each performed by a PractitionerRole of the care circle. The commit time
is how long a sign-off holds the write lock.

    .venv/bin/python -m bench.ppcs_bench --repeats 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from parcours.config import Settings
from parcours.platform import build_platform
from parcours.ppcs import CATEGORY, render_html, render_pdf
from parcours.ppcs.model import EXT_AGREEMENT, EXT_SIGNATURE, SYSTEM_PPCS
from parcours.ppcs.signing import commit, prepare
from parcours.store import Transaction
from parcours.store.schema_version import ensure_schema


def _ref(kind: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{kind}/{res_id}"}


def _plan(tx: Transaction, needs: int, actions: int) -> tuple[str, dict[str, str]]:
    patient = tx.create(
        {"resourceType": "Patient", "name": [{"family": "Banc", "given": ["Essai"]}]}
    )["id"]
    roles = []
    for n in range(5):
        who = tx.create({"resourceType": "Practitioner", "name": [{"family": f"Pro{n}"}]})["id"]
        org = tx.create({"resourceType": "Organization", "name": f"Structure {n}"})["id"]
        roles.append(
            tx.create(
                {
                    "resourceType": "PractitionerRole",
                    "practitioner": _ref("Practitioner", who),
                    "organization": _ref("Organization", org),
                }
            )["id"]
        )
    coordinator = tx.create({"resourceType": "Practitioner", "name": [{"family": "Coordo"}]})
    team = tx.create(
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": _ref("Patient", patient),
            "participant": [{"member": _ref("PractitionerRole", r)} for r in roles],
        }
    )["id"]
    conditions = [
        tx.create(
            {
                "resourceType": "Condition",
                "subject": _ref("Patient", patient),
                "code": {"text": f"Besoin numéro {n} : " + "aide à domicile " * 4},
            }
        )["id"]
        for n in range(needs)
    ]
    goals = [
        tx.create(
            {
                "resourceType": "Goal",
                "lifecycleStatus": "active",
                "subject": _ref("Patient", patient),
                "description": {"text": f"Objectif {n} : " + "maintien à domicile " * 3},
                "target": [{"dueDate": "2026-12-31"}],
            }
        )["id"]
        for n in range(needs)
    ]
    plan = tx.create(
        {
            "resourceType": "CarePlan",
            "status": "draft",
            "intent": "plan",
            "category": [CATEGORY],
            "subject": _ref("Patient", patient),
            "description": "Situation complexe. " * 40,
            "addresses": [_ref("Condition", c) for c in conditions],
            "goal": [_ref("Goal", g) for g in goals],
            "activity": [
                {
                    "detail": {
                        "status": "scheduled",
                        "description": f"Action {n} : passage et suivi " * 2,
                        "performer": [_ref("PractitionerRole", roles[n % len(roles)])],
                        "scheduledPeriod": {"start": "2026-02-01", "end": "2026-06-30"},
                    }
                }
                for n in range(actions)
            ],
            "author": _ref("Practitioner", coordinator["id"]),
            "careTeam": [_ref("CareTeam", team)],
            "period": {"start": "2026-01-01", "end": "2026-07-01"},
            "extension": [
                {
                    "url": EXT_AGREEMENT,
                    "extension": [
                        {
                            "url": "statut",
                            "valueCoding": {"system": SYSTEM_PPCS, "code": "accord-recueilli"},
                        }
                    ],
                }
            ],
        }
    )
    return str(plan["id"]), _ref("Practitioner", coordinator["id"])


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--needs", type=int, default=10)
    parser.add_argument("--actions", type=int, default=20)
    parser.add_argument("--out", default="bench/results/ppcs.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        platform = build_platform(Settings(database_url=f"sqlite:///{tmp}/ppcs.db"))
        ensure_schema(platform.store.engine)
        with platform.store.begin() as tx:
            plan, signer = _plan(tx, args.needs, args.actions)
        html_times: list[float] = []
        pdf_times: list[float] = []
        prepare_times: list[float] = []
        commit_times: list[float] = []
        sizes: dict[str, int] = {}
        pages = 0
        for _ in range(args.repeats):
            with platform.store.begin(readonly=True) as tx:
                started = time.perf_counter()
                html = render_html(tx, plan)
                html_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                pdf = render_pdf(tx, plan)
                pdf_times.append(time.perf_counter() - started)
            sizes = {"html_bytes": len(html.encode()), "pdf_bytes": len(pdf)}
            pages = pdf.count(b"/Type /Page\n") or pdf.count(b"/Type/Page")
            started = time.perf_counter()
            with platform.store.begin(readonly=True) as tx:
                prepared = prepare(tx, plan, signer)
            prepare_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            with platform.store.begin() as tx:
                signed = commit(tx, prepared).careplan
            commit_times.append(time.perf_counter() - started)
            with platform.store.begin() as tx:  # back to draft for the next round
                extensions = [e for e in signed["extension"] if e["url"] != EXT_SIGNATURE]
                tx.update({**signed, "status": "draft", "extension": extensions})
        platform.close()
    results: dict[str, Any] = {
        "command": f"python -m bench.ppcs_bench --repeats {args.repeats} --needs {args.needs} "
        f"--actions {args.actions}",
        "machine": {
            "arch": host.machine(),
            "cpus": os.cpu_count(),
            "python": host.python_version(),
        },
        "plan": {"needs": args.needs, "objectives": args.needs, "actions": args.actions},
        **sizes,
        "render_html": _ms(html_times),
        "render_pdf": _ms(pdf_times),
        # Sign-off: checks and PDF in a read transaction, then the writes (the write lock).
        "sign_off_prepare": _ms(prepare_times),
        "sign_off_commit": _ms(commit_times),
    }
    print(json.dumps(results, indent=2))
    if pages:
        print(f"PDF pages (approx.): {pages}")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
