"""The notifications inbox page, its read marks, and its live stream of HTML fragments.

The stream is the inbox's own Server-Sent Events loop (``parcours.notify.delivery.sse``, as
``/notify/stream``) but sends each new item already rendered as the page's list item, for htmx's SSE
extension to insert (``sse-swap="notification"``): no client-side templating.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from parcours.auth import SESSION_COOKIE
from parcours.errors import Unauthenticated
from parcours.notify.delivery.inbox import InboxSignal, inbox_items, inbox_targets, latest_seq
from parcours.notify.delivery.sse import inbox_event_stream
from parcours.web.rendering import render, templates
from parcours.web.session import View, WebContext
from parcours.web.workspace import mark_inbox_read, my_inbox

__all__ = ["inbox_page", "inbox_read", "inbox_stream"]


def inbox_page(view: View) -> Response:
    inbox = my_inbox(view.web.engine.ctx.store, view.user, limit=100)
    return render(
        view.request,
        "inbox.html",
        {"title": "Mes notifications", "active": "notifications", "inbox": inbox},
    )


def inbox_read(view: View) -> Response:
    which = view.field("notification") or None
    mark_inbox_read(view.web.engine.ctx.store, view.user, which)
    return RedirectResponse(str(view.request.app.url_path_for("notifications")), 303)


def inbox_stream(
    web: WebContext, signal: InboxSignal, poll_seconds: float = 0.5, heartbeat: float = 15.0
) -> Callable[[Request], Awaitable[Response]]:
    """The SSE endpoint; ``signal`` wakes it at each delivery made by this process."""
    store = web.engine.ctx.store

    async def stream(request: Request) -> Response:
        try:
            user = await run_in_threadpool(
                web.auth.session_principal, request.cookies.get(SESSION_COOKIE, "")
            )
        except Unauthenticated:
            return Response(status_code=401)

        def start() -> tuple[list[str], int]:
            with store.begin(readonly=True) as tx:
                targets = inbox_targets(tx, user)
                return targets, latest_seq(tx, targets)

        targets, cursor = await run_in_threadpool(start)
        resume = request.headers.get("last-event-id")
        if resume and resume.isdigit():
            cursor = int(resume)
        item_template = templates.get_template("notification_item.html")

        def fetch(after: int) -> list[tuple[int, str]]:
            with store.begin(readonly=True) as tx:
                items = inbox_items(
                    tx, targets, user.subject, after_seq=after, limit=50, newest_first=False
                )

            def url(route: str, **params: str) -> str:
                return str(request.app.url_path_for(route, **params))

            return [
                (i.seq, item_template.render(item=i, url=url).replace("\n", " ")) for i in items
            ]

        return inbox_event_stream(
            request,
            signal,
            cursor,
            fetch,
            poll_seconds=poll_seconds,
            heartbeat_seconds=heartbeat,
        )

    return stream
