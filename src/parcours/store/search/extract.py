"""From FHIRPath results to index rows, one function per search-parameter type.

The FHIRPath fast path does not know element types, so each function reads the value by its
shape (a dict with ``coding`` is a CodeableConcept, one with ``family`` or ``given`` a
HumanName...). A type suffix from a choice element (``valueQuantity``) is used when present.
Rows are the column dicts of the index tables without ``resource_pk``/``res_type``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from parcours.store.search.fhirpath_fast import Node
from parcours.store.search.values import (
    MAX_MS,
    MIN_MS,
    STRING_MAX,
    date_range,
    decimal_range,
    fold,
    parse_decimal,
)

__all__ = [
    "ROW_MAKERS",
    "Row",
    "identifier_type_rows",
    "parse_reference",
    "reference_identifier_rows",
]

Row = dict[str, Any]
RowMaker = Callable[[Node, "ReferenceParser"], Iterator[Row]]
ReferenceParser = Callable[[str], tuple[str | None, str | None, str | None] | None]

_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _cut(text: str | None) -> str | None:
    return text[:STRING_MAX] if isinstance(text, str) else None


def _folded(text: Any) -> str | None:
    return fold(text) if isinstance(text, str) and text else None


# ---- token --------------------------------------------------------------------------------


def _token_rows(node: Node, _refs: ReferenceParser) -> Iterator[Row]:
    value = node.value
    if isinstance(value, bool):
        yield {"system": None, "code": "true" if value else "false", "text": None}
    elif isinstance(value, str):
        yield {"system": None, "code": _cut(value), "text": None}
    elif isinstance(value, int | float):
        yield {"system": None, "code": str(value), "text": None}
    elif isinstance(value, dict):
        if "coding" in value or node.type == "CodeableConcept" or set(value) == {"text"}:
            cc_text = _folded(value.get("text"))
            codings = [c for c in value.get("coding") or [] if isinstance(c, dict)]
            for coding in codings:
                yield {
                    "system": _cut(coding.get("system")),
                    "code": _cut(coding.get("code")),
                    "text": _folded(coding.get("display")) or cc_text,
                }
            if cc_text and all(_folded(c.get("display")) != cc_text for c in codings):
                # The CodeableConcept's own text, searchable with :text even when the codings
                # carry a different display.
                yield {"system": None, "code": None, "text": cc_text}
        elif "value" in value and "code" not in value:
            # Identifier or ContactPoint: system | value.
            type_cc = value.get("type")
            type_text = _folded(type_cc.get("text")) if isinstance(type_cc, dict) else None
            yield {
                "system": _cut(value.get("system")),
                "code": _cut(str(value["value"])),
                "text": type_text,
            }
        elif "code" in value or "system" in value:
            yield {
                "system": _cut(value.get("system")),
                "code": _cut(value.get("code")),
                "text": _folded(value.get("display")),
            }


def identifier_type_rows(node: Node) -> Iterator[Row]:
    """Rows for ``:of-type``: the identifier's type coding, with its value in ``text``."""
    value = node.value
    if not isinstance(value, dict) or "value" not in value:
        return
    type_cc = value.get("type")
    if not isinstance(type_cc, dict):
        return
    for coding in type_cc.get("coding") or []:
        if isinstance(coding, dict):
            yield {
                "system": _cut(coding.get("system")),
                "code": _cut(coding.get("code")),
                "text": _cut(str(value["value"])),
            }


# ---- string -------------------------------------------------------------------------------


def _string_row(text: Any) -> Row | None:
    if not isinstance(text, str) or not text:
        return None
    return {"value_norm": fold(text), "value_exact": text[:STRING_MAX]}


def _string_rows(node: Node, _refs: ReferenceParser) -> Iterator[Row]:
    value = node.value
    if isinstance(value, str):
        row = _string_row(value)
        if row:
            yield row
        return
    if not isinstance(value, dict):
        return
    parts: tuple[str, ...] = (
        _ADDRESS_PARTS if node.type == "Address" or "line" in value or "city" in value else ()
    )
    if not parts:
        parts = (
            _NAME_PARTS if node.type == "HumanName" or "family" in value or "given" in value else ()
        )
    if not parts:
        parts = ("text", "display", "value")
    for part in parts:
        item = value.get(part)
        for text in item if isinstance(item, list) else [item]:
            row = _string_row(text)
            if row:
                yield row


# ---- date ---------------------------------------------------------------------------------


