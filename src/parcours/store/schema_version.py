"""Schema migrations (Alembic): upgrade, and the check that ``serve`` does before starting."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

__all__ = ["SchemaBehind", "current_revision", "ensure_schema", "head_revision", "upgrade"]

_MIGRATIONS = Path(__file__).with_name("migrations")


class SchemaBehind(RuntimeError):
    """The database exists but its schema is older than this version of Parcours."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the package ships no migration"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def ensure_schema(engine: Engine) -> bool:
    """Create the schema in an empty database; refuse one whose schema is behind.

    Returns True when the schema was just created (an empty database).
    """
    current = current_revision(engine)
    if current is None:
        if inspect(engine).has_table("resource"):
            raise SchemaBehind(
                "the database has Parcours tables but no migration record; "
                "restore it from a backup or point PARCOURS_DATABASE_URL at an empty database"
            )
        upgrade(engine)
        return True
    head = head_revision()
    if current != head:
        raise SchemaBehind(
            f"the database schema is at revision {current}, this version needs {head}: "
            "run `parcours db upgrade` (after a backup), then start again"
        )
    return False
