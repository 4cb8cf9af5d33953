"""Shared by the crash tests and their child processes: the tag system, the record table, and
the helpers that start, read and kill a child process."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table

HERE = Path(__file__).resolve().parent

TAG_SYSTEM = "urn:parcours:test:crash-tx"

metadata = MetaData()

# What the recording handler saw, written in the dispatcher's own transaction.
seen = Table(
    "crash_seen",
    metadata,
    Column("n", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("worker", String(32), nullable=False),
)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=HERE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def read_until(
    proc: subprocess.Popen[str], done: Callable[[str], bool], timeout: float = 30.0
) -> list[str]:
    """Lines of the child's stdout up to the first for which ``done`` holds."""
    assert proc.stdout is not None
    lines: list[str] = []
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not selector.select(timeout=0.5):
            continue
        line = proc.stdout.readline()
        if not line:
            stderr = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"child ended early: {stderr[-2000:]}")
        lines.append(line.strip())
        if done(lines[-1]):
            return lines
    raise AssertionError(f"timed out; last lines: {lines[-5:]}")


def kill(proc: subprocess.Popen[str]) -> list[str]:
    """SIGKILL, then whatever the child had already written to stdout."""
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return out.splitlines()
