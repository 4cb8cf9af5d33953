"""Migration 0005 matches the tables of parcours.auth.tables, goes down and up again; the
application mounts the /auth routes."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

import parcours.store.schema_version as schema_version
from parcours.app import create_app
from parcours.auth import tables
from parcours.platform import Platform
from parcours.store.schema_version import current_revision, upgrade

AUTH_TABLES = [
    tables.auth_signing_key,
    tables.auth_account,
    tables.auth_session,
    tables.auth_client,
    tables.auth_attempt,
    tables.auth_oidc_state,
]


def _downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(schema_version.__file__).with_name("migrations"))
    )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_migration_matches_the_tables(platform: Platform) -> None:
    engine = platform.store.engine
    found = inspect(engine)
    for table in AUTH_TABLES:
        columns = {c["name"]: c for c in found.get_columns(table.name)}
        assert set(columns) == set(table.c.keys()), table.name
        for column in table.c:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
        indexes = {i["name"] for i in found.get_indexes(table.name)}
        assert indexes == {i.name for i in table.indexes}, table.name

    _downgrade(engine, "0004")
    assert current_revision(engine) == "0004"
    assert not any(inspect(engine).has_table(t.name) for t in AUTH_TABLES)
    upgrade(engine, "head")
    assert all(inspect(engine).has_table(t.name) for t in AUTH_TABLES)


def test_app_mounts_auth_routes(platform: Platform) -> None:
    app = create_app(platform, dispatch=False)
    paths = {getattr(route, "path", "") for route in app.routes}
    assert {"/auth/token", "/auth/login", "/auth/oidc/callback", "/auth/jwks.json"} <= paths
