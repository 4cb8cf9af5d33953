"""The command line: schema migrations, the refusal to serve a database that is behind, demo
loading, and settings errors that name the variable."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from parcours.cli import main
from parcours.config import ConfigError, load_settings
from parcours.store.engine import normalise_url
from parcours.store.schema_version import current_revision, head_revision, upgrade


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PARCOURS_DATABASE_URL", database_url)
    monkeypatch.setenv("PARCOURS_LOG_JSON", "false")
    return database_url


def test_db_upgrade_then_current(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "current"]) == 0
    assert f"current: {head_revision()}; head: {head_revision()}" in capsys.readouterr().out


def test_serve_refuses_a_database_whose_schema_is_behind(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = create_engine(normalise_url(env))
    try:
        upgrade(engine, "0001")
        assert current_revision(engine) == "0001" != head_revision()
    finally:
        engine.dispose()
    assert main(["serve", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "revision 0001" in err and "parcours db upgrade" in err


def test_demo_loads_once(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--patients", "20"]) == 0
    assert "demo loaded" in capsys.readouterr().out
    assert main(["demo", "--patients", "20"]) == 1
    assert "already" in capsys.readouterr().err
    assert main(["demo", "--if-empty"]) == 0
    assert "nothing loaded" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PARCOURS_DATABASE_URL", "mysql://x", "PARCOURS_DATABASE_URL"),
        ("PARCOURS_ADMIN_TOKEN", "short", "at least 16"),
        ("PARCOURS_PRODUCTION", "maybe", "PARCOURS_PRODUCTION='maybe'"),
        ("PARCOURS_PAGE_SIZE_MAX", "0", "at least 1"),
        ("PARCOURS_LOG_LEVEL", "LOUD", "PARCOURS_LOG_LEVEL"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings({name: value})


def test_admin_token_unset_means_no_token() -> None:
    assert load_settings({}).admin_token is None
    assert load_settings({"PARCOURS_ADMIN_TOKEN": ""}).admin_token is None
