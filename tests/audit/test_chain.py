"""The chain: appends verify as intact, and every kind of tampering is found at the right
entry (altered content or column, deleted middle or last entry, inserted, reordered or
duplicated entry, a rewritten tail against an anchor), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import itertools
import threading
from typing import Any

import orjson
import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from parcours.audit import AuditTrail
from parcours.audit.tables import GENESIS_HASH, audit_event, audit_head, audit_patient
from parcours.platform import Platform

from .conftest import CLIENT, DOCTOR, HOUR, NURSE, T0, Tamper, entry


def _fill(trail: AuditTrail, n: int = 5) -> None:
    agents = (DOCTOR, NURSE, CLIENT)
    for i in range(n):
        patients = ("p1", "p2") if i == 1 else (f"p{i % 3}",)
        trail.record([entry("read", at=T0 + i * HOUR, agent=agents[i % 3], patients=patients)])


def _row(platform: Platform, seq: int) -> dict[str, Any]:
    with platform.store.engine.connect() as conn:
        row = conn.execute(select(audit_event).where(audit_event.c.seq == seq)).one()
    return dict(row._mapping)


def _forge_hash(row: dict[str, Any]) -> str:
    """What an intruder who read the source would compute for a forged row."""
    columns = (
        "recorded",
        "action",
        "interaction",
        "outcome",
        "agent",
        "practitioner",
        "patient_id",
        "purpose",
        "source_address",
    )
    header = orjson.dumps([row["seq"], row["prev_hash"], *(row[c] for c in columns)])
    body = orjson.dumps(row["content"], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(header + b"\n" + body).hexdigest()


def test_appends_chain_and_verify_intact(platform: Platform, trail: AuditTrail) -> None:
    assert trail.verify().ok and trail.verify().checked == 0
    _fill(trail, 5)
    with platform.store.begin() as tx:  # several entries in one caller transaction
        trail.append(tx.conn, [entry("update", at=T0 + 9 * HOUR), entry("delete", at=T0)])
    result = trail.verify(batch=2)  # several batches
    assert result.ok and result.checked == 7 and result.first_broken is None
    with platform.store.engine.connect() as conn:
        rows = conn.execute(select(audit_event).order_by(audit_event.c.seq)).all()
        head = conn.execute(select(audit_head)).one()
        extra = conn.execute(select(audit_patient)).all()
    assert [r.seq for r in rows] == list(range(1, 8))
    assert rows[0].prev_hash == GENESIS_HASH
    assert all(r.prev_hash == p.hash for p, r in itertools.pairwise(rows))
    assert (head.seq, head.hash) == (7, rows[-1].hash) == (result.head_seq, result.head_hash)
    assert [(e.seq, e.patient_id) for e in extra] == [(2, "p2")]
    assert rows[1].patient_id == "p1"


def test_rollback_of_the_caller_leaves_no_entry(platform: Platform, trail: AuditTrail) -> None:
    _fill(trail, 2)
    with pytest.raises(RuntimeError), platform.store.begin() as tx:
        trail.append(tx.conn, [entry("create")])
        raise RuntimeError("the write failed after auditing")
    _fill(trail, 1)
    assert trail.verify().ok and trail.verify().checked == 3


@pytest.mark.parametrize(
    ("sql", "broken", "problem"),
    [
        ("UPDATE audit_event SET content = :content WHERE seq = 3", 3, "hash mismatch"),
        ("UPDATE audit_event SET patient_id = 'p9' WHERE seq = 2", 2, "hash mismatch"),
        ("UPDATE audit_event SET agent = 'account/x' WHERE seq = 4", 4, "hash mismatch"),
        ("UPDATE audit_event SET recorded = recorded + 1 WHERE seq = 1", 1, "hash mismatch"),
        ("UPDATE audit_event SET outcome = 4 WHERE seq = 5", 5, "hash mismatch"),
        ("UPDATE audit_event SET purpose = 'BTG' WHERE seq = 3", 3, "hash mismatch"),
        ("DELETE FROM audit_event WHERE seq = 3", 3, "missing"),
        ("DELETE FROM audit_event WHERE seq = 1", 1, "missing"),
        ("DELETE FROM audit_event WHERE seq = 5", 5, "missing at the end"),
        ("DELETE FROM audit_event WHERE seq >= 4", 4, "missing at the end"),
        ("DELETE FROM audit_patient WHERE seq = 2", 2, "audit_patient"),
        ("INSERT INTO audit_patient (patient_id, seq) VALUES ('p7', 3)", 3, "audit_patient"),
        ("UPDATE audit_head SET seq = 4", 5, "after the head"),
    ],
)
def test_tampering_is_found(
    platform: Platform, trail: AuditTrail, tamper: Tamper, sql: str, broken: int, problem: str
) -> None:
    _fill(trail, 5)
    assert trail.verify().ok
    content = _row(platform, 3)["content"]
    content["outcomeDesc"] = "nothing to see"
    params = {"content": orjson.dumps(content).decode()} if ":content" in sql else {}
    tamper(sql, **params)
    result = trail.verify(batch=2)
    assert not result.ok
    assert result.first_broken == broken, result
    assert problem in result.problem


def test_forged_row_appended_after_the_head_is_found(
    platform: Platform, trail: AuditTrail, tamper: Tamper
) -> None:
    _fill(trail, 5)
    forged = _row(platform, 5)
    forged.update(seq=6, prev_hash=forged["hash"], agent="account/ghost")
    forged["hash"] = _forge_hash(forged)
    tamper(
        "INSERT INTO audit_event (seq, recorded, action, interaction, outcome, agent, "
        "practitioner, patient_id, purpose, source_address, content, prev_hash, hash) VALUES "
        "(:seq, :recorded, :action, :interaction, :outcome, :agent, :practitioner, "
        ":patient_id, :purpose, :source_address, :content, :prev_hash, :hash)",
        **{**forged, "content": orjson.dumps(forged["content"]).decode()},
    )
    result = trail.verify()
    assert (result.ok, result.first_broken) == (False, 6)
    assert "inserted" in result.problem


def test_inserted_row_with_a_gap_is_found(
    platform: Platform, trail: AuditTrail, tamper: Tamper
) -> None:
    _fill(trail, 3)
    tamper(
        "INSERT INTO audit_event (seq, recorded, action, interaction, outcome, agent, content,"
        " prev_hash, hash) VALUES (10, 0, 'R', 'read', 0, 'x', '{}', :h, :h)",
        h=GENESIS_HASH,
    )
    result = trail.verify()
    assert (result.ok, result.first_broken) == (False, 4)
    assert "missing" in result.problem


def test_reordered_entries_are_found(platform: Platform, trail: AuditTrail, tamper: Tamper) -> None:
    _fill(trail, 5)
    tamper("UPDATE audit_event SET seq = 100 WHERE seq = 2")
    tamper("UPDATE audit_event SET seq = 2 WHERE seq = 3")
    tamper("UPDATE audit_event SET seq = 3 WHERE seq = 100")
    result = trail.verify()
    assert (result.ok, result.first_broken) == (False, 2)


def test_duplicated_entry_is_found(platform: Platform, trail: AuditTrail, tamper: Tamper) -> None:
    # Entry 3 replaced by a copy of entry 2 (its content and hashes): a replayed entry.
    _fill(trail, 5)
    two = _row(platform, 2)
    tamper("DELETE FROM audit_event WHERE seq = 3")
    tamper(
        "INSERT INTO audit_event SELECT 3, recorded, action, interaction, outcome, agent, "
        "practitioner, patient_id, purpose, source_address, content, prev_hash, hash "
        "FROM audit_event WHERE seq = 2"
    )
    assert _row(platform, 3)["hash"] == two["hash"]
    result = trail.verify()
    assert (result.ok, result.first_broken) == (False, 3)
    assert "prev_hash" in result.problem


def test_rewritten_tail_is_found_with_an_anchor(
    platform: Platform, trail: AuditTrail, tamper: Tamper
) -> None:
    """An intruder who recomputes every hash from the altered entry on, and the head, gets a
    chain that verifies; the head noted earlier (the anchor) still catches it."""
    _fill(trail, 4)
    noted = trail.verify()
    anchor = (noted.head_seq, noted.head_hash)
    prev = _row(platform, 2)["hash"]
    for seq in (3, 4):
        row = _row(platform, seq)
        if seq == 3:
            row["content"]["outcomeDesc"] = "rewritten"
        row["prev_hash"] = prev
        row["hash"] = prev = _forge_hash(row)
        tamper(
            "UPDATE audit_event SET content = :c, prev_hash = :p, hash = :h WHERE seq = :s",
            c=orjson.dumps(row["content"]).decode(),
            p=row["prev_hash"],
            h=row["hash"],
            s=seq,
        )
    tamper("UPDATE audit_head SET hash = :h", h=prev)
    assert trail.verify().ok  # the limit of an unkeyed chain
    result = trail.verify(anchors=[anchor])
    assert (result.ok, result.first_broken) == (False, 4)
    assert "anchor" in result.problem


def test_missing_head_is_found(platform: Platform, trail: AuditTrail, tamper: Tamper) -> None:
    _fill(trail, 2)
    tamper("DELETE FROM audit_head")
    result = trail.verify()
    assert (result.ok, result.first_broken) == (False, 1)


def test_postgresql_refuses_update_and_delete(platform: Platform, trail: AuditTrail) -> None:
    _fill(trail, 2)
    if not platform.store.dialect.is_postgres:
        # SQLite has no such trigger: the change goes through, and verify is the control.
        with platform.store.engine.begin() as c:
            c.execute(text("UPDATE audit_event SET agent = 'x' WHERE seq = 1"))
        assert (trail.verify().ok, trail.verify().first_broken) == (False, 1)
        return
    for sql in (
        "UPDATE audit_event SET agent = 'x' WHERE seq = 1",
        "DELETE FROM audit_event WHERE seq = 2",
        "DELETE FROM audit_patient",
        "TRUNCATE audit_event",
    ):
        with pytest.raises(DBAPIError, match="append-only"), platform.store.engine.begin() as c:
            c.execute(text(sql))
    assert trail.verify().checked == 2


def test_concurrent_appenders_keep_one_chain(platform: Platform, trail: AuditTrail) -> None:
    threads, per_thread = 8, 15
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with platform.store.begin() as tx:
                    batch = [entry("read", at=T0 + i, patients=(f"t{n}",))] * (1 + i % 2)
                    trail.append(tx.conn, batch)
        except BaseException as exc:  # reported below, with the chain state
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    expected = threads * sum(1 + i % 2 for i in range(per_thread))
    result = trail.verify()
    assert result.ok, result
    assert result.checked == result.head_seq == expected
    with platform.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_event)).scalar() == expected


def test_migration_creates_the_tables_and_the_head(platform: Platform) -> None:
    inspector = inspect(platform.store.engine)
    assert {"audit_event", "audit_patient", "audit_head"} <= set(inspector.get_table_names())
    indexes = {i["name"] for i in inspector.get_indexes("audit_event")}
    assert {"ix_audit_event_patient", "ix_audit_event_agent", "ix_audit_event_recorded"} <= indexes
    with platform.store.engine.connect() as conn:
        assert conn.execute(select(audit_head)).one()._tuple() == (1, 0, GENESIS_HASH)


def test_migration_goes_down_and_up(platform: Platform) -> None:
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    import parcours.store.schema_version as schema_version

    engine = platform.store.engine
    config = Config()
    config.set_main_option(
        "script_location", str(Path(schema_version.__file__).with_name("migrations"))
    )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")
    assert "audit_event" not in inspect(engine).get_table_names()
    schema_version.upgrade(engine)
    assert "audit_event" in inspect(engine).get_table_names()
    trail = AuditTrail(platform.store)
    _fill(trail, 2)
    assert trail.verify().ok
