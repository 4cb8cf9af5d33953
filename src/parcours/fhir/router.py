"""One table of (method, path pattern) -> interaction, and the one place errors become outcomes.

``FhirEngine.handle`` never raises: any ``ParcoursError`` becomes an OperationOutcome with the
error's status, and anything unexpected becomes a logged 500 without details. ``dispatch``
runs one request inside a transaction the caller already holds (used by transaction Bundles).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.exc import DataError, StatementError

from parcours.coordination import operations as coordination_ops
from parcours.errors import InvalidInput, NotFound, ParcoursError
from parcours.fhir import audit_api, patient_access
from parcours.fhir import interactions as fhir
from parcours.fhir import notification_preferences as notify_prefs
from parcours.fhir import patient_operations as patient_ops
from parcours.fhir.auditing import entry_for, failure_entry
from parcours.fhir.capability import capability_statement
from parcours.fhir.context import FhirContext
from parcours.fhir.exposure import outgoing
from parcours.fhir.outcome import from_error
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.pathways import api as pathway_api
from parcours.ppcs import operations as ppcs_ops
from parcours.security.policy import access_for, pseudonym_key, pseudonymise, sees_pseudonyms
from parcours.store import Transaction
from parcours.store.clock import instant, now_ms

__all__ = ["FhirEngine", "MethodNotAllowed", "Route"]

log = logging.getLogger(__name__)

TxHandler = Callable[[FhirRequest, Transaction, FhirContext, dict[str, str]], FhirResponse]
EngineHandler = Callable[[FhirRequest, "FhirEngine"], FhirResponse]
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class MethodNotAllowed(ParcoursError):
    """The path exists but not with this HTTP method."""

    status = 405
    issue_code = "not-supported"
    ack_code = "AE"
    allow: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    # Literal segments, or "{type}" (a known resource type), "{id}", "{vid}".
    pattern: tuple[str, ...]
    # "read" and "write" handlers get a transaction of that kind; "engine" ones manage their own.
    mode: Literal["read", "write", "engine"]
    tx_handler: TxHandler | None = None
    engine_handler: EngineHandler | None = None
    # The interaction recorded in the audit trail (FHIR restful-interaction code).
    audit: str = "operation"


def _capabilities(req: FhirRequest, engine: FhirEngine) -> FhirResponse:
    return FhirResponse(200, engine.capability_statement(req.base_url))


def _bundle(req: FhirRequest, engine: FhirEngine) -> FhirResponse:
    from parcours.fhir.bundles import process_bundle

    return process_bundle(req, engine)


def _audit_is_read_only(
    req: FhirRequest, tx: Transaction, ctx: FhirContext, p: dict[str, str]
) -> FhirResponse:
    error = MethodNotAllowed(
        "the audit trail is written by the platform only: AuditEvents are read"
    )
    error.allow = "GET"
    raise error


def _ppcs(name: str) -> TxHandler:
    """A PPCS operation, looked up when called: parcours.ppcs.operations imports this package,
    so it may still be loading when this module builds its routes."""

    def handler(
        req: FhirRequest, tx: Transaction, ctx: FhirContext, p: dict[str, str]
    ) -> FhirResponse:
        operation: TxHandler = getattr(ppcs_ops, name)
        return operation(req, tx, ctx, p)

    return handler


def _ppcs_engine(name: str) -> EngineHandler:
    def handler(req: FhirRequest, engine: FhirEngine) -> FhirResponse:
        operation: EngineHandler = getattr(ppcs_ops, name)
        return operation(req, engine)

    return handler


ROUTES: tuple[Route, ...] = (
    Route("GET", ("metadata",), "engine", engine_handler=_capabilities),
    # The audit trail is not in the resource store (before the generic "{type}" routes).
    Route("GET", ("AuditEvent",), "read", audit_api.search, audit="search-type"),
    Route("GET", ("AuditEvent", "{id}"), "read", audit_api.read, audit="read"),
    *(
        Route(method, pattern, "read", _audit_is_read_only, audit=interaction)
        for method, pattern, interaction in (
            ("POST", ("AuditEvent",), "create"),
            ("PUT", ("AuditEvent",), "update"),
            ("DELETE", ("AuditEvent",), "delete"),
            ("PUT", ("AuditEvent", "{id}"), "update"),
            ("PATCH", ("AuditEvent", "{id}"), "patch"),
            ("DELETE", ("AuditEvent", "{id}"), "delete"),
        )
    ),
    Route("GET", ("Patient", "{id}", "$access-report"), "read", audit_api.access_report),
    Route("POST", (), "engine", engine_handler=_bundle, audit="transaction"),
    Route("GET", ("_history",), "read", fhir.history, audit="history-system"),
    Route("GET", ("{type}",), "read", fhir.search, audit="search-type"),
    Route("POST", ("{type}",), "write", fhir.create, audit="create"),
    Route("PUT", ("{type}",), "write", fhir.conditional_update, audit="update"),
    Route("DELETE", ("{type}",), "write", fhir.conditional_delete, audit="delete"),
    Route("POST", ("{type}", "_search"), "read", fhir.search, audit="search-type"),
    # Identity operations (before "{type}/{id}", which would take "$match" for an id).
    Route("POST", ("Patient", "$match"), "read", patient_ops.patient_match),
    Route("POST", ("Patient", "$merge"), "write", patient_ops.patient_merge, audit="merge"),
    Route("POST", ("Patient", "$unmerge"), "write", patient_ops.patient_unmerge, audit="merge"),
    Route("GET", ("Patient", "{id}", "$everything"), "read", patient_access.patient_everything),
    # Pathway enrolment: stores the CarePlan and its Tasks (docs/pathways.md).
    Route("POST", ("PlanDefinition", "{id}", "$apply"), "write", pathway_api.plan_apply),
    # PPCS documents and sign-off (parcours.ppcs, docs/ppcs.md).
    *(
        Route("GET", (*at, operation), "read", handler)
        for at in (("CarePlan", "{id}"), ("CarePlan", "{id}", "_history", "{vid}"))
        for operation, handler in (
            ("$ppcs-html", _ppcs("ppcs_html")),
            ("$ppcs-pdf", _ppcs("ppcs_pdf")),
        )
    ),
    Route(
        "POST",
        ("CarePlan", "{id}", "$ppcs-sign"),
        "engine",
        engine_handler=_ppcs_engine("ppcs_sign"),
    ),
    # Coordination requests (parcours.coordination, docs/coordination.md).
    *(
        Route(method, pattern, "read" if mode == "read" else "write", handler)
        for method, pattern, mode, handler in coordination_ops.ROUTES
    ),
    Route(
        "POST",
        ("Patient", "{id}", "$break-glass"),
        "write",
        patient_access.patient_break_glass,
        audit="break-glass",
    ),
    *(
        route
        for kind in ("Practitioner", "Organization")
        for route in (
            Route(
                "GET",
                (kind, "{id}", "$notification-preferences"),
                "read",
                notify_prefs.get_preferences,
            ),
            Route(
                "PUT",
                (kind, "{id}", "$notification-preferences"),
                "write",
                notify_prefs.put_preferences,
            ),
        )
    ),
    Route("GET", ("{type}", "_history"), "read", fhir.history, audit="history-type"),
    Route("GET", ("{type}", "{id}"), "read", fhir.read, audit="read"),
    Route("PUT", ("{type}", "{id}"), "write", fhir.update, audit="update"),
    Route("PATCH", ("{type}", "{id}"), "write", fhir.patch, audit="patch"),
    Route("DELETE", ("{type}", "{id}"), "write", fhir.delete, audit="delete"),
    Route("GET", ("{type}", "{id}", "_history"), "read", fhir.history, audit="history-instance"),
    Route("GET", ("{type}", "{id}", "_history", "{vid}"), "read", fhir.vread, audit="vread"),
)


def _route_operations() -> dict[str, list[str]]:
    """The operations ROUTES serve, per resource type, for the CapabilityStatement."""
    found: dict[str, list[str]] = {}
    for route in ROUTES:
        res_type, last = route.pattern[:1], route.pattern[-1:]
        if res_type and last and last[0].startswith("$") and not res_type[0].startswith("{"):
            found.setdefault(res_type[0], []).append(last[0][1:])
    return found


class FhirEngine:
    """The FHIR server without HTTP: routes requests to interactions on the store."""

    def __init__(self, ctx: FhirContext) -> None:
        self.ctx = ctx
        self.types = frozenset(ctx.registry.resource_types())
        self._capability: dict[str, dict[str, object]] = {}
        self._started = instant(now_ms())
        self._pseudonyms: bytes | None = None

    def capability_statement(self, base_url: str) -> dict[str, object]:
        # Built once per base URL: the registry does not change while the server runs.
        cached = self._capability.get(base_url)
        if cached is None:
            cached = capability_statement(
                self.ctx, base_url, self._started, _route_operations()
            )
            self._capability[base_url] = cached
        return cached

    def match(self, req: FhirRequest) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        unknown_type: str | None = None
        for route in ROUTES:
            if len(route.pattern) != len(req.path):
                continue
            params: dict[str, str] = {}
            for want, got in zip(route.pattern, req.path, strict=True):
                if want == "{type}":
                    if got not in self.types:
                        unknown_type = got
                        break
                    params["type"] = got
                elif want.startswith("{"):
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                if route.method == req.method:
                    return route, params
                allowed.append(route.method)
        if allowed:
            error = MethodNotAllowed(
                f"{req.method} is not supported on this URL (allowed: {', '.join(allowed)})"
            )
            error.allow = ", ".join(sorted(set(allowed)))
            raise error
        if unknown_type is not None:
            raise NotFound(f"{unknown_type[:64]!r} is not a resource type this server knows")
        raise NotFound(f"no FHIR interaction at /{'/'.join(req.path)[:100]}")

    @contextmanager
    def begin(self, req: FhirRequest, *, readonly: bool = False) -> Iterator[Transaction]:
        """A store transaction carrying the caller's access rights (``tx.access``)."""
        with self.ctx.store.begin(readonly=readonly) as tx:
            if req.principal is not None:
                tx.access = access_for(tx, req.principal)
            yield tx

    def dispatch(self, req: FhirRequest, tx: Transaction) -> FhirResponse:
        """Run a request that needs a transaction inside ``tx`` (errors propagate)."""
        route, params = self.match(req)
        if route.tx_handler is None:
            raise InvalidInput(f"{req.method} /{'/'.join(req.path)} cannot be nested in a Bundle")
        _check_ids(req, params)
        return self._run(route, req, tx, params)

    def _run(
        self, route: Route, req: FhirRequest, tx: Transaction, params: dict[str, str]
    ) -> FhirResponse:
        assert route.tx_handler is not None
        before = len(tx.written)
        response = route.tx_handler(req, tx, self.ctx, params)
        res_type = params.get("type") or (
            req.path[0] if req.path[:1] and req.path[0] in self.types else None
        )
        self.audit(req, route.audit, response, tx, before, res_type, params.get("id"))
        return response

    def audit(
        self,
        req: FhirRequest,
        interaction: str,
        response: FhirResponse,
        tx: Transaction,
        before: int,
        res_type: str | None,
        res_id: str | None = None,
    ) -> None:
        """Queue the audit entry of one interaction, whose writes are ``tx.written[before:]``
        (a transaction Bundle runs several interactions in one store transaction)."""
        if req.principal is None or self.ctx.store.audit is None:
            return
        entry = entry_for(
            req,
            interaction,
            response.status,
            response.body,
            tx,
            tx.written[before:],
            res_type,
            res_id,
        )
        tx.audit_entries.append(entry)

    def record_rejected(self, req: FhirRequest, error: ParcoursError) -> None:
        """Record a request refused before it reached an interaction (bad media type, body…)."""
        try:
            route: Route | None
            route, params = self.match(req)
        except ParcoursError:
            route, params = None, {}
        self.record_failure(req, _interaction(route, req), error, params)

    def record_failure(
        self, req: FhirRequest, interaction: str, error: ParcoursError, params: dict[str, str]
    ) -> None:
        """Record a refused or failed interaction (its own transaction was rolled back)."""
        sink = self.ctx.store.audit
        if req.principal is None or sink is None:
            return
        entry = failure_entry(
            req, interaction, error.status, str(error), params.get("type"), params.get("id")
        )
        try:
            sink.record([entry])
        except Exception:
            log.exception("could not record the failure of %s in the audit trail", interaction)

    def handle(self, req: FhirRequest) -> FhirResponse:
        """Run one request in its own transaction; never raises."""
        response = self._handle(req)
        response.body = outgoing(response.body, allow_test_ins=not self.ctx.settings.production)
        if req.principal is not None and sees_pseudonyms(req.principal) and response.status < 400:
            response.body = pseudonymise(response.body, self._pseudonym_key())
            response.headers.pop("Location", None)
            response.headers.pop("Content-Location", None)
        return response

    def _pseudonym_key(self) -> bytes:
        if self._pseudonyms is None:
            with self.ctx.store.begin() as tx:
                self._pseudonyms = pseudonym_key(tx)
        return self._pseudonyms

    def _handle(self, req: FhirRequest) -> FhirResponse:
        route: Route | None = None
        params: dict[str, str] = {}
        try:
            try:
                route, params = self.match(req)
                if route.engine_handler is not None:
                    return route.engine_handler(req, self)
                _check_ids(req, params)
                with self.begin(req, readonly=route.mode == "read") as tx:
                    return self._run(route, req, tx, params)
            except (DataError, StatementError) as exc:
                # The store should translate these; a value the database refuses is bad input.
                raise InvalidInput(
                    "a value in the request is not acceptable to the database"
                ) from exc
        except ParcoursError as error:
            self.record_failure(req, _interaction(route, req), error, params)
            return error_response(error)
        except Exception:
            log.exception("unexpected error in %s /%s", req.method, "/".join(req.path)[:200])
            internal = ParcoursError(
                "internal error; the request was not applied, it may be retried"
            )
            self.record_failure(req, _interaction(route, req), internal, params)
            return error_response(internal)


def _is_bundle(route: Route | None, req: FhirRequest) -> bool:
    return route is not None and route.pattern == () and route.method == "POST"


def _interaction(route: Route | None, req: FhirRequest) -> str:
    if route is None:
        # No interaction at this URL (unknown type or path, method not allowed).
        return "operation"
    if _is_bundle(route, req) and isinstance(req.body, dict) and req.body.get("type") == "batch":
        return "batch"
    return route.audit


def _check_ids(req: FhirRequest, params: dict[str, str]) -> None:
    res_id = params.get("id")
    if res_id is not None and not _ID.match(res_id):
        if req.method == "PUT":
            raise InvalidInput(
                f"id {res_id[:80]!r} is not a valid FHIR id (1 to 64 characters among "
                "A-Z a-z 0-9 - .)"
            )
        raise NotFound(f"{params.get('type')}/{res_id[:64]} is not known (not a valid id)")


def error_response(error: ParcoursError) -> FhirResponse:
    headers: dict[str, str] = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="parcours"'
    if isinstance(error, MethodNotAllowed) and error.allow:
        headers["Allow"] = error.allow
    return FhirResponse(error.status, from_error(error), headers)
