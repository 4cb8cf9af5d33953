"""Batch and transaction Bundles (``POST [base]``).

A transaction runs in ONE store transaction: ids of created resources are assigned first,
conditional creates, conditional updates and conditional references are resolved, every
``urn:uuid:`` (and other) fullUrl is rewritten to ``Type/id`` throughout the Bundle, then the
entries run in the order the specification sets (DELETE, POST, PUT/PATCH, GET/HEAD). The first
failure rolls everything back and the OperationOutcome names the entry. A batch runs each entry
in its own transaction and reports each failure in ``entry.response.outcome``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from parcours.errors import (
    Conflict,
    InvalidInput,
    Issue,
    NotFound,
    ParcoursError,
    PreconditionFailed,
)
from parcours.fhir import interactions as fhir
from parcours.fhir.outcome import from_error
from parcours.fhir.references import conditional_references, rewrite
from parcours.fhir.render import bundle
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.security import guard
from parcours.store import Transaction

if TYPE_CHECKING:
    from parcours.fhir.router import FhirEngine

__all__ = ["process_bundle"]

_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")
# Processing order of a transaction (FHIR R4 3.1.0.11.2).
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
MAX_ENTRIES = 10_000


@dataclass(slots=True)
class _Entry:
    index: int
    method: str
    url: str
    full_url: str | None
    resource: Any
    request: dict[str, Any]
    # For POST in a transaction: the id assigned up front, or the existing match (ifNoneExist).
    res_type: str | None = None
    assigned_id: str | None = None
    existing: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def process_bundle(req: FhirRequest, engine: FhirEngine) -> FhirResponse:
    body = req.body
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise InvalidInput("POST to the FHIR base takes a Bundle of type batch or transaction")
    kind = body.get("type")
    if kind not in ("batch", "transaction"):
        raise InvalidInput(
            f"Bundle.type {str(kind)[:40]!r} cannot be processed here: only batch and "
            "transaction; store other Bundles with POST [base]/Bundle"
        )
    entries = _entries(body)
    if kind == "transaction":
        return _transaction(req, engine, entries)
    return _batch(req, engine, entries)


def _entries(body: dict[str, Any]) -> list[_Entry]:
    raw = body.get("entry", [])
    if not isinstance(raw, list):
        raise InvalidInput("Bundle.entry must be a list", [Issue("not a list", "Bundle.entry")])
    if len(raw) > MAX_ENTRIES:
        raise InvalidInput(f"a Bundle may carry at most {MAX_ENTRIES} entries")
    out: list[_Entry] = []
    problems: list[Issue] = []
    for i, entry in enumerate(raw):
        where = f"Bundle.entry[{i}]"
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            problems.append(Issue("entry.request is required", f"{where}.request", "required"))
            continue
        method, url = request.get("method"), request.get("url")
        if method not in _METHODS:
            problems.append(
                Issue("request.method must be GET, POST, PUT or DELETE", f"{where}.request.method")
            )
            continue
        if not isinstance(url, str) or not url:
            problems.append(Issue("request.url is required", f"{where}.request.url", "required"))
            continue
        full_url = entry.get("fullUrl")
        headers = {
            name: str(request[key])
            for key, name in (
                ("ifMatch", "if-match"),
                ("ifNoneExist", "if-none-exist"),
                ("ifNoneMatch", "if-none-match"),
            )
            if isinstance(request.get(key), str)
        }
        out.append(
            _Entry(
                i,
                str(method),
                url,
                full_url if isinstance(full_url, str) else None,
                entry.get("resource"),
                request,
                headers=headers,
            )
        )
    if problems:
        raise InvalidInput(f"the Bundle has {len(problems)} malformed entries", problems)
    return out


def _sub_request(req: FhirRequest, entry: _Entry, body: Any) -> FhirRequest:
    url = entry.url
    base = req.base_url.rstrip("/") + "/"
    if url.startswith(base):
        url = url[len(base) :]
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        raise InvalidInput(f"request.url {url[:100]!r} is not on this server")
    path = tuple(s for s in parts.path.split("/") if s)
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    headers = dict(entry.headers)
    if (prefer := req.header("prefer")) is not None:
        headers["prefer"] = prefer
    method = "GET" if entry.method == "HEAD" else entry.method
    return FhirRequest(method, path, query, headers, body, req.base_url, req.principal, req.client)


def _located(error: ParcoursError, entry: _Entry) -> ParcoursError:
    """The same error, saying which entry failed (and where in its resource)."""
    where = f"Bundle.entry[{entry.index}]"
    issues = []
    for issue in error.issues:
        location = issue.location
        if location and isinstance(entry.resource, dict):
            res_type = str(entry.resource.get("resourceType"))
            if location == res_type or location.startswith(res_type + "."):
                location = f"{where}.resource{location[len(res_type) :]}"
        issues.append(Issue(issue.message, location or where, issue.code, issue.severity))
    located = type(error)(f"{where} ({entry.method} {entry.url[:100]}): {error.message}", issues)
    return located


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _response_entry(resp: FhirResponse, full_url: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"status": _status(resp.status)}
    headers = resp.headers
    if "Location" in headers:
        response["location"] = headers["Location"]
    if "ETag" in headers:
        response["etag"] = headers["ETag"]
    out: dict[str, Any] = {}
    if full_url:
        out["fullUrl"] = full_url
    if resp.body is not None:
        if resp.body.get("resourceType") == "OperationOutcome" and resp.status >= 300:
            response["outcome"] = resp.body
        else:
            out["resource"] = resp.body
            meta = resp.body.get("meta") or {}
            if "lastUpdated" in meta and resp.status < 300:
                response["lastModified"] = meta["lastUpdated"]
    out["response"] = response
    return out


def _created_url(req: FhirRequest, resource: dict[str, Any]) -> str:
    return f"{req.base_url}/{resource['resourceType']}/{resource['id']}"


# ---- transaction --------------------------------------------------------------------------


def _transaction(req: FhirRequest, engine: FhirEngine, entries: list[_Entry]) -> FhirResponse:
    results: dict[int, dict[str, Any]] = {}
    with engine.begin(req) as tx:
        mapping: dict[str, str] = {}
        current: _Entry | None = None
        try:
            for entry in entries:
                current = entry
                _plan(req, tx, engine, entry, mapping)
            for entry in entries:
                current = entry
                for ref, res_type, query in conditional_references(
                    entry.resource, engine.types.__contains__
                ):
                    if ref not in mapping:
                        mapping[ref] = _resolve_conditional(tx, engine, ref, res_type, query)
            for entry in sorted(entries, key=lambda e: (_ORDER[e.method], e.index)):
                current = entry
                resource = rewrite(entry.resource, mapping) if mapping else entry.resource
                results[entry.index] = _run_transaction_entry(req, tx, engine, entry, resource)
        except ParcoursError as error:
            assert current is not None
            raise _located(error, current) from error
    ordered = [results[e.index] for e in entries]
    return FhirResponse(200, bundle("transaction-response", ordered))


def _plan(
    req: FhirRequest, tx: Transaction, engine: FhirEngine, entry: _Entry, mapping: dict[str, str]
) -> None:
    """Assign ids and resolve conditional creates/updates before anything is written."""
    ctx = engine.ctx
    path = _sub_request(req, entry, None).path
    if entry.method == "POST":
        # Tolerated: "Type/id" (seen in ANS examples); POST never takes the client's id.
        if len(path) not in (1, 2) or path[0] not in engine.types:
            raise InvalidInput("a POST entry's request.url must be a resource type")
        res_type = entry.res_type = path[0]
        condition = entry.headers.get("if-none-exist")
        if condition is not None:
            matches = fhir.find(tx, ctx, res_type, fhir.condition_params(condition))
            if len(matches) > 1:
                raise PreconditionFailed(f"ifNoneExist matches more than one {res_type}")
            if matches:
                entry.existing = matches[0]
        target = entry.existing["id"] if entry.existing else str(uuid.uuid4())
        entry.assigned_id = str(target)
        if entry.full_url:
            mapping[entry.full_url] = f"{res_type}/{target}"
    elif entry.method == "PUT" and len(path) == 1 and path[0] in engine.types:
        # Conditional update: fix its target now so references to its fullUrl can be rewritten.
        res_type = path[0]
        sub = _sub_request(req, entry, None)
        matches = fhir.find(tx, ctx, res_type, list(sub.query))
        if len(matches) > 1:
            raise PreconditionFailed(f"the conditional update matches more than one {res_type}")
        body_id = entry.resource.get("id") if isinstance(entry.resource, dict) else None
        if matches:
            target = str(matches[0]["id"])
            if body_id is not None and body_id != target:
                raise InvalidInput(f"the body's id differs from the matching {res_type}/{target}")
        elif isinstance(body_id, str):
            if tx.exists(res_type, body_id):
                raise Conflict(
                    f"{res_type}/{body_id[:64]} exists but does not match the conditional update"
                )
            target = body_id
        else:
            target = str(uuid.uuid4())
        entry.url = f"{res_type}/{target}"
        entry.assigned_id = target
        if entry.full_url:
            mapping[entry.full_url] = entry.url
    elif entry.method == "PUT" and len(path) == 2 and entry.full_url:
        mapping[entry.full_url] = f"{path[0]}/{path[1]}"


def _resolve_conditional(
    tx: Transaction, engine: FhirEngine, ref: str, res_type: str, query: str
) -> str:
    matches = fhir.find(tx, engine.ctx, res_type, fhir.condition_params(query))
    if not matches:
        raise NotFound(f"the conditional reference {ref[:120]!r} matches no resource")
    if len(matches) > 1:
        raise PreconditionFailed(
            f"the conditional reference {ref[:120]!r} matches more than one resource"
        )
    return f"{res_type}/{matches[0]['id']}"


def _run_transaction_entry(
    req: FhirRequest, tx: Transaction, engine: FhirEngine, entry: _Entry, resource: Any
) -> dict[str, Any]:
    if entry.method == "POST":
        sub = _sub_request(req, entry, resource)
        before = len(tx.written)
        if entry.existing is not None:
            resp = fhir.written(req, entry.existing, 200)
        else:
            guard.before_write(tx, sub.path[0], None)
            created = tx.create(fhir.body_resource(sub, sub.path[0]), res_id=entry.assigned_id)
            guard.check_written(tx, created, None, created=True)
            resp = fhir.written(req, created, 201)
        engine.audit(sub, "create", resp, tx, before, sub.path[0])
        target = entry.existing or {"resourceType": entry.res_type, "id": entry.assigned_id}
        return _response_entry(resp, _created_url(req, target))
    if entry.method == "PUT" and isinstance(resource, dict) and entry.assigned_id is not None:
        resource = {**resource, "id": entry.assigned_id}
    resp = engine.dispatch(_sub_request(req, entry, resource), tx)
    full_url = None
    if entry.method in ("PUT", "PATCH") and resp.body and "id" in resp.body:
        full_url = _created_url(req, resp.body)
    return _response_entry(resp, full_url)


# ---- batch --------------------------------------------------------------------------------


def _batch(req: FhirRequest, engine: FhirEngine, entries: list[_Entry]) -> FhirResponse:
    out: list[dict[str, Any]] = []
    for entry in entries:
        try:
            with engine.begin(req, readonly=entry.method in ("GET", "HEAD")) as tx:
                resource = entry.resource
                mapping = {
                    ref: _resolve_conditional(tx, engine, ref, res_type, query)
                    for ref, res_type, query in conditional_references(
                        resource, engine.types.__contains__
                    )
                }
                if mapping:
                    resource = rewrite(resource, mapping)
                resp = engine.dispatch(_sub_request(req, entry, resource), tx)
            full_url = None
            if entry.method in ("POST", "PUT", "PATCH") and resp.body and "id" in resp.body:
                full_url = _created_url(req, resp.body)
            out.append(_response_entry(resp, full_url))
        except ParcoursError as error:
            located = _located(error, entry)
            try:
                sub = _sub_request(req, entry, entry.resource)
            except ParcoursError:
                # No URL we can read: recorded as an operation at no known path.
                sub = FhirRequest(
                    entry.method, ("?",), (), {}, None, req.base_url, req.principal, req.client
                )
            engine.record_rejected(sub, located)
            out.append(
                {"response": {"status": _status(error.status), "outcome": from_error(located)}}
            )
    return FhirResponse(200, bundle("batch-response", out))
