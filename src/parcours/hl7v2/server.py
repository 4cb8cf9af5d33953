"""Asyncio MLLP listener: many connections, one ACK per message, on the same connection.

Each connection reads whatever arrives, cuts frames with ``FrameDecoder`` and hands every
frame, one after the other, to ``Receiver.handle_frame`` in a worker thread (the store is
synchronous SQLAlchemy); the ACK is written only once the receiver returns, i.e. after the
commit. Connections are independent, so many senders are served at once; within one
connection messages are processed in the order they arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from parcours.hl7v2.framing import FrameDecoder, frame
from parcours.hl7v2.receiver import Hl7Observer, Receiver
from parcours.hl7v2.resolver import IdentityService
from parcours.hl7v2.settings import Hl7Settings
from parcours.store.repository import Store

__all__ = ["MllpServer", "serve_mllp"]

log = logging.getLogger("parcours.hl7v2")
_READ_SIZE = 64 * 1024


def _store_of(target: Any) -> Store:
    """Accept a ``Store`` or anything with a ``.store`` (the ``Platform``)."""
    if isinstance(target, Store):
        return target
    store = getattr(target, "store", None)
    if isinstance(store, Store):
        return store
    raise TypeError("serve_mllp needs a Store or a Platform (an object with .store)")


class MllpServer:
    """``await start()`` binds (port 0 picks a free port, see ``.port``); ``await stop()``."""

    def __init__(
        self,
        target: Any,
        host: str = "127.0.0.1",
        port: int = 2575,
        *,
        settings: Hl7Settings | None = None,
        ssl_context: ssl.SSLContext | None = None,
        identity: IdentityService | None = None,
        observers: Sequence[Hl7Observer] = (),
        workers: int = 8,
    ) -> None:
        self.settings = settings or Hl7Settings.from_env(os.environ)
        self.receiver = Receiver(
            _store_of(target), self.settings, identity=identity, observers=observers
        )
        self.host = host
        self.requested_port = port
        self.ssl_context = ssl_context if ssl_context is not None else self.settings.ssl_context()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hl7-apply")
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.requested_port, ssl=self.ssl_context
        )
        log.info(
            "hl7: MLLP listening on %s:%s (tls=%s)", self.host, self.port, bool(self.ssl_context)
        )

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        self._executor.shutdown(wait=True)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else None
        decoder = FrameDecoder(self.settings.max_message_bytes)
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    data = await asyncio.wait_for(
                        reader.read(_READ_SIZE), self.settings.idle_timeout_seconds or None
                    )
                except TimeoutError:
                    log.info("hl7: closing idle connection from %s", peer)
                    break
                if not data:
                    break
                for fr in decoder.feed(data):
                    # The ACK goes out only after the receiver has committed.
                    responses = await loop.run_in_executor(
                        self._executor, self.receiver.handle_frame, fr, peer
                    )
                    for response in responses:
                        writer.write(frame(response))
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
            log.info("hl7: connection from %s ended: %s", peer, type(exc).__name__)
        finally:
            if decoder.pending:
                # Never acknowledged: the sender still owns it and will resend.
                log.warning("hl7: connection from %s closed in the middle of a frame", peer)
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def serve_mllp(
    target: Any,
    host: str = "0.0.0.0",
    port: int = 2575,
    *,
    settings: Hl7Settings | None = None,
    ssl_context: ssl.SSLContext | None = None,
    identity: IdentityService | None = None,
) -> None:
    """Run the listener until cancelled (``parcours serve --mllp-port``)."""
    server = MllpServer(
        target, host, port, settings=settings, ssl_context=ssl_context, identity=identity
    )
    await server.start()
    try:
        await server.serve_forever()
    finally:
        await server.stop()
