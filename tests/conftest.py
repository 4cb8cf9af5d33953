"""Shared fixtures: a real database of each kind, and the external corpus.

``database_url`` is parametrised over SQLite (a file in a temporary directory) and PostgreSQL
(a fresh schema on the server of ``PARCOURS_TEST_PG_URL``, default postgres@127.0.0.1/test).
Outside CI an unreachable PostgreSQL skips its half with a message; under ``CI=true`` it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from databases import IN_CI, empty_database
from fhir_server import LIVE
from parcours.config import Settings
from parcours.platform import Platform, build_platform
from parcours.store.schema_version import ensure_schema

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema yet) of each kind."""
    yield from empty_database(request.param, tmp_path / "parcours.db")


@pytest.fixture
def platform(database_url: str) -> Iterator[Platform]:
    """A platform on an empty ``database_url``, migrated (modules may define their own)."""
    platform = build_platform(Settings(database_url=database_url))
    ensure_schema(platform.store.engine)
    yield platform
    platform.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``database_url`` shared by a whole test module (a server per module, read-only tests)."""
    yield from empty_database(request.param, tmp_path_factory.mktemp("module") / "parcours.db")


def corpus_dir() -> Path:
    """The shared corpus of ANS / Interop'Santé examples; skip or fail (CI) when absent."""
    configured = os.environ.get("PARCOURS_CORPUS")
    path = Path(configured) if configured else REPO.parent / "shared" / "corpus"
    if not path.is_dir():
        message = f"corpus folder not found at {path} (set PARCOURS_CORPUS)"
        if IN_CI:
            pytest.fail(message + " (CI=true: the corpus is required)")
        pytest.skip(message)
    return path


@pytest.fixture
def corpus() -> Path:
    return corpus_dir()


@pytest.fixture(autouse=True)
def audit_trail_matches_requests() -> Iterator[None]:
    """Every request a test makes to a FHIR server of tests/fhir_server.py leaves exactly the
    expected AuditEvents (issue 5)."""
    marks = [(server, server.audit_mark()) for server in LIVE]
    yield
    for server, (from_request, after_seq) in marks:
        if server in LIVE:
            server.check_audit(from_request, after_seq)


@pytest.fixture(autouse=True)
def _no_log_handler_left_on_a_captured_stream() -> Iterator[None]:
    """A CLI run in-process installs its log handler on the test's captured stderr; remove it
    afterwards so that later servers do not write to a closed stream."""
    import logging

    from parcours.ops._logging import _HANDLER_NAME

    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.name == _HANDLER_NAME]:
        root.removeHandler(handler)
