"""Baseline MLLP listener for ``bench/hl7_bench.py``: the ``hl7`` package's asyncio server.

It parses every message with ``hl7.parse`` and answers ``message.create_ack()`` (AA), storing
nothing: the floor a Python MLLP listener costs on this machine. Run as its own process, like
the platform, so the benchmark client does not share its event loop:

    .venv/bin/python -m bench._hl7_baseline --port 2576
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

import hl7.mllp


async def _handle(reader: Any, writer: Any) -> None:
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            writer.writemessage(message.create_ack())
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(host: str, port: int) -> None:
    server = await hl7.mllp.start_hl7_server(
        _handle, host=host, port=port, encoding="utf-8", limit=4 * 1024 * 1024
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
