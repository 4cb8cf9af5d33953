"""HTTP routes of the in-app inbox: the list, read marks, and a Server-Sent Events stream.

Authentication as everywhere else: a bearer token or the web session cookie, through the
platform's ``Authenticator``. The inbox only ever shows what was addressed to the caller
(their Practitioner or their Organizations): the manager addressed it because the caller
belongs to the patient's care circle, and an item carries the short payload text and a
patient reference, never identity data.

``GET /notify/stream`` pushes each newly delivered item (``event: notification``, ``id`` = the
delivery seq, so a reconnecting ``EventSource`` resumes with ``Last-Event-ID``). It wakes on
this process's deliveries at once and polls the database every ``poll_seconds`` for those of
other processes; a comment line every ``heartbeat_seconds`` keeps proxies from closing an idle
connection and lets the server notice a client that left.
"""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from parcours.auth import SESSION_COOKIE
from parcours.errors import Unauthenticated
from parcours.notify.delivery.handler import DeliveryHandler
from parcours.notify.delivery.inbox import (
    InboxSignal,
    inbox_items,
    inbox_targets,
    latest_seq,
    mark_all_read,
    mark_read,
    unread_count,
)
from parcours.notify.delivery.sse import inbox_event_stream
from parcours.platform import Platform
from parcours.security.principal import Principal

__all__ = ["inbox_routes"]

_NO_STORE = {"Cache-Control": "no-store"}


def _outcome(status: int, code: str, message: str) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}],
    }
    return JSONResponse(body, status, headers=_NO_STORE, media_type="application/fhir+json")


def inbox_routes(
    platform: Platform,
    *,
    signal: InboxSignal | None = None,
    poll_seconds: float = 0.5,
    heartbeat_seconds: float = 15.0,
) -> list[Route]:
    """The ``/notify`` routes; ``signal`` defaults to the one of the platform's delivery
    handler, so deliveries made by this process's dispatcher wake the streams at once."""
    if signal is None:
        handler = next((h for h in platform.handlers if isinstance(h, DeliveryHandler)), None)
        signal = handler.signal if handler is not None else InboxSignal()
    store = platform.store
    auth = platform.authenticator

    def principal_of(request: Request) -> Principal:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if "authorization" in headers:
            return auth.authenticate(headers)
        return auth.session_principal(request.cookies.get(SESSION_COOKIE, ""))

    def targets_of(principal: Principal) -> list[str]:
        with store.begin(readonly=True) as tx:
            return inbox_targets(tx, principal)

    async def caller(request: Request) -> Principal:
        return await asyncio.to_thread(principal_of, request)

    async def inbox(request: Request) -> Response:
        try:
            principal = await caller(request)
        except Unauthenticated as exc:
            return _outcome(401, "login", exc.message)
        try:
            limit = min(max(int(request.query_params.get("limit", "50")), 1), 200)
        except ValueError:
            return _outcome(400, "invalid", "limit must be an integer")

        def read() -> dict[str, object]:
            with store.begin(readonly=True) as tx:
                targets = inbox_targets(tx, principal)
                items = inbox_items(tx, targets, principal.subject, limit=limit)
                unread = unread_count(tx, targets, principal.subject)
            return {"unread": unread, "items": [i.as_json() for i in items]}

        return JSONResponse(await asyncio.to_thread(read), headers=_NO_STORE)

    async def read_one(request: Request) -> Response:
        try:
            principal = await caller(request)
        except Unauthenticated as exc:
            return _outcome(401, "login", exc.message)
        notification_id = request.path_params["id"]

        def write() -> bool:
            with store.begin() as tx:
                targets = inbox_targets(tx, principal)
                return mark_read(tx, targets, principal.subject, notification_id)

        if not await asyncio.to_thread(write):
            return _outcome(404, "not-found", f"{notification_id[:64]} is not in your inbox")
        return Response(status_code=204)

    async def read_all(request: Request) -> Response:
        try:
            principal = await caller(request)
        except Unauthenticated as exc:
            return _outcome(401, "login", exc.message)

        def write() -> int:
            with store.begin() as tx:
                return mark_all_read(tx, inbox_targets(tx, principal), principal.subject)

        return JSONResponse({"marked": await asyncio.to_thread(write)}, headers=_NO_STORE)

    async def stream(request: Request) -> Response:
        try:
            principal = await caller(request)
        except Unauthenticated as exc:
            return _outcome(401, "login", exc.message)
        targets = await asyncio.to_thread(targets_of, principal)
        resume = request.headers.get("last-event-id") or request.query_params.get("after")

        def start() -> int:
            if resume is not None and resume.isdigit():
                return int(resume)
            with store.begin(readonly=True) as tx:
                return latest_seq(tx, targets)

        cursor = await asyncio.to_thread(start)

        def fetch(after: int) -> list[tuple[int, str]]:
            with store.begin(readonly=True) as tx:
                items = inbox_items(
                    tx, targets, principal.subject, after_seq=after, limit=100, newest_first=False
                )
            return [(i.seq, json.dumps(i.as_json(), ensure_ascii=False)) for i in items]

        return inbox_event_stream(
            request,
            signal,
            cursor,
            fetch,
            poll_seconds=poll_seconds,
            heartbeat_seconds=heartbeat_seconds,
        )

    return [
        Route("/notify/inbox", inbox, methods=["GET"]),
        Route("/notify/inbox/read-all", read_all, methods=["POST"]),
        Route("/notify/inbox/{id}/read", read_one, methods=["POST"]),
        Route("/notify/stream", stream, methods=["GET"]),
    ]
