"""The FHIR interactions, one plain function each, on an open store transaction.

Each function takes the request, the transaction and the context (store, registry, settings)
plus the path parameters, and returns a ``FhirResponse`` or raises a ``ParcoursError``; the
router turns errors into OperationOutcomes in one place, and the Bundle processor calls the
same functions inside its own transaction.

Choices where the specification leaves room:

- delete of an unknown or already deleted resource answers ``200`` with an informational
  OperationOutcome (code ``not-found``); a delete that removes something answers ``204`` with
  the ETag of the deletion version.
- ``_at`` on history returns the versions written at or before that instant (not only the one
  current at that instant).
- conditional interactions search with a page of 2 and fail with 412 on more than one match.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from parcours.errors import (
    Conflict,
    InvalidInput,
    InvalidResource,
    Issue,
    NotFound,
    PreconditionFailed,
    VersionConflict,
)
from parcours.fhir.context import FhirContext
from parcours.fhir.exposure import keep_hidden_ins
from parcours.fhir.outcome import operation_outcome
from parcours.fhir.patch import apply_fhirpath_patch, apply_json_patch, patch_document
from parcours.fhir.render import (
    bundle,
    parse_elements,
    resource_headers,
    url,
    version_etag,
    view,
)
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.security import guard
from parcours.store import Transaction
from parcours.store.clock import instant, parse_instant_ms
from parcours.store.search import format_search, parse_search

__all__ = [
    "FORMAT_PARAMS",
    "body_resource",
    "condition_params",
    "conditional_delete",
    "conditional_update",
    "create",
    "delete",
    "find",
    "history",
    "int_param",
    "parse_if_match",
    "patch",
    "prefer_return",
    "read",
    "search",
    "update",
    "vread",
    "written",
]

Params = dict[str, str]
# Parameters about the response format, never search criteria.
FORMAT_PARAMS = frozenset({"_format", "_pretty"})
_RESULT_PARAMS = FORMAT_PARAMS | {
    "_count",
    "_offset",
    "_cursor",
    "_sort",
    "_summary",
    "_elements",
    "_total",
    "_include",
    "_revinclude",
}


# ---- shared helpers ----------------------------------------------------------------------


def parse_if_match(raw: str | None) -> int | None:
    """``W/"3"`` or ``"3"`` or ``3`` -> 3."""
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit() or len(value) > 9:
        raise InvalidInput(f'If-Match {raw[:40]!r} is not a version ETag such as W/"3"')
    return int(value)


def prefer_return(req: FhirRequest) -> str:
    """The ``Prefer: return=...`` choice: minimal, representation or OperationOutcome."""
    raw = req.header("prefer") or ""
    for part in raw.replace(";", ",").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip() == "return" and value.strip() in {"minimal", "OperationOutcome"}:
            return value.strip()
    return "representation"


def _criteria(raw: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in raw if k not in _RESULT_PARAMS]


def find(
    tx: Transaction, ctx: FhirContext, res_type: str, params: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """At most two matches of conditional criteria (enough to tell none, one and many)."""
    criteria = _criteria(params)
    if not criteria:
        raise InvalidInput(
            f"a conditional interaction on {res_type} needs search criteria; "
            "with none it would match every resource"
        )
    request = parse_search(
        res_type, [*criteria, ("_count", "2")], ctx.registry, default_count=2, max_count=2
    )
    # Two concurrent conditional writes with the same criteria must not both miss, then both
    # create: they queue on the criteria until the first commits.
    tx.lock_key(f"{res_type}?{sorted(criteria)}")
    matches: list[dict[str, Any]] = tx.search(request).matches
    # Matched without the caller's filter, so a hidden match is refused rather than
    # duplicated by a conditional create.
    for match in matches:
        guard.check_visible(tx, match)
    return matches


def condition_params(raw: str) -> list[tuple[str, str]]:
    """``identifier=a|b`` or ``Patient?identifier=a|b`` -> the parameter list."""
    head, sep, tail = raw.partition("?")
    # A "?" inside a value must not be taken for the one after a type name.
    query = tail if sep and "=" not in head else raw
    try:
        return parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InvalidInput(f"condition {raw[:80]!r} is not a query string") from None


def body_resource(req: FhirRequest, res_type: str) -> dict[str, Any]:
    """The request body, checked to be a resource of the type in the URL (else 400)."""
    body = req.body
    if not isinstance(body, dict):
        raise InvalidInput(f"the body must be a {res_type} resource as a JSON object")
    if body.get("resourceType") != res_type:
        found = body.get("resourceType")
        raise InvalidInput(
            f"the body is a {str(found)[:64]!r} resource, the URL says {res_type}"
            if found
            else f"the body has no resourceType; the URL says {res_type}"
        )
    if not isinstance(body.get("meta", {}), dict):
        # Checked here because the store merges meta before it calls the validator.
        raise InvalidResource(
            "meta must be a JSON object", [Issue("must be an object", f"{res_type}.meta")]
        )
    return body


def written(req: FhirRequest, resource: dict[str, Any], status: int) -> FhirResponse:
    headers = resource_headers(req.base_url, resource)
    if status != 201:
        headers.pop("Location", None)
        headers["Content-Location"] = url(
            req.base_url,
            resource["resourceType"],
            resource["id"],
            "_history",
            str(resource["meta"]["versionId"]),
        )
    choice = prefer_return(req)
    body: dict[str, Any] | None
    if choice == "minimal":
        body = None
    elif choice == "OperationOutcome":
        verb = "created" if status == 201 else "stored"
        body = operation_outcome(
            f"{resource['resourceType']}/{resource['id']} {verb} as version "
            f"{resource['meta']['versionId']}"
        )
    else:
        body = resource
    return FhirResponse(status, body, headers)


# ---- read ---------------------------------------------------------------------------------


def read(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    resource = tx.read(p["type"], p["id"])
    guard.check_read(tx, p["type"], p["id"])
    headers = resource_headers(req.base_url, resource)
    del headers["Location"]
    etag = headers["ETag"]
    inm = req.header("if-none-match")
    if inm is not None and inm.strip().removeprefix("W/") == etag.removeprefix("W/"):
        return FhirResponse(304, None, headers)
    summary = req.param("_summary")
    body = view(resource, summary, parse_elements(req.param("_elements")))
    return FhirResponse(200, body, headers)


def vread(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    vid = p["vid"]
    if not vid.isdigit() or len(vid) > 9:
        raise NotFound(f"{p['type']}/{p['id'][:64]} has no version {vid[:20]!r}")
    resource = tx.vread(p["type"], p["id"], int(vid))
    guard.check_read(tx, p["type"], p["id"])
    headers = resource_headers(req.base_url, resource)
    del headers["Location"]
    body = view(resource, req.param("_summary"), parse_elements(req.param("_elements")))
    return FhirResponse(200, body, headers)


# ---- write --------------------------------------------------------------------------------


def create(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    res_type = p["type"]
    resource = body_resource(req, res_type)
    condition = req.header("if-none-exist")
    if condition is not None:
        matches = find(tx, ctx, res_type, condition_params(condition))
        if len(matches) > 1:
            raise PreconditionFailed(
                f"If-None-Exist matches more than one {res_type}: make the criteria selective"
            )
        if matches:
            return written(req, matches[0], 200)
    guard.before_write(tx, res_type, None)
    created = tx.create(resource)
    guard.check_written(tx, created, None, created=True)
    return written(req, created, 201)


def update(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    res_type, res_id = p["type"], p["id"]
    resource = body_resource(req, res_type)
    if resource.get("id") != res_id:
        raise InvalidInput(
            f"the body's id must equal the id in the URL ({res_id[:64]}) for an update"
        )
    before = guard.before_write(tx, res_type, res_id)
    resource = _with_hidden_ins(tx, ctx, resource)
    result = tx.update(resource, if_match=parse_if_match(req.header("if-match")))
    guard.check_written(tx, result.resource, before, result.created)
    return written(req, result.resource, 201 if result.created else 200)


def _with_hidden_ins(tx: Transaction, ctx: FhirContext, resource: dict[str, Any]) -> dict[str, Any]:
    """A Patient written back as it was read keeps the INS the API did not show."""
    if resource.get("resourceType") != "Patient" or not tx.exists("Patient", resource["id"]):
        return resource
    stored = tx.read("Patient", resource["id"])
    return keep_hidden_ins(stored, resource, allow_test_ins=not ctx.settings.production)


def conditional_update(
    req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params
) -> FhirResponse:
    res_type = p["type"]
    resource = body_resource(req, res_type)
    matches = find(tx, ctx, res_type, list(req.query))
    body_id = resource.get("id")
    if len(matches) > 1:
        raise PreconditionFailed(f"the conditional update matches more than one {res_type}")
    if matches:
        target = str(matches[0]["id"])
        if body_id is not None and body_id != target:
            raise InvalidInput(
                f"the body's id {str(body_id)[:64]!r} differs from the matching {res_type}/{target}"
            )
        before = guard.before_write(tx, res_type, target)
        result = tx.update(
            _with_hidden_ins(tx, ctx, {**resource, "id": target}),
            if_match=parse_if_match(req.header("if-match")),
        )
        guard.check_written(tx, result.resource, before, result.created)
        return written(req, result.resource, 201 if result.created else 200)
    if isinstance(body_id, str) and tx.exists(res_type, body_id):
        raise Conflict(
            f"{res_type}/{body_id[:64]} exists but does not match the conditional update"
        )
    guard.before_write(tx, res_type, None)
    stored = tx.update(resource).resource if isinstance(body_id, str) else tx.create(resource)
    guard.check_written(tx, stored, None, created=True)
    return written(req, stored, 201)


def patch(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    res_type, res_id = p["type"], p["id"]
    document = patch_document(req.body)
    current = tx.read(res_type, res_id)
    before = guard.before_write(tx, res_type, res_id)
    expected = parse_if_match(req.header("if-match"))
    if expected is not None and str(current["meta"]["versionId"]) != str(expected):
        raise VersionConflict(
            f"{res_type}/{res_id} is at version {current['meta']['versionId']}, not {expected}"
        )
    if isinstance(document, list):
        patched = apply_json_patch(current, document)
    else:
        patched = apply_fhirpath_patch(current, document)
    result = tx.update(patched, if_match=int(current["meta"]["versionId"]))
    guard.check_written(tx, result.resource, before, created=False)
    return written(req, result.resource, 200)


def _deleted(req: FhirRequest, res_type: str, res_id: str, version: int | None) -> FhirResponse:
    if version is None:
        return FhirResponse(
            200,
            operation_outcome(
                f"{res_type}/{res_id[:64]} does not exist or is already deleted: nothing to do",
                code="not-found",
            ),
        )
    return FhirResponse(204, None, {"ETag": version_etag(version)})


def delete(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    res_type, res_id = p["type"], p["id"]
    guard.before_write(tx, res_type, res_id)
    expected = parse_if_match(req.header("if-match"))
    if expected is not None:
        current = tx.read(res_type, res_id)
        if str(current["meta"]["versionId"]) != str(expected):
            raise VersionConflict(
                f"{res_type}/{res_id} is at version {current['meta']['versionId']}, "
                f"not {expected}: read it again before deleting"
            )
    return _deleted(req, res_type, res_id, tx.delete(res_type, res_id))


def conditional_delete(
    req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params
) -> FhirResponse:
    res_type = p["type"]
    matches = find(tx, ctx, res_type, list(req.query))
    if len(matches) > 1:
        raise PreconditionFailed(f"the conditional delete matches more than one {res_type}")
    if not matches:
        return FhirResponse(
            200, operation_outcome(f"no {res_type} matches: nothing to delete", code="not-found")
        )
    res_id = str(matches[0]["id"])
    guard.before_write(tx, res_type, res_id)
    return _deleted(req, res_type, res_id, tx.delete(res_type, res_id))


# ---- history ------------------------------------------------------------------------------

_HISTORY_STATUS = {"create": "201 Created", "update": "200 OK", "delete": "204 No Content"}
_HISTORY_METHOD = {"create": "POST", "update": "PUT", "delete": "DELETE"}


def int_param(req: FhirRequest, name: str, default: int, maximum: int) -> int:
    raw = req.param(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidInput(f"{name}={raw[:20]!r} is not a non-negative integer")
    return min(int(raw), maximum)


def _instant_param(req: FhirRequest, name: str) -> int | None:
    raw = req.param(name)
    if raw is None:
        return None
    try:
        return parse_instant_ms(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw[:40]!r} is not a FHIR instant or date") from None


def history(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    res_type, res_id = p.get("type"), p.get("id")
    settings = ctx.settings
    count = int_param(req, "_count", settings.page_size_default, settings.page_size_max)
    offset = int_param(req, "_offset", 0, 10**9)
    since = _instant_param(req, "_since")
    at = _instant_param(req, "_at")
    access = guard.scope(tx)
    if access is not None and res_type is not None:
        access.require(res_type)
        if res_id is not None and tx.exists(res_type, res_id):
            guard.check_read(tx, res_type, res_id)
    entries, total = tx.history(
        res_type, res_id, since_ms=since, at_most_ms=at, offset=offset, count=count, scope=access
    )
    if res_type is not None and res_id is not None and total == 0:
        _check_known(tx, res_type, res_id)
    items: list[dict[str, Any]] = []
    for e in entries:
        item: dict[str, Any] = {"fullUrl": url(req.base_url, e.type, e.id)}
        if e.resource is not None:
            item["resource"] = e.resource
        item["request"] = {
            "method": _HISTORY_METHOD.get(e.method, "PUT"),
            "url": e.type if e.method == "create" else f"{e.type}/{e.id}",
        }
        stamp = instant(e.last_updated)
        item["response"] = {
            "status": _HISTORY_STATUS.get(e.method, "200 OK"),
            "etag": version_etag(e.version_id),
            "lastModified": stamp,
        }
        items.append(item)
    segments = [s for s in (res_type, res_id) if s is not None]
    kept = [(k, v) for k, v in req.query if k != "_offset"]
    links = [("self", url(req.base_url, *segments, "_history", params=req.query))]
    if offset + count < total and count > 0:
        params = [*kept, ("_offset", str(offset + count))]
        links.append(("next", url(req.base_url, *segments, "_history", params=params)))
    if offset > 0:
        params = [*kept, ("_offset", str(max(0, offset - count)))]
        links.append(("previous", url(req.base_url, *segments, "_history", params=params)))
    return FhirResponse(200, bundle("history", items, total=total, links=links))


def _check_known(tx: Transaction, res_type: str, res_id: str) -> None:
    """An instance history of an unknown resource is a 404, not an empty Bundle."""
    _, total = tx.history(res_type, res_id, count=0)
    if total == 0:
        raise NotFound(f"{res_type}/{res_id[:64]} is not known")


# ---- search -------------------------------------------------------------------------------


_CONTROL = _RESULT_PARAMS | {"_include:iterate", "_revinclude:iterate"}


def _handling(req: FhirRequest) -> str:
    for part in (req.header("prefer") or "").replace(";", ",").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip() == "handling":
            return value.strip()
    return "strict"


def _known_param(ctx: FhirContext, res_type: str, name: str) -> bool:
    code = name.split(":", 1)[0].split(".", 1)[0]
    return name in _CONTROL or ctx.registry.get(res_type, code) is not None


def search(req: FhirRequest, tx: Transaction, ctx: FhirContext, p: Params) -> FhirResponse:
    res_type = p["type"]
    settings = ctx.settings
    params = [(k, v) for k, v in req.query if k not in FORMAT_PARAMS]
    if _handling(req) == "lenient":
        # Prefer: handling=lenient asks us to ignore parameters we do not know (FHIR 3.1.1.4.1);
        # the self link then shows only the ones applied.
        params = [(k, v) for k, v in params if _known_param(ctx, res_type, k)]
    access = guard.scope(tx)
    if access is not None:
        access.require(res_type)
        access.check_search(res_type, params)
    request = parse_search(
        res_type,
        params,
        ctx.registry,
        default_count=settings.page_size_default,
        max_count=settings.page_size_max,
    )
    result = tx.search(request, access)
    summary = request.summary
    elements = request.elements or None
    query = urlencode(format_search(request))
    self_link = url(req.base_url, res_type) + (f"?{query}" if query else "")
    links = [("self", self_link)]
    if result.next_params:
        links.append(("next", url(req.base_url, res_type, params=result.next_params)))
    entries: list[dict[str, Any]] = []
    if summary != "count":
        for mode, resources in (("match", result.matches), ("include", result.included)):
            for resource in resources:
                entries.append(
                    {
                        "fullUrl": url(req.base_url, resource["resourceType"], resource["id"]),
                        "resource": view(resource, summary, elements),
                        "search": {"mode": mode},
                    }
                )
    total = result.total
    if total is None and not result.next_params and not request.offset and not request.cursor:
        # The whole result fits in this first page: the total is free, so give it.
        total = len(result.matches)
    return FhirResponse(200, bundle("searchset", entries, total=total, links=links))
