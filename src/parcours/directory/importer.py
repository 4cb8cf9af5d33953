"""Load an Annuaire Santé extract into the store, idempotently and in bounded memory.

The source is streamed; resources go through the repository (validated, indexed, evented) in
transactions of about ``batch_size`` resources. Before writing, each batch reads the stored
content of its resources in one query per type and skips the unchanged ones (compared without
``meta``): a second import of the same file writes nothing, and a changed line rewrites only
the resources it feeds. A structure shared by many professionals is written once per import
(its first line wins), so that a file whose lines disagree about it does not rewrite it back and
forth.

A resource the validator refuses costs only its own professional (CSV) or itself (FHIR): the
batch is replayed with one savepoint per professional and the refused lines are reported.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from sqlalchemy import bindparam, select

from parcours.errors import InvalidResource
from parcours.store import Store, Transaction
from parcours.store.schema import resource as resource_table

from .annuaire_csv import Rejected, group_resources, read_groups
from .fhir_export import read_resources, sniff_format

__all__ = ["BATCH_SIZE", "ImportReport", "import_directory"]

Resource = dict[str, Any]
Format = Literal["csv", "fhir", "auto"]
BATCH_SIZE: Final = 500
# One unit of work: the resources of one professional (CSV) or one resource (FHIR), with the
# source lines they come from; refused or kept as a whole.
_Unit = list[tuple[Resource, Sequence[int]]]

_SELECT_STORED = select(
    resource_table.c.id, resource_table.c.deleted, resource_table.c.content
).where(
    resource_table.c.type == bindparam("t"),
    resource_table.c.id.in_(bindparam("ids", expanding=True)),
)


@dataclass
class ImportReport:
    """What an import did: resources by type and outcome, refused source lines."""

    format: str
    rows: int = 0
    filtered: int = 0
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    rejected: list[Rejected] = field(default_factory=list)
    transactions: int = 0
    seconds: float = 0.0

    @property
    def written(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values())

    def summary(self) -> str:
        def fmt(counter: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"

        rate = self.rows / self.seconds if self.seconds else 0.0
        return (
            f"directory import ({self.format}): {self.rows} rows read in {self.seconds:.1f} s "
            f"({rate:.0f} rows/s), {self.filtered} outside the départements, "
            f"{len(self.rejected)} rejected\n"
            f"  created:   {fmt(self.created)}\n"
            f"  updated:   {fmt(self.updated)}\n"
            f"  unchanged: {fmt(self.unchanged)}"
        )


def _strip_meta(res: Resource) -> Resource:
    return {k: v for k, v in res.items() if k != "meta"}


def _departement_of_org(org: Resource) -> str | None:
    for address in org.get("address") or []:
        if not isinstance(address, dict):
            continue
        district = address.get("district")
        if isinstance(district, str) and district:
            return district
        postal = address.get("postalCode")
        if isinstance(postal, str) and len(postal) == 5 and postal.isdigit():
            if postal.startswith(("97", "98")):
                return postal[:3]
            if postal.startswith("20"):
                return "2A" if postal < "20200" else "2B"
            return postal[:2]
    return None


class _Importer:
    def __init__(self, store: Store, report: ImportReport, batch_size: int) -> None:
        self.store = store
        self.report = report
        self.batch_size = batch_size
        # Structures already written in this import: one write each (see the module docstring).
        self.organizations: set[str] = set()

    def run(self, units: Iterable[_Unit]) -> None:
        batch: list[_Unit] = []
        size = 0
        for unit in units:
            batch.append(unit)
            size += len(unit)
            if size >= self.batch_size:
                self._flush(batch)
                batch, size = [], 0
        if batch:
            self._flush(batch)

    def _flush(self, batch: list[_Unit]) -> None:
        # Drop the structures written by an earlier batch or an earlier unit of this one.
        units: list[_Unit] = []
        for unit in batch:
            kept: _Unit = []
            for res, lines in unit:
                if res["resourceType"] == "Organization":
                    if res["id"] in self.organizations:
                        continue
                    self.organizations.add(res["id"])
                kept.append((res, lines))
            units.append(kept)
        counts: dict[str, Counter[str]] = {}
        try:
            with self.store.begin() as tx:
                counts = self._write(tx, units, isolate=False)
        except InvalidResource:
            with self.store.begin() as tx:
                counts = self._write(tx, units, isolate=True)
        self.report.transactions += 1
        for outcome, counter in counts.items():
            getattr(self.report, outcome).update(counter)

    def _write(
        self, tx: Transaction, units: list[_Unit], *, isolate: bool
    ) -> dict[str, Counter[str]]:
        stored = self._stored(tx, [res for unit in units for res, _ in unit])
        counts: dict[str, Counter[str]] = {
            "created": Counter(),
            "updated": Counter(),
            "unchanged": Counter(),
        }
        for unit in units:
            if not isolate:
                self._write_unit(tx, unit, stored, counts)
                continue
            local: dict[str, Counter[str]] = {k: Counter() for k in counts}
            seen = dict(stored)
            try:
                with tx.savepoint():
                    self._write_unit(tx, unit, seen, local)
            except InvalidResource as exc:
                lines = sorted({line for _, unit_lines in unit for line in unit_lines})
                where = f" at {exc.issues[0].location}" if exc.issues[0].location else ""
                reason = f"refused by validation{where}: {exc.issues[0].message}"
                self.report.rejected.extend(Rejected(line, reason) for line in lines)
                for res, _ in unit:
                    if res["resourceType"] == "Organization":
                        # Not written: a later line of the same structure may still write it.
                        self.organizations.discard(res["id"])
                continue
            stored.update(seen)
            for outcome, counter in local.items():
                counts[outcome].update(counter)
        return counts

    def _write_unit(
        self,
        tx: Transaction,
        unit: _Unit,
        stored: dict[tuple[str, str], Resource | None],
        counts: dict[str, Counter[str]],
    ) -> None:
        for res, _ in unit:
            key = (res["resourceType"], res["id"])
            previous = stored.get(key)
            if previous is not None and _strip_meta(previous) == _strip_meta(res):
                counts["unchanged"][key[0]] += 1
                continue
            tx.update(res)
            counts["created" if previous is None else "updated"][key[0]] += 1
            # A later line of this batch sees this version (a role listed twice, say).
            stored[key] = res

    @staticmethod
    def _stored(
        tx: Transaction, resources: list[Resource]
    ) -> dict[tuple[str, str], Resource | None]:
        by_type: dict[str, set[str]] = {}
        for res in resources:
            by_type.setdefault(res["resourceType"], set()).add(res["id"])
        out: dict[tuple[str, str], Resource | None] = {}
        for res_type, ids in by_type.items():
            rows = tx.conn.execute(_SELECT_STORED, {"t": res_type, "ids": sorted(ids)})
            for row in rows:
                out[(res_type, row.id)] = None if row.deleted else row.content
        return out


def _csv_units(
    path: Path, departements: frozenset[str] | None, report: ImportReport
) -> Iterator[_Unit]:
    counters: dict[str, int] = {}
    try:
        with path.open("rb") as stream:
            for group in read_groups(
                stream, departements=departements, rejected=report.rejected, counters=counters
            ):
                yield group_resources(group)
    finally:
        report.rows = counters.get("rows", 0)
        report.filtered = counters.get("filtered", 0)


def _fhir_units(
    path: Path, departements: frozenset[str] | None, report: ImportReport
) -> Iterator[_Unit]:
    counters: dict[str, int] = {}
    # With a département filter, a structure elsewhere is skipped, and so are the roles in it
    # (when the structure comes first, as the API lists them); professionals are always kept.
    skipped_orgs: set[str] = set()
    try:
        with path.open("rb") as stream:
            for res, where in read_resources(stream, rejected=report.rejected, counters=counters):
                if departements is not None:
                    if res["resourceType"] == "Organization":
                        if _departement_of_org(res) not in departements:
                            skipped_orgs.add(f"Organization/{res['id']}")
                            report.filtered += 1
                            continue
                    elif res["resourceType"] == "PractitionerRole":
                        org = (res.get("organization") or {}).get("reference")
                        if org in skipped_orgs:
                            report.filtered += 1
                            continue
                yield [(res, [where])]
    finally:
        report.rows = counters.get("rows", 0)


def import_directory(
    store: Store,
    path: Path | str,
    *,
    format: Format = "auto",
    departements: Iterable[str] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import an Annuaire Santé extract (CSV ``PS_LibreAcces_Personne_activite`` or a FHIR
    Bundle / NDJSON export) into ``store``; see the module docstring for the guarantees.

    Raises ``CsvFormatError`` / ``ValueError`` when the file is not one of these formats (nothing
    is written then); bad lines and refused resources are reported, not raised.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    path = Path(path)
    if format == "auto":
        with path.open("rb") as stream:
            format = "fhir" if sniff_format(stream.read(64)) == "fhir" else "csv"
    wanted = (
        frozenset(d.strip().upper() for d in departements if d.strip())
        if departements is not None
        else None
    )
    report = ImportReport(format=format)
    started = time.perf_counter()
    units = (
        _csv_units(path, wanted, report) if format == "csv" else _fhir_units(path, wanted, report)
    )
    _Importer(store, report, batch_size).run(units)
    report.rejected.sort(key=lambda r: r.line)
    report.seconds = time.perf_counter() - started
    return report