def _date_rows(node: Node, _refs: ReferenceParser) -> Iterator[Row]:
    value = node.value
    if isinstance(value, str):
        bounds = date_range(value)
        if bounds:
            yield {"low": bounds[0], "high": bounds[1]}
    elif isinstance(value, dict):
        if "start" in value or "end" in value:  # Period: an open end is unbounded
            start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
            end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
            yield {"low": start[0] if start else MIN_MS, "high": end[1] if end else MAX_MS}
        else:  # Timing
            for event in value.get("event") or []:
                yield from _date_rows(Node(event, "dateTime"), _refs)
            repeat = value.get("repeat")
            if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
                yield from _date_rows(Node(repeat["boundsPeriod"], "Period"), _refs)


# ---- number and quantity --------------------------------------------------------------------


def _decimal_of(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return parse_decimal(repr(value))
    if isinstance(value, str):
        return parse_decimal(value)
    return None


def _number_row(value: Any) -> Row | None:
    number = _decimal_of(value)
    if number is None:
        return None
    low, high = decimal_range(number)
    return {"value": float(number), "low": float(low), "high": float(high)}


def _number_rows(node: Node, _refs: ReferenceParser) -> Iterator[Row]:
    value = node.value
    row = _number_row(value.get("value") if isinstance(value, dict) else value)
    if row:
        yield row


def _quantity_rows(node: Node, _refs: ReferenceParser) -> Iterator[Row]:
    value = node.value
    if not isinstance(value, dict):
        return
    row = _number_row(value.get("value"))
    if row is None:
        return
    if "currency" in value:  # Money
        row.update(system="urn:iso:std:iso:4217", code=_cut(value.get("currency")), unit=None)
    else:
        row.update(
            system=_cut(value.get("system")),
            code=_cut(value.get("code")),
            unit=_cut(value.get("unit")),
        )
    yield row


# ---- reference and uri ----------------------------------------------------------------------


def _reference_rows(node: Node, refs: ReferenceParser) -> Iterator[Row]:
    value = node.value
    if isinstance(value, str):  # canonical (or uri): kept as written, version included
        yield {"target_type": None, "target_id": None, "target_url": value[:1024]}
        return
    if not isinstance(value, dict):
        return
    ref = value.get("reference")
    if isinstance(ref, str):
        parsed = refs(ref)
        if parsed:
            target_type, target_id, target_url = parsed
            yield {"target_type": target_type, "target_id": target_id, "target_url": target_url}


def reference_identifier_rows(node: Node) -> Iterator[Row]:
    """Token rows for ``:identifier``: a Reference's logical identifier."""
    value = node.value
    if isinstance(value, dict) and isinstance(value.get("identifier"), dict):
        yield from _token_rows(Node(value["identifier"], "Identifier"), _no_refs)


def _no_refs(_ref: str) -> None:
    return None


def _uri_rows(node: Node, _refs: ReferenceParser) -> Iterator[Row]:
    if isinstance(node.value, str) and node.value:
        yield {"value": node.value[:1024]}


def parse_reference(
    ref: str, resource_types: frozenset[str], base_urls: tuple[str, ...]
) -> tuple[str | None, str | None, str | None] | None:
    """(target_type, target_id, target_url) of a reference string; None for contained ones.

    ``Type/id`` and absolute URLs under one of our base URLs are local (no URL kept); other
    absolute URLs keep their URL, plus type and id when their tail looks like ``Type/id``, so
    that they never match a local ``Type/id`` search (which requires ``target_url IS NULL``).
    """
    ref = ref.strip()
    if not ref or ref.startswith("#"):
        return None
    history = ref.find("/_history/")
    if history > 0:
        ref = ref[:history]
    for base in base_urls:
        if ref.startswith(base + "/"):
            ref = ref[len(base) + 1 :]
            break
    parts = ref.split("/")
    if len(parts) == 2 and parts[0] in resource_types and parts[1]:
        return parts[0], parts[1][:64], None
    if len(parts) >= 2 and parts[-2] in resource_types and "://" in ref:
        return parts[-2], parts[-1][:64], ref[:1024]
    return None, None, ref[:1024]


ROW_MAKERS: dict[str, RowMaker] = {
    "token": _token_rows,
    "string": _string_rows,
    "date": _date_rows,
    "number": _number_rows,
    "quantity": _quantity_rows,
    "reference": _reference_rows,
    "uri": _uri_rows,
}
