"""Run ``parcours serve`` as a real process for a benchmark, on a free local port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get(
    "PARCOURS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


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


def scratch_database(kind: str, workdir: Path, prefix: str) -> tuple[str, Callable[[], None]]:
    """A fresh database for one benchmark run (a SQLite file, or a PostgreSQL schema) and the
    function that removes it."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    if kind == "sqlite":
        path = workdir / f"{name}.db"

        def unlink() -> None:
            for p in workdir.glob(path.name + "*"):
                p.unlink(missing_ok=True)

        return f"sqlite:///{path}", unlink
    admin = create_engine(PG_ADMIN)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()

    return f"{PG_ADMIN}?options=-csearch_path%3D{name}", drop
