"""Planner statistics: SQLite has none until asked, and plans searches badly without them."""

from __future__ import annotations

from sqlalchemy import text

from parcours.platform import Platform
from parcours.store.maintenance import refresh_statistics


def _analysed_tables(platform: Platform) -> set[str]:
    store = platform.store
    with store.engine.connect() as conn:
        if store.dialect.is_postgres:
            rows = conn.execute(
                text(
                    "SELECT relname FROM pg_stat_user_tables "
                    "WHERE schemaname = current_schema() AND last_analyze IS NOT NULL"
                )
            )
        else:
            rows = conn.execute(text("SELECT DISTINCT tbl FROM sqlite_stat1"))
        return {row[0] for row in rows}


def test_statistics_are_refreshed(platform: Platform) -> None:
    for n in range(30):
        platform.store.update(
            {"resourceType": "Patient", "id": f"p{n}", "name": [{"family": f"Nom{n}"}]}
        )
    refresh_statistics(platform.store, after_import=True)
    assert {"resource", "idx_string", "idx_token"} <= _analysed_tables(platform)


def test_sqlite_statistics_at_every_start_postgresql_left_to_autovacuum(
    platform: Platform,
) -> None:
    platform.store.update({"resourceType": "Patient", "id": "p1", "name": [{"family": "Nom"}]})
    refresh_statistics(platform.store)
    analysed = _analysed_tables(platform)
    if platform.store.dialect.is_postgres:
        assert analysed == set()
    else:
        assert "resource" in analysed
