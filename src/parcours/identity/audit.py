"""The batch duplicate audit: Splink over every stored Patient, pairs into the review queue.

Named steps, each usable on its own (STYLE 3.3):

1. :func:`read_rows` — the flat row of every active Patient (``identity_record``, written by
   the online-matching hook with the same normalisation as matching: ``record_from_patient``
   then ``flat_row``), in keyset-paged batches; :func:`audit_rows` flattens FHIR Patients
   read from elsewhere (:func:`read_patients`, an export) the same way;
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Final

from sqlalchemy import select

from parcours.store import Store
from parcours.store.schema import resource

from .errors import IdentityError
from .flat import FLAT_COLUMNS, flat_row
from .queue import CandidateSource, CandidateStatus, Offer, offer_pairs
from .record import record_from_patient
from .service import is_merged_away
from .tables import identity_record

__all__ = [
    "AUDIT_MODEL",
    "AuditPair",
    "AuditReport",
    "audit_rows",
    "publish",
    "read_patients",
    "read_rows",
    "run_audit",
    "score_pairs",
]

AUDIT_MODEL: Final = Path(__file__).with_name("splink_model.json")


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


def read_rows(store: Store, *, batch_size: int = 50_000) -> list[dict[str, Any]]:
    """Every flat row of ``identity_record``, one short read transaction per batch."""
    rows: list[dict[str, Any]] = []
    last = ""
    while True:
        with store.begin(readonly=True) as tx:
            batch = tx.conn.execute(
                select(identity_record)
                .where(identity_record.c.unique_id > last)
                .order_by(identity_record.c.unique_id)
                .limit(batch_size)
            ).all()
        if not batch:
            return rows
        last = batch[-1].unique_id
        rows.extend(row._asdict() for row in batch)


def audit_rows(
    patients: Iterable[Mapping[str, Any]], *, allow_test_ins: bool = True
) -> list[dict[str, Any]]:
    """One flat row per matchable Patient (merged-away ones and unreadable dates left out)."""
    rows = []
    for patient in patients:
        if is_merged_away(patient) or not isinstance(patient.get("id"), str):
            continue
        try:
            rows.append(flat_row(record_from_patient(patient, allow_test_ins=allow_test_ins)))
        except IdentityError:
            continue
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
    return pa.schema([(name, types.get(name, pa.string())) for name in FLAT_COLUMNS])


def publish(store: Store, pairs: Sequence[AuditPair], *, batch_size: int = 5000) -> int:
    """Queue the pairs (``open``, source ``audit``); returns how many rows were written."""
    written = 0
    for i in range(0, len(pairs), batch_size):
        offers = [
            Offer(
                pair.a,
                pair.b,
                score=pair.probability,
                grade="probable" if pair.probability >= 0.99 else "possible",
                outcome="review",
                tier="ins" if pair.same_ins else "probabilistic",
                details={"reasons": ["batch audit (Splink)"], "weight": round(pair.weight, 3)},
            )
            for pair in pairs[i : i + batch_size]
        ]
        with store.begin() as tx:
            written += offer_pairs(
                tx, offers, source=CandidateSource.AUDIT, status=CandidateStatus.OPEN
            )
    return written


def run_audit(
    store: Store,
    *,
    threshold: float = 0.5,
    batch_size: int = 50_000,
    write: bool = True,
) -> AuditReport:
    """read the flat rows → score → publish; ``write=False`` stops before the queue."""
    report = AuditReport()
    started = perf_counter()
    rows = read_rows(store, batch_size=batch_size)
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
