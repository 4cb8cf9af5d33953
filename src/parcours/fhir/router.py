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

from parcours.errors import InvalidInput, NotFound, ParcoursError
from parcours.fhir import interactions as fhir
from parcours.fhir import patient_access
from parcours.fhir import patient_operations as patient_ops
from parcours.fhir.capability import capability_statement
from parcours.fhir.context import FhirContext
from parcours.fhir.exposure import outgoing
from parcours.fhir.outcome import from_error
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.security.policy import access_for
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


def _capabilities(req: FhirRequest, engine: FhirEngine) -> FhirResponse:
    return FhirResponse(200, engine.capability_statement(req.base_url))


def _bundle(req: FhirRequest, engine: FhirEngine) -> FhirResponse:
    from parcours.fhir.bundles import process_bundle

    return process_bundle(req, engine)


ROUTES: tuple[Route, ...] = (
    Route("GET", ("metadata",), "engine", engine_handler=_capabilities),
    Route("POST", (), "engine", engine_handler=_bundle),
    Route("GET", ("_history",), "read", fhir.history),
    Route("GET", ("{type}",), "read", fhir.search),
    Route("POST", ("{type}",), "write", fhir.create),
    Route("PUT", ("{type}",), "write", fhir.conditional_update),
    Route("DELETE", ("{type}",), "write", fhir.conditional_delete),
    Route("POST", ("{type}", "_search"), "read", fhir.search),
    # Identity operations (before "{type}/{id}", which would take "$match" for an id).
    Route("POST", ("Patient", "$match"), "read", patient_ops.patient_match),
    Route("POST", ("Patient", "$merge"), "write", patient_ops.patient_merge),
    Route("POST", ("Patient", "$unmerge"), "write", patient_ops.patient_unmerge),
    Route("GET", ("Patient", "{id}", "$everything"), "read", patient_access.patient_everything),
    Route("POST", ("Patient", "{id}", "$break-glass"), "write", patient_access.patient_break_glass),
    Route("GET", ("{type}", "_history"), "read", fhir.history),
    Route("GET", ("{type}", "{id}"), "read", fhir.read),
    Route("PUT", ("{type}", "{id}"), "write", fhir.update),
    Route("PATCH", ("{type}", "{id}"), "write", fhir.patch),
    Route("DELETE", ("{type}", "{id}"), "write", fhir.delete),
    Route("GET", ("{type}", "{id}", "_history"), "read", fhir.history),
    Route("GET", ("{type}", "{id}", "_history", "{vid}"), "read", fhir.vread),
)


class FhirEngine:
    """The FHIR server without HTTP: routes requests to interactions on the store."""

    def __init__(self, ctx: FhirContext) -> None:
        self.ctx = ctx
        self.types = frozenset(ctx.registry.resource_types())
        self._capability: dict[str, dict[str, object]] = {}
        self._started = instant(now_ms())

    def capability_statement(self, base_url: str) -> dict[str, object]:
        # Built once per base URL: the registry does not change while the server runs.
        cached = self._capability.get(base_url)
        if cached is None:
            cached = capability_statement(self.ctx, base_url, self._started)
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
        return route.tx_handler(req, tx, self.ctx, params)

    def handle(self, req: FhirRequest) -> FhirResponse:
        """Run one request in its own transaction; never raises."""
        response = self._handle(req)
        response.body = outgoing(response.body, allow_test_ins=not self.ctx.settings.production)
        return response

    def _handle(self, req: FhirRequest) -> FhirResponse:
        try:
            try:
                route, params = self.match(req)
                if route.engine_handler is not None:
                    return route.engine_handler(req, self)
                assert route.tx_handler is not None
                _check_ids(req, params)
                with self.begin(req, readonly=route.mode == "read") as tx:
                    return route.tx_handler(req, tx, self.ctx, params)
            except (DataError, StatementError) as exc:
                # The store should translate these; a value the database refuses is bad input.
                raise InvalidInput(
                    "a value in the request is not acceptable to the database"
                ) from exc
        except ParcoursError as error:
            return error_response(error)
        except Exception:
            log.exception("unexpected error in %s /%s", req.method, "/".join(req.path)[:200])
            return error_response(
                ParcoursError("internal error; the request was not applied, it may be retried")
            )


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
