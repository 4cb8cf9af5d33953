"""The Annuaire Santé FHIR API export: Bundles (searchset, collection…) or NDJSON.

The API pages its answers as searchset Bundles of Practitioner, PractitionerRole and
Organization (``as-*`` profiles); a bulk export writes NDJSON, one resource per line. Both come
in as they are, with their ids: the Annuaire's ids are stable, so a re-import updates in place.
NDJSON is streamed line by line; a Bundle file is read whole (the API pages are small).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any, Final

from .annuaire_csv import Rejected

__all__ = ["DIRECTORY_TYPES", "read_resources", "sniff_format"]

Resource = dict[str, Any]
DIRECTORY_TYPES: Final = frozenset({"Practitioner", "PractitionerRole", "Organization"})


def sniff_format(head: bytes) -> str:
    """``csv`` or ``fhir`` from the first bytes of a file."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return "fhir" if text.startswith(b"{") else "csv"


def _check(resource: Any, where: int, rejected: list[Rejected]) -> Resource | None:
    if not isinstance(resource, dict):
        rejected.append(Rejected(where, "not a JSON object"))
        return None
    res_type = resource.get("resourceType")
    if res_type not in DIRECTORY_TYPES:
        rejected.append(
            Rejected(where, f"{str(res_type)[:40]} is not a directory resource type (skipped)")
        )
        return None
    if not isinstance(resource.get("id"), str):
        rejected.append(Rejected(where, f"{res_type} without an id cannot be imported in place"))
        return None
    return resource


def read_resources(
    stream: IO[bytes], *, rejected: list[Rejected], counters: dict[str, int]
) -> Iterator[tuple[Resource, int]]:
    """Every directory resource of a Bundle or NDJSON file, with its position.

    The position is the line number for NDJSON and the entry number (from 1) for a Bundle.
    """
    counters.setdefault("rows", 0)
    first = stream.readline()
    try:
        whole = json.loads(first) if first.strip() else None
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and whole.get("resourceType") != "Bundle":
        # NDJSON: one resource on each line.
        yield from _ndjson(first, stream, rejected, counters)
        return
    data = first + stream.read()
    try:
        bundle = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON nor NDJSON: {exc}") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise ValueError("the file is neither a FHIR Bundle nor NDJSON resources")
    for number, entry in enumerate(bundle.get("entry") or [], start=1):
        counters["rows"] += 1
        resource = _check((entry or {}).get("resource"), number, rejected)
        if resource is not None:
            yield resource, number


def _ndjson(
    first: bytes, stream: IO[bytes], rejected: list[Rejected], counters: dict[str, int]
) -> Iterator[tuple[Resource, int]]:
    line_no = 0
    for raw in _chain(first, stream):
        line_no += 1
        if not raw.strip():
            continue
        counters["rows"] += 1
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            rejected.append(Rejected(line_no, f"not JSON: {exc.msg}"))
            continue
        resource = _check(parsed, line_no, rejected)
        if resource is not None:
            yield resource, line_no


def _chain(first: bytes, stream: IO[bytes]) -> Iterator[bytes]:
    yield first
    yield from stream
