"""Process entry points: the server (``parcours serve``) and an outbox worker."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

import uvicorn

from parcours.config import Settings
from parcours.ops import configure_logging
from parcours.platform import Platform, build_platform
from parcours.store.outbox import Dispatcher, run_worker
from parcours.store.schema_version import SchemaBehind, ensure_schema

if TYPE_CHECKING:
    from parcours.hl7v2 import Hl7Settings

__all__ = ["listen_mllp", "run_outbox_worker", "serve"]

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
    # The shipped reference data, new versions included (idempotent; decision D21).
    from parcours.reference_data import load_reference_data

    load_reference_data(platform.store)
    from parcours.store.maintenance import refresh_statistics

    refresh_statistics(platform.store)
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

    mllp = MllpServer(platform.store, host=host, port=mllp_port, settings=_hl7_settings(platform))
    await mllp.start()
    log.info("MLLP listener on %s:%d", host, mllp_port)
    try:
        await server.serve()
    finally:
        await mllp.stop()


def _hl7_settings(platform: Platform) -> Hl7Settings:
    from parcours.hl7v2 import Hl7Settings

    return Hl7Settings.from_env(os.environ, production=platform.settings.production)


def listen_mllp(settings: Settings, *, host: str, port: int) -> int:
    """``parcours hl7 listen``: the MLLP listener alone, until SIGINT or SIGTERM."""
    configure_logging(settings)
    platform = _ready_platform(settings)
    if platform is None:
        return 2
    from parcours.hl7v2 import MllpServer

    async def run() -> None:
        mllp = MllpServer(platform.store, host=host, port=port, settings=_hl7_settings(platform))
        await mllp.start()
        log.info("MLLP listener on %s:%d", host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await mllp.stop()

    try:
        asyncio.run(run())
    finally:
        platform.close()
    return 0


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
