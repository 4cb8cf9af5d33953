"""A real ``parcours serve`` with the demo region, and Debian's chromium driven by Playwright.

The browser is ``/usr/bin/chromium`` (``.ci/run`` installs the Debian package); Playwright never
downloads one. Locally, without it, the browser tests are skipped; under CI they fail.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The platform-as-processes helpers of the end-to-end suite.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from browsing import TOKEN, Server
from processes import free_port, serving

from parcours.config import Settings
from parcours.demo import load_demo
from parcours.platform import build_platform
from parcours.store.schema_version import ensure_schema
from parcours.web import ensure_demo_accounts

CHROMIUM = os.environ.get("PARCOURS_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
# Enough patients for the demo GP to have a few; the region keeps its shape at any size.
DEMO_PATIENTS = 120


@pytest.fixture(scope="module")
def server(module_database_url: str) -> Iterator[Server]:
    port, mllp_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(database_url=module_database_url, admin_token=TOKEN, base_url=base)
    platform = build_platform(settings)
    ensure_schema(platform.store.engine)
    load_demo(platform.store, patients=DEMO_PATIENTS)
    ensure_demo_accounts(platform.store, settings)
    env = {
        **os.environ,
        "PARCOURS_DATABASE_URL": module_database_url,
        "PARCOURS_ADMIN_TOKEN": TOKEN,
        "PARCOURS_BASE_URL": base,
        "PARCOURS_LOG_LEVEL": "WARNING",
    }
    try:
        with serving(env, port, mllp_port) as url:
            yield Server(url, mllp_port, platform, module_database_url)
    finally:
        platform.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            launched.close()
