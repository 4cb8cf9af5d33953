"""What the audit trail must hold for the requests a test server received (test-side oracle).

The recorder is an ASGI wrapper around the test app: it sees each request as the client sent
it and the status it got, independently of the server's own bookkeeping. From that alone, the
oracle says which AuditEvents must exist: one per authenticated request (interaction from the
method and the URL's shape, outcome from the status), one per entry of a batch or of a
successful transaction Bundle, none for the CapabilityStatement or an unauthenticated call.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import Engine, select

from parcours.audit.tables import audit_event

__all__ = ["Recorder", "expected_events", "recorded_events"]


@dataclass(frozen=True)
class Seen:
    method: str
    path: tuple[str, ...]
    query: tuple[tuple[str, str], ...]
    authorised: bool
    status: int
    body: Any  # the request body of a Bundle POSTed to the base, else None
    response: Any  # the response body of a Bundle POSTed to the base, else None


class Recorder:
    """ASGI wrapper recording every FHIR request and its status."""

    def __init__(self, app: Any, prefix: str = "/fhir") -> None:
        self.app = app
        self.prefix = prefix
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        segments = tuple(s for s in path[len(self.prefix) :].split("/") if s)
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        bundle_post = scope["method"] == "POST" and not segments
        chunks: list[bytes] = []
        out: list[bytes] = []
        status = 0

        async def receive_and_keep() -> Any:
            message = await receive()
            if bundle_post and message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        def keep() -> None:
            query = tuple(parse_qsl(scope.get("query_string", b"").decode("latin-1"), True))
            seen = Seen(
                scope["method"],
                segments,
                query,
                "authorization" in headers,
                status,
                _json(b"".join(chunks)) if bundle_post else None,
                _json(b"".join(out)) if bundle_post else None,
            )
            with self._lock:
                self.seen.append(seen)

        async def send_and_keep(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                if bundle_post:
                    out.append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Recorded before the client can see the end of the answer.
                    keep()
            await send(message)

        await self.app(scope, receive_and_keep, send_and_keep)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _outcome(status: int) -> int:
    return 0 if status < 400 else 4 if status < 500 else 8


def interaction(method: str, path: tuple[str, ...], types: frozenset[str]) -> str:
    """The FHIR restful interaction a request is, from its method and URL shape only."""
    method = "GET" if method == "HEAD" else method
    n = len(path)
    if n == 0 or path[0] not in types:
        return "history-system" if (method, path) == ("GET", ("_history",)) else "operation"
    if path[0] == "Patient" and n == 2 and path[1] in ("$merge", "$unmerge") and method == "POST":
        return "merge"
    if n == 3 and path[2] == "$break-glass" and path[0] == "Patient" and method == "POST":
        return "break-glass"
    shapes = {
        ("GET", 1): "search-type",
        ("POST", 1): "create",
        ("PUT", 1): "update",
        ("DELETE", 1): "delete",
        # POST Type/id: tolerated in Bundle entries (ANS examples) as a create.
        ("POST", 2): "create",
        ("PUT", 2): "update",
        ("PATCH", 2): "patch",
        ("DELETE", 2): "delete",
    }
    if n == 2 and path[1] == "_search" and method == "POST":
        return "search-type"
    if n == 2 and path[1] == "_history" and method == "GET":
        return "history-type"
    if n == 2 and path[1].startswith("$") and method != "GET":
        return "operation"
    if n == 2 and method == "GET":
        return "read"
    if n == 3 and path[2] == "_history" and method == "GET":
        return "history-instance"
    if n == 4 and path[2] == "_history" and method == "GET":
        return "vread"
    if n >= 3:
        return "operation"
    return shapes.get((method, n), "operation")


def _entry_path(url: str) -> tuple[str, ...]:
    tail = url.split("/fhir/", 1)[-1].split("?", 1)[0]
    return tuple(s for s in tail.split("/") if s)


def expected_events(seen: list[Seen], types: frozenset[str]) -> Counter[tuple[str, int]]:
    want: Counter[tuple[str, int]] = Counter()
    for s in seen:
        if not s.authorised or s.status == 401:
            continue
        if s.method in ("GET", "HEAD") and s.path == ("metadata",):
            continue
        kind = s.body.get("type") if isinstance(s.body, dict) else None
        if s.method == "POST" and not s.path and kind in ("batch", "transaction"):
            entries = s.body.get("entry") or []
            answers = (s.response or {}).get("entry") or []
            if s.status < 400 and len(answers) == len(entries):
                for entry, answer in zip(entries, answers, strict=True):
                    request = entry.get("request") or {}
                    status = int(str(answer.get("response", {}).get("status", "500"))[:3])
                    path = _entry_path(str(request.get("url", "")))
                    want[
                        (interaction(str(request.get("method")), path, types), _outcome(status))
                    ] += 1
                continue
            want[(kind if kind == "batch" else "transaction", _outcome(s.status))] += 1
            continue
        if s.method == "POST" and not s.path:
            want[("transaction", _outcome(s.status))] += 1
            continue
        want[(interaction(s.method, s.path, types), _outcome(s.status))] += 1
    return want


def recorded_events(engine: Engine, after_seq: int) -> Counter[tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_event.c.interaction, audit_event.c.outcome, audit_event.c.agent).where(
                audit_event.c.seq > after_seq
            )
        ).all()
    # The platform's own work (agent "platform") is not a request.
    return Counter((r.interaction, int(r.outcome)) for r in rows if r.agent != "platform")


def last_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        value = conn.execute(select(audit_event.c.seq).order_by(audit_event.c.seq.desc())).first()
    return int(value[0]) if value else 0
