"""What goes back on the wire: ``_summary``/``_elements`` views, Bundles, links and headers.

Resources are served as stored (no model round-trip); only the subsetting views copy the
top-level dict. Which elements are "summary" or mandatory comes from the R4B model metadata,
computed once per type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import cache
from typing import Any
from urllib.parse import urlencode

from parcours.errors import InvalidInput
from parcours.fhir.validation import model_for
from parcours.store.clock import parse_instant_ms

__all__ = [
    "SUBSETTED",
    "bundle",
    "elements_view",
    "http_date",
    "parse_elements",
    "resource_headers",
    "summary_view",
    "url",
    "version_etag",
    "view",
]

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "Resource encoded in summary mode",
}
_ALWAYS = ("resourceType", "id", "meta")
SUMMARY_MODES = frozenset({"true", "false", "text", "data", "count"})


@cache
def _elements_of(resource_type: str) -> tuple[frozenset[str], frozenset[str]]:
    """(summary elements, mandatory elements) of a type, as JSON names."""
    model = model_for(resource_type)
    if model is None:
        return frozenset(), frozenset()
    summary: set[str] = set()
    mandatory: set[str] = set()
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        json_name = info.alias or name
        if extra.get("summary_element_property"):
            summary.add(json_name)
        if info.is_required() or extra.get("element_required"):
            mandatory.add(json_name)
    return frozenset(summary), frozenset(mandatory)


def _subsetted(resource: dict[str, Any], keep: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keep:
        if key in resource:
            out[key] = resource[key]
        # the "_x" twin carries the id/extensions of primitive x
        if f"_{key}" in resource:
            out[f"_{key}"] = resource[f"_{key}"]
    meta = dict(out.get("meta") or {})
    tags = list(meta.get("tag") or [])
    if not any(t.get("code") == "SUBSETTED" for t in tags if isinstance(t, dict)):
        tags.append(SUBSETTED)
    meta["tag"] = tags
    out["meta"] = meta
    return out


def summary_view(resource: dict[str, Any], mode: str | None) -> dict[str, Any]:
    """The ``_summary`` view of a resource (``None``/``false``: the whole resource)."""
    if mode in (None, "false", "count"):
        return resource
    res_type = str(resource.get("resourceType"))
    summary, mandatory = _elements_of(res_type)
    if mode == "true":
        keep: Iterable[str] = [*_ALWAYS, *summary, *mandatory]
    elif mode == "text":
        keep = [*_ALWAYS, "text", *mandatory]
    elif mode == "data":
        keep = [k for k in resource if k != "text" and not k.startswith("_text")]
    else:
        raise InvalidInput(f"_summary={mode!r} is not one of true, text, data, count, false")
    return _subsetted(resource, keep)


def elements_view(resource: dict[str, Any], elements: Sequence[str] | None) -> dict[str, Any]:
    """The ``_elements`` view: the listed top-level elements plus the mandatory ones."""
    if not elements:
        return resource
    _, mandatory = _elements_of(str(resource.get("resourceType")))
    wanted = [e.split(".", 1)[0].strip() for e in elements]
    return _subsetted(resource, [*_ALWAYS, *mandatory, *wanted])


def parse_elements(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    return [e.strip() for e in raw.split(",") if e.strip()]


def view(
    resource: dict[str, Any], summary: str | None, elements: Sequence[str] | None
) -> dict[str, Any]:
    if elements:
        return elements_view(resource, elements)
    return summary_view(resource, summary)


def url(base: str, *segments: str, params: Sequence[tuple[str, str]] = ()) -> str:
    out = "/".join([base.rstrip("/"), *segments])
    if params:
        out += "?" + urlencode(list(params))
    return out


def version_etag(version: str | int) -> str:
    return f'W/"{version}"'


def http_date(instant: str) -> str:
    """An RFC 7231 date (Last-Modified) from a FHIR instant."""
    ms = parse_instant_ms(instant)
    return format_datetime(datetime.fromtimestamp(ms / 1000, tz=UTC), usegmt=True)


def resource_headers(base: str, resource: dict[str, Any]) -> dict[str, str]:
    """ETag, Last-Modified and Location (with ``/_history/n``) of a stored resource."""
    meta = resource.get("meta") or {}
    version = str(meta.get("versionId", "1"))
    headers = {
        "ETag": version_etag(version),
        "Location": url(
            base, str(resource["resourceType"]), str(resource["id"]), "_history", version
        ),
    }
    if "lastUpdated" in meta:
        headers["Last-Modified"] = http_date(str(meta["lastUpdated"]))
    return headers


def bundle(
    bundle_type: str,
    entries: list[dict[str, Any]],
    *,
    total: int | None = None,
    links: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Bundle", "type": bundle_type}
    if total is not None:
        out["total"] = total
    if links:
        out["link"] = [{"relation": rel, "url": href} for rel, href in links]
    if entries:
        out["entry"] = entries
    return out
