"""The inbox's Server-Sent Events loop, shared by ``/notify/stream`` (JSON items) and the
workspace's live inbox (HTML fragments): each says only how an item is written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import suppress

from starlette.requests import Request
from starlette.responses import StreamingResponse

from parcours.notify.delivery.inbox import InboxSignal

__all__ = ["inbox_event_stream"]


def inbox_event_stream(
    request: Request,
    signal: InboxSignal,
    cursor: int,
    fetch: Callable[[int], list[tuple[int, str]]],
    *,
    poll_seconds: float,
    heartbeat_seconds: float,
) -> StreamingResponse:
    """Push ``fetch(after)``'s (seq, data) items after ``cursor`` as ``notification`` events.

    It wakes on this process's deliveries (``signal``) at once and polls every
    ``poll_seconds`` for those of other processes; a comment every ``heartbeat_seconds``
    keeps proxies from closing an idle connection and notices a client that left.
    """

    async def events() -> AsyncIterator[str]:
        after = cursor
        loop = asyncio.get_running_loop()
        # The browser's EventSource reconnects after this many ms if the stream drops.
        yield "retry: 3000\n\n"
        last_sent = loop.time()
        with signal.listen() as woken:
            while not await request.is_disconnected():
                woken.clear()
                for seq, data in await asyncio.to_thread(fetch, after):
                    after = seq
                    yield f"id: {seq}\nevent: notification\ndata: {data}\n\n"
                    last_sent = loop.time()
                if loop.time() - last_sent >= heartbeat_seconds:
                    yield ": ping\n\n"
                    last_sent = loop.time()
                with suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), timeout=poll_seconds)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
