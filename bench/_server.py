"""Run ``parcours serve`` as a real process for a benchmark, on a free local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    database_url: str,
    token: str,
    *,
    mllp_port: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Start the platform on ``database_url``; yield its base URL; stop it at the end."""
    port = free_port()
    env = {
        **os.environ,
        "PARCOURS_DATABASE_URL": database_url,
        "PARCOURS_ADMIN_TOKEN": token,
        "PARCOURS_BASE_URL": f"http://127.0.0.1:{port}",
        "PARCOURS_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    cmd = [sys.executable, "-m", "parcours.cli", "serve", "--port", str(port)]
    if mllp_port is not None:
        cmd += ["--mllp-port", str(mllp_port)]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start (exit {proc.poll()})")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
