"""The batch duplicate audit at scale: ``run_audit`` on 1 M identities (SQLite + DuckDB).

What is measured, precisely:

A. ``generate.py`` with ``--records``/2 persons: 1 M FHIR Patients (500 k stored + 500 k
   incoming, half of the incoming ones corrupted copies), flattened with
   ``record_from_patient`` + ``flat_row``. In production this flattening is paid once per
   write by the online-matching hook (it fills ``identity_record``); it is timed here and
   reported per record, not counted in the audit. Splink on the in-memory rows is timed too.
B. The same 1 M flat rows are bulk-inserted into ``identity_record`` of a fresh SQLite
   database (not timed; the Patient resources themselves are not stored: the audit never reads
   them), then ``run_audit`` — what ``parcours identity audit`` runs — is timed: read every
   row from the database, Splink block + score with the shipped model, publish every pair
   (p >= 0.5) to the review queue. Precision and recall against the generator's truth.

    .venv/bin/python bench/identity/audit_bench.py [--records 1000000]

Writes bench/results/identity_audit.json. A benchmark, never a test (goal: 1 M in <= 2 min).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "identity"))

from generate import generate  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from parcours.identity import audit_rows, identity_record, run_audit, score_pairs  # noqa: E402
from parcours.store import Store, make_engine  # noqa: E402
from parcours.store.schema_version import ensure_schema  # noqa: E402

RESULTS = REPO / "bench" / "results"


def quality(pairs: list[Any], truth: dict[str, int], ids: set[str]) -> dict[str, Any]:
    sizes = Counter(pid for rid, pid in truth.items() if rid in ids)
    true_pairs = sum(n * (n - 1) // 2 for n in sizes.values())
    correct = sum(truth[p.a] == truth[p.b] for p in pairs)
    out: dict[str, Any] = {"true_pairs": true_pairs, "predicted": len(pairs), "correct": correct}
    for threshold in (0.5, 0.9, 0.99):
        kept = [p for p in pairs if p.probability >= threshold]
        ok = sum(truth[p.a] == truth[p.b] for p in kept)
        out[f"p>={threshold}"] = {
            "pairs": len(kept),
            "precision": round(ok / len(kept), 4) if kept else None,
            "recall": round(ok / true_pairs, 4) if true_pairs else None,
        }
    return out


def run(records: int, seed: int, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    data = generate(records // 2, seed)
    patients = [*data.store, *data.incoming]
    generated = time.perf_counter() - started
    print(f"generated {len(patients)} records in {generated:.1f} s", flush=True)
    started = time.perf_counter()
    rows = audit_rows(patients)
    flatten = time.perf_counter() - started
    print(f"A. flatten: {flatten:.1f} s ({flatten / len(rows) * 1e6:.0f} us/record)", flush=True)
    del patients
    started = time.perf_counter()
    pairs = score_pairs(rows, threshold=0.5)
    score = time.perf_counter() - started
    print(f"A. Splink on in-memory rows: {score:.1f} s, {len(pairs)} pairs", flush=True)
    ids = {str(r["unique_id"]) for r in rows}

    path = workdir / f"identity-audit-{uuid.uuid4().hex[:8]}.db"
    engine = make_engine(f"sqlite:///{path}", sqlite_synchronous="NORMAL")
    try:
        ensure_schema(engine)
        started = time.perf_counter()
        with engine.begin() as conn:
            for i in range(0, len(rows), 50_000):
                conn.execute(insert(identity_record), rows[i : i + 50_000])
        print(f"B. bulk insert (not counted): {time.perf_counter() - started:.1f} s", flush=True)
        store = Store(engine)
        started = time.perf_counter()
        report = run_audit(store, threshold=0.5)
        total = time.perf_counter() - started
        seconds = {k: round(v, 1) for k, v in report.seconds.items()}
        print(f"B. run_audit: {total:.1f} s {seconds}, {report.queued} queued", flush=True)
    finally:
        engine.dispose()
        for leftover in workdir.glob(path.name + "*"):
            leftover.unlink()
    result = {
        "records": len(rows),
        "generate_seconds_not_counted": round(generated, 1),
        "flatten_at_write_time": {
            "seconds_for_all": round(flatten, 1),
            "us_per_record": round(flatten / len(rows) * 1e6),
        },
        "splink_in_memory_seconds": round(score, 1),
        "run_audit_from_database": {
            "database": "sqlite",
            "seconds": seconds,
            "total_seconds": round(total, 1),
            "pairs_queued": report.queued,
        },
        "quality": quality(report.pairs, data.truth, ids),
    }
    print(f"   {json.dumps(result['quality'])}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    parser.add_argument("--output", type=Path, default=RESULTS / "identity_audit.json")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "identity_audit",
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "goal": {"records": 1_000_000, "seconds": 120},
        "command": " ".join(sys.argv),
        "result": run(args.records, args.seed, args.workdir),
    }
    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
