"""Which patient a resource belongs to: the owner of its Patient compartment.

The access policy filters on one column, ``resource.patient_id``, filled at every write from
the resource's own reference index rows: a Patient owns itself; any other resource belongs to
the Patient its ``patient`` parameter points to, else ``subject``, else ``beneficiary`` (the
parameters through which R4's Patient CompartmentDefinition reaches nearly every clinical
type, Task.for included). A resource that points to no Patient has no owner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["OWNER_PARAMS", "patient_of"]

OWNER_PARAMS = ("patient", "subject", "beneficiary")


def patient_of(
    res_type: str, res_id: str, index: Mapping[str, Sequence[Mapping[str, Any]]]
) -> str | None:
    if res_type == "Patient":
        return res_id
    best: tuple[int, str] | None = None
    for row in index.get("reference", ()):
        if row.get("target_type") != "Patient" or row.get("target_url") is not None:
            continue
        param = row.get("param")
        if param not in OWNER_PARAMS:
            continue
        target = row.get("target_id")
        if not isinstance(target, str):
            continue
        rank = OWNER_PARAMS.index(param)
        if best is None or (rank, target) < best:
            best = (rank, target)
    return best[1] if best else None
