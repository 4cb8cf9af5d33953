"""The workspace's only way to patient data: FHIR interactions run by the API's own engine.

Every read and write of a page is a ``FhirRequest`` carrying the logged-in user's
``Principal``, handled by the same ``FhirEngine`` as ``/fhir``: the access policy filters it,
the audit trail records it (one AuditEvent per interaction, exactly as for an API client), and
INS exposure and pseudonymisation apply. There is no other path, so the UI has no privileged
back door (decision D31).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from parcours.errors import ParcoursError
from parcours.fhir.exposure import outgoing
from parcours.fhir.request import FhirRequest, FhirResponse
from parcours.fhir.router import FhirEngine, error_response
from parcours.security.policy import sees_pseudonyms
from parcours.security.principal import Principal
from parcours.store import Transaction

__all__ = ["Gateway", "UiError"]

Resource = dict[str, Any]


class UiError(Exception):
    """A FHIR interaction the engine refused: its status and the OperationOutcome's text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def forbidden(self) -> bool:
        return self.status == 403


def _diagnostics(body: Mapping[str, Any] | None) -> str:
    if not body or body.get("resourceType") != "OperationOutcome":
        return "la demande a été refusée"
    texts = [
        str(issue.get("diagnostics") or issue.get("details", {}).get("text") or "")
        for issue in body.get("issue") or []
    ]
    return "; ".join(t for t in texts if t) or "la demande a été refusée"


@dataclass(frozen=True, slots=True)
class Gateway:
    """FHIR interactions on behalf of one user, for one page."""

    engine: FhirEngine
    principal: Principal
    client: str | None
    base_url: str
    # A read-only transaction shared by the page's reads (see ``reading``).
    tx: Transaction | None = None

    @contextmanager
    def reading(self) -> Iterator[Gateway]:
        """This gateway with the page's reads in one read-only transaction.

        Each read is still its own interaction — matched, authorised and audited by the
        engine (``dispatch``), refused ones recorded as failures — but the page opens one
        transaction and its audit entries are written together: a page of seven sections
        costs one audit write instead of seven. Pseudonymised callers keep ``handle``, the
        only place that pseudonymises.
        """
        if self.tx is not None or sees_pseudonyms(self.principal):
            yield self
            return
        opening = FhirRequest("GET", ("metadata",), principal=self.principal, client=self.client)
        with self.engine.begin(opening, readonly=True) as tx:
            yield replace(self, tx=tx)

    def _dispatch(self, request: FhirRequest, tx: Transaction) -> FhirResponse:
        try:
            response = self.engine.dispatch(request, tx)
        except ParcoursError as error:
            self.engine.record_rejected(request, error)
            return error_response(error)
        production = self.engine.ctx.settings.production
        response.body = outgoing(response.body, allow_test_ins=not production)
        return response

    def _run(
        self,
        method: str,
        path: tuple[str, ...],
        query: Iterable[tuple[str, str]] = (),
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> FhirResponse:
        request = FhirRequest(
            method,
            path,
            tuple(query),
            dict(headers or {}),
            body,
            self.base_url,
            self.principal,
            self.client,
        )
        if self.tx is not None and method == "GET":
            response = self._dispatch(request, self.tx)
        else:
            response = self.engine.handle(request)
        if response.status >= 400:
            raise UiError(response.status, _diagnostics(response.body))
        return response

    def read(self, res_type: str, res_id: str) -> Resource:
        body = self._run("GET", (res_type, res_id)).body
        assert body is not None
        return body

    def search(self, res_type: str, params: Iterable[tuple[str, str]]) -> list[Resource]:
        """The ``match`` entries of a search (``include`` entries with :meth:`search_bundle`)."""
        return [
            entry["resource"]
            for entry in self.search_bundle(res_type, params).get("entry") or []
            if entry.get("search", {}).get("mode", "match") == "match"
        ]

    def search_bundle(self, res_type: str, params: Iterable[tuple[str, str]]) -> Resource:
        body = self._run("GET", (res_type,), params).body
        assert body is not None
        return body

    def create(self, resource: Resource) -> Resource:
        body = self._run("POST", (str(resource["resourceType"]),), body=resource).body
        assert body is not None
        return body

    def update(self, resource: Resource, if_match: str | None = None) -> Resource:
        headers = {"if-match": if_match} if if_match else None
        path = (str(resource["resourceType"]), str(resource["id"]))
        body = self._run("PUT", path, body=resource, headers=headers).body
        assert body is not None
        return body

    def operation(
        self, path: tuple[str, ...], parameters: list[dict[str, Any]] | None = None
    ) -> Resource:
        """``POST`` an operation with a ``Parameters`` body, or ``GET`` it when none is given."""
        if parameters is None:
            body = self._run("GET", path).body
        else:
            payload = {"resourceType": "Parameters", "parameter": parameters}
            body = self._run("POST", path, body=payload).body
        return body or {}
