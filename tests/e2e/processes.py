"""The platform as real processes: free ports, `parcours serve` until it answers, MLLP sends."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from parcours.demo.hospital import send_mllp

__all__ = ["ack_code", "free_port", "serving"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ack_code(mllp_port: int, message: str) -> str:
    """Send one message to the listener; the MSA-1 code of its ACK."""
    ack = send_mllp("127.0.0.1", mllp_port, message)
    msa = next(s for s in ack.split("\r") if s.startswith("MSA|"))
    return msa.split("|")[1]


@contextmanager
def serving(env: dict[str, str], port: int, mllp_port: int | None = None) -> Iterator[str]:
    """`parcours serve` on ``port`` (and MLLP), yielded once /healthz answers; SIGTERM after."""
    command = [sys.executable, "-m", "parcours.cli", "serve", "--port", str(port)]
    if mllp_port is not None:
        command += ["--mllp-port", str(mllp_port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "the platform did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
