"""Process entry points: the server (``parcours serve``) and an outbox worker."""

from __future__ import annotations

import asyncio
import logging
import sys

import uvicorn

from parcours.config import Settings
from parcours.ops import configure_logging
from parcours.platform import Platform, build_platform
from parcours.store.outbox import Dispatcher, run_worker
from parcours.store.schema_version import SchemaBehind, ensure_schema

__all__ = ["run_outbox_worker", "serve"]

log = logging.getLogger("parcours.serve")


def _ready_platform(settings: Settings) -> Platform | None:
    platform = build_platform(settings)
    try:
        if ensure_schema(platform.store.engine):
            log.info("empty database: schema created")
    except SchemaBehind as exc:
        print(f"parcours: {exc}", file=sys.stderr)
        platform.close()
        return None
    platform.load_custom_search_parameters()
    return platform


def serve(settings: Settings, *, host: str, port: int, mllp_port: int | None) -> int:
    """Serve until interrupted. Never loads demo data (that is ``parcours demo``)."""
    configure_logging(settings)
    platform = _ready_platform(settings)
    if platform is None:
        return 2
    from parcours.app import create_app

    app = create_app(platform)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    try:
        asyncio.run(_serve_all(platform, server, mllp_port, host))
    finally:
        platform.close()
    return 0


async def _serve_all(
    platform: Platform, server: uvicorn.Server, mllp_port: int | None, host: str
) -> None:
    if mllp_port is None:
        await server.serve()
        return
    from parcours.hl7v2 import MllpServer

    mllp = MllpServer(platform.store, host=host, port=mllp_port)
    await mllp.start()
    log.info("MLLP listener on %s:%d", host, mllp_port)
    try:
        await server.serve()
    finally:
        await mllp.stop()


def run_outbox_worker(settings: Settings, *, once: bool) -> int:
    configure_logging(settings)
    platform = _ready_platform(settings)
    if platform is None:
        return 2
    try:
        dispatcher = Dispatcher(platform.store, platform.handlers)
        return run_worker(dispatcher, poll_seconds=settings.outbox_poll_seconds, once=once)
    finally:
        platform.close()
