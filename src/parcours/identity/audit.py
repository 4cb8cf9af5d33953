"""The batch duplicate audit: Splink over every stored Patient, pairs into the review queue.

Named steps, each usable on its own (STYLE 3.3):

1. :func:`read_patients` — the active Patients, in keyset-paged batches from the store;
2. :func:`audit_rows` — each flattened by ``record_from_patient`` (the same normalisation as
   online matching) into one row of plain columns;
3. :func:`score_pairs` — Splink, with the versioned model ``splink_model.json`` (settings and
   trained m/u: data, never re-trained here), on DuckDB by default; blocking is in the model;
4. :func:`publish` — pairs above the threshold into the review queue as ``open`` (the audit
   never merges; decided pairs keep their decision).

The same model file runs on Spark for national scale (docs/identity.md): pass a
``splink.SparkAPI`` as ``db_api``; Spark is an optional dependency, imported by the caller.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Final

from sqlalchemy import select

from parcours.store import Store
from parcours.store.schema import resource

from .errors import IdentityError
from .normalize import NO_GIVEN_NAME, NO_NAME
from .phonetic import soundex2
from .queue import CandidateSource, CandidateStatus, record_candidate
from .record import record_from_patient
from .service import is_merged_away

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_MODEL",
    "AuditPair",
    "AuditReport",
    "audit_rows",
    "publish",
    "read_patients",
    "run_audit",
    "score_pairs",
]

AUDIT_MODEL: Final = Path(__file__).with_name("splink_model.json")
AUDIT_COLUMNS: Final = (
    "unique_id",
    "birth_name",
    "first_given_name",
    "birth_date",
    "sex",
    "birthplace",
    "ins",
    "name_sx",
    "first_sx",
    "birth_year",
    "birth_md",
)


@dataclass(frozen=True, slots=True)
class AuditPair:
    a: str
    b: str
    probability: float
    weight: float
    same_ins: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "patients": [f"Patient/{self.a}", f"Patient/{self.b}"],
            "match_probability": round(self.probability, 6),
            "match_weight": round(self.weight, 3),
            "same_ins": self.same_ins,
        }


@dataclass
class AuditReport:
    records: int = 0
    pairs: list[AuditPair] = field(default_factory=list)
    queued: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def read_patients(store: Store, *, batch_size: int = 5000) -> Iterator[dict[str, Any]]:
    """Every current, non-deleted Patient, one short read transaction per batch."""
    last = 0
    while True:
        with store.begin(readonly=True) as tx:
            rows = tx.conn.execute(
                select(resource.c.pk, resource.c.content)
                .where(
                    resource.c.type == "Patient",
                    resource.c.deleted.is_(False),
                    resource.c.pk > last,
                )
                .order_by(resource.c.pk)
                .limit(batch_size)
            ).all()
        if not rows:
            return
        last = rows[-1].pk
        for row in rows:
            yield row.content


def _key(text: str | None, empty: str) -> str | None:
    return soundex2(text) or None if text and text != empty else None


def audit_rows(
    patients: Iterable[Mapping[str, Any]], *, allow_test_ins: bool = True
) -> list[dict[str, Any]]:
    """One flat row per matchable Patient (merged-away ones and unreadable dates left out)."""
    rows = []
    for patient in patients:
        if is_merged_away(patient) or not isinstance(patient.get("id"), str):
            continue
        try:
            rec = record_from_patient(patient, allow_test_ins=allow_test_ins)
        except IdentityError:
            continue
        born = rec.birth_date
        rows.append(
            {
                "unique_id": rec.record_id,
                "birth_name": rec.birth_name if rec.birth_name != NO_NAME else None,
                "first_given_name": rec.first_given_name
                if rec.first_given_name != NO_GIVEN_NAME
                else None,
                "birth_date": born.isoformat() if born else None,
                "sex": rec.sex.value if rec.sex else None,
                "birthplace": rec.birthplace,
                "ins": f"{rec.ins.kind.oid}|{rec.ins.matricule}" if rec.ins else None,
                "name_sx": _key(rec.birth_name, NO_NAME),
                "first_sx": _key(rec.first_given_name, NO_GIVEN_NAME),
                "birth_year": born.year if born else None,
                # Day and month sorted: survives a day/month swap (as the online keys do).
                "birth_md": "".join(f"{n:02d}" for n in sorted((born.month, born.day)))
                if born
                else None,
            }
        )
    return rows


def score_pairs(
    rows: list[dict[str, Any]],
    *,
    threshold: float = 0.5,
    model: Path = AUDIT_MODEL,
    db_api: Any = None,
) -> list[AuditPair]:
    """Splink predictions above ``threshold`` (DuckDB unless another ``db_api`` is given)."""
    import pyarrow as pa
    from splink import DuckDBAPI, Linker

    if len(rows) < 2:
        return []
    logging.getLogger("splink").setLevel(logging.WARNING)
    table = pa.Table.from_pylist(rows, schema=_arrow_schema(pa))
    api = db_api or DuckDBAPI()
    settings = json.loads(model.read_text(encoding="utf-8"))
    linker = Linker(api.register(table, table_name="identity_audit_input"), settings)
    predictions = linker.inference.predict(threshold_match_probability=threshold)
    frame = predictions.as_pandas_dataframe()  # type: ignore[no-untyped-call]
    pairs = [
        AuditPair(
            a=str(a),
            b=str(b),
            probability=float(p),
            weight=float(w),
            same_ins=bool(ia is not None and ia == ib),
        )
        for a, b, p, w, ia, ib in zip(
            frame["unique_id_l"],
            frame["unique_id_r"],
            frame["match_probability"],
            frame["match_weight"],
            frame["ins_l"] if "ins_l" in frame else [None] * len(frame),
            frame["ins_r"] if "ins_r" in frame else [None] * len(frame),
            strict=True,
        )
    ]
    pairs.sort(key=lambda p: (-p.probability, p.a, p.b))
    return pairs


def _arrow_schema(pa: Any) -> Any:
    types = {"birth_year": pa.int32()}
    return pa.schema([(name, types.get(name, pa.string())) for name in AUDIT_COLUMNS])


def publish(store: Store, pairs: Iterable[AuditPair], *, batch_size: int = 1000) -> int:
    """Queue the pairs (``open``, source ``audit``); returns how many were offered."""
    count = 0
    batch: list[AuditPair] = []

    def flush() -> None:
        with store.begin() as tx:
            for pair in batch:
                record_candidate(
                    tx,
                    pair.a,
                    pair.b,
                    score=pair.probability,
                    grade="probable" if pair.probability >= 0.99 else "possible",
                    outcome="review",
                    tier="ins" if pair.same_ins else "probabilistic",
                    details={"reasons": ["batch audit (Splink)"], "weight": pair.weight},
                    source=CandidateSource.AUDIT,
                    status=CandidateStatus.OPEN,
                )
        batch.clear()

    for pair in pairs:
        batch.append(pair)
        count += 1
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return count


def run_audit(
    store: Store,
    *,
    threshold: float = 0.5,
    batch_size: int = 5000,
    allow_test_ins: bool = True,
    write: bool = True,
) -> AuditReport:
    """read → flatten → score → publish; ``write=False`` stops before the queue."""
    report = AuditReport()
    started = perf_counter()
    rows = audit_rows(read_patients(store, batch_size=batch_size), allow_test_ins=allow_test_ins)
    report.records = len(rows)
    report.seconds["read"] = perf_counter() - started
    started = perf_counter()
    report.pairs = score_pairs(rows, threshold=threshold)
    report.seconds["score"] = perf_counter() - started
    if write:
        started = perf_counter()
        report.queued = publish(store, report.pairs)
        report.seconds["publish"] = perf_counter() - started
    return report
