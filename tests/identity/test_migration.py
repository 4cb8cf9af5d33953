"""Migration 0003 (identity tables) goes up, down and up again on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

import parcours.store.schema_version as schema_version
from parcours.store import make_engine
from parcours.store.schema_version import current_revision, upgrade

TABLES = {"identity_block", "identity_record", "identity_candidate", "identity_merge"}


def _downgrade(engine: Engine, revision: str) -> None:
    config = Config()
    migrations = Path(schema_version.__file__).with_name("migrations")
    config.set_main_option("script_location", str(migrations))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_0003_upgrade_downgrade_upgrade(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES
        _downgrade(engine, "0002")
        assert current_revision(engine) == "0002"
        assert not TABLES & set(inspect(engine).get_table_names())
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES
        indexes = {i["name"] for i in inspect(engine).get_indexes("identity_candidate")}
        assert "ux_identity_candidate_pair" in indexes
    finally:
        engine.dispose()
