"""Transport and acknowledgement behaviour over a real socket: resends, bad input, size
limit, truncated frames, enhanced mode, concurrency, TLS, database outage, retention."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from parcours.hl7v2 import inbox
from parcours.hl7v2.framing import frame
from parcours.hl7v2.tables import hl7_inbox
from parcours.store import Store, make_engine

from .conftest import TEST_SETTINGS, Live, MllpClient, ServerThread
from .db import one, outbox_count, resources, rows
from .messages import Pam


def test_resend_is_acknowledged_and_applied_once(live: Live) -> None:
    msg = Pam("A01", "R1").render()
    with live.client() as c:
        assert c.send(msg).code == "AA"
        events = outbox_count(live.store)
        versions = one(live.store, "Encounter")["meta"]["versionId"]
        for _ in range(3):
            ack = c.send(msg)
            assert ack.code == "AA" and ack.acked_id == "R1"
    assert outbox_count(live.store) == events
    assert one(live.store, "Encounter")["meta"]["versionId"] == versions
    [row] = rows(live.store)
    assert (row.status, row.attempts) == ("applied", 1)


def test_same_control_id_different_content_is_refused(live: Live) -> None:
    assert live.send(Pam("A28", "R1").render()).code == "AA"
    ack = live.send(Pam("A28", "R1", family="AUTRE").render())
    assert ack.code == "AE" and ack.error_codes() == ["205"]
    assert one(live.store, "Patient")["name"][0]["family"] == "MARTIN"
    assert [r.status for r in rows(live.store)] == ["applied", "rejected"]


def test_received_but_unapplied_row_is_applied_by_the_resend(live: Live) -> None:
    """Crash between the inbox commit and the apply: the resend finishes the job."""
    msg = Pam("A28", "R1").render()
    assert live.send(msg).code == "AA"
    with live.store.begin() as tx:  # pretend the apply never happened
        tx.conn.execute(update(hl7_inbox).values(status="received"))
        tx.conn.execute(hl7_inbox.delete().where(hl7_inbox.c.id < 0))
    assert live.send(msg).code == "AA"
    assert len(resources(live.store, "Patient")) == 1  # same IPP -> same record, no duplicate


@pytest.mark.parametrize(("version", "code"), [("2.3", "203"), ("2.6", "203"), ("2.5.1", None)])
def test_version(live: Live, version: str, code: str | None) -> None:
    ack = live.send(Pam("A28", "V1", version=version).render())
    if code is None:
        assert ack.code == "AA"
    else:
        assert ack.code == "AR" and ack.error_codes() == [code]
        assert ack.error_locations() == ["MSH^1^12"]


def test_unknown_trigger_is_acknowledged_and_ignored(live: Live) -> None:
    for cid, trig in (("U1", "A08"), ("U2", "Z12"), ("U3", "A24")):
        ack = live.send(Pam(trig, cid).render())
        assert ack.code == "AA" and ack.errors == []
    assert {r.status for r in rows(live.store)} == {"ignored"}
    assert resources(live.store, "Patient") == []


def test_garbage_and_headerless_frames(live: Live) -> None:
    with live.client() as c:
        ack = c.send(b"\x00\xff garbage \x1b")
        assert ack.code == "AR" and ack.error_codes() == ["100"]
        ack = c.send(b"PID|1||123")
        assert ack.code == "AR"
        ack = c.send(
            Pam(
                "A28",
                "",
            ).render()
        )
        assert ack.code == "AR" and ack.error_locations() == ["MSH^1^10"]
        # The connection is still usable.
        assert c.send(Pam("A28", "G1").render()).code == "AA"
    assert [r.status for r in rows(live.store)] == ["rejected"] * 3 + ["applied"]


def test_truncated_frame_is_never_acknowledged(live: Live) -> None:
    data = Pam("A28", "T1").bytes()
    with live.client() as c:
        c.send_raw(b"\x0b" + data[: len(data) // 2])
    time.sleep(0.3)
    assert rows(live.store) == []
    # A sender that restarts the frame on the same connection: the partial one is dropped.
    with live.client() as c:
        c.send_raw(b"\x0b" + data[:40])
        assert c.send(data).code == "AA"
    assert len(rows(live.store)) == 1


def test_ten_megabyte_message_is_refused_and_connection_survives(live: Live) -> None:
    huge = Pam("A28", "BIG").render() + "NTE|1||" + "X" * (10 * 1024 * 1024) + "\r"
    with live.client() as c:
        ack = c.send(huge)
        assert ack.code == "AR" and ack.acked_id == "BIG"
        assert ack.error_codes() == ["207"]
        assert c.send(Pam("A28", "SMALL").render()).code == "AA"
    big = rows(live.store)[0]
    assert big.status == "rejected" and big.size > 10 * 1024 * 1024 and len(big.raw) <= 8192


def test_messages_in_one_write_get_one_ack_each(live: Live) -> None:
    payload = b"".join(frame(Pam("A28", f"B{i}", ipp=f"9{i}").bytes()) for i in range(20))
    with live.client() as c:
        c.send_raw(payload)
        acks = c.read_acks(20)
    assert [a.acked_id for a in acks] == [f"B{i}" for i in range(20)]
    assert {a.code for a in acks} == {"AA"}


def test_enhanced_mode(live: Live) -> None:
    with live.client() as c:
        c.send_raw(frame(Pam("A28", "E1", accept_ack="AL", app_ack="AL").bytes()))
        codes = [a.code for a in c.read_acks(2)]
        assert codes == ["CA", "AA"]
        c.send_raw(frame(Pam("A28", "E2", accept_ack="NE", app_ack="ER", names="").bytes()))
        [ack] = c.read_acks(1)
        assert ack.code == "AE" and ack.acked_id == "E2"


def test_charsets_over_the_wire(live: Live) -> None:
    for cid, charset, codec in (("L1", "8859/1", "latin-1"), ("L2", "8859/15", "iso8859-15")):
        pam = Pam("A28", cid, ipp=cid, family="LEFÈVRE", charset=charset)
        with live.client() as c:
            ack = c.send(pam.bytes(codec))
        assert ack.code == "AA"
        assert ack.msh[17] == charset
    families = {p["name"][0]["family"] for p in resources(live.store, "Patient")}
    assert families == {"LEFÈVRE"}


def test_many_concurrent_connections(live: Live) -> None:
    results: dict[int, str] = {}

    def worker(n: int) -> None:
        with live.client() as c:
            for k in range(5):
                ack = c.send(Pam("A28", f"W{n}-{k}", ipp=f"{n}{k}", app=f"GAM{n}").render())
                results[n * 10 + k] = ack.code

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 60 and set(results.values()) == {"AA"}
    assert len(resources(live.store, "Patient")) == 60


def test_database_down_gives_ar_and_resend_works_later(store: Store) -> None:
    dead = Store(make_engine("postgresql://postgres@127.0.0.1:1/none"))
    srv = ServerThread(dead)
    try:
        with MllpClient(srv.port) as c:
            ack = c.send(Pam("A28", "D1").render())
        assert ack.code == "AR" and ack.error_codes() == ["207"]
    finally:
        srv.stop()
    srv = ServerThread(store)
    try:
        with MllpClient(srv.port) as c:
            assert c.send(Pam("A28", "D1").render()).code == "AA"
    finally:
        srv.stop()


def test_purge_keeps_failed_messages(live: Live) -> None:
    live.send(Pam("A28", "P1").render())
    live.send(Pam("A28", "P2", names="").render())
    live.send(Pam("A08", "P3").render())
    now = int(time.time() * 1000) + 100 * 86_400_000
    assert inbox.purge(live.store, 90, now=now) == 2
    assert [r.status for r in rows(live.store)] == ["failed"]
    assert inbox.purge(live.store, 90) == 0


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


def test_tls(store: Store, tmp_path: Path) -> None:
    key, cert = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    srv = ServerThread(store, TEST_SETTINGS, ssl_context=server_ctx)
    try:
        client_ctx = ssl.create_default_context(cafile=str(cert))
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
        tls = client_ctx.wrap_socket(raw, server_hostname="localhost")
        with MllpClient(srv.port, sock=tls) as c:
            assert c.send(Pam("A28", "S1").render()).code == "AA"
    finally:
        srv.stop()


def test_missing_trigger_is_rejected(live: Live) -> None:
    ack = live.send(Pam("A28", "N1").render().replace("ADT^A28^ADT_A05", "ADT"))
    assert ack.code == "AR" and ack.error_locations() == ["MSH^1^9^1^2"]


def test_platform_object_and_serve_mllp(store: Store) -> None:
    import asyncio
    import types

    from parcours.hl7v2 import MllpServer, serve_mllp

    platform = types.SimpleNamespace(store=store)
    server = MllpServer(platform, "127.0.0.1", 0, settings=TEST_SETTINGS)
    assert server.receiver.store is store

    async def run_briefly() -> None:
        task = asyncio.create_task(serve_mllp(platform, "127.0.0.1", 0, settings=TEST_SETTINGS))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_briefly())
    with pytest.raises(TypeError):
        MllpServer(object(), "127.0.0.1", 0)


def test_resend_with_new_msh7_is_still_a_resend(live: Live) -> None:
    msg = Pam("A28", "R7").render()
    assert live.send(msg).code == "AA"
    restamped = msg.replace("|20250301140000||ADT", "|20250301140500||ADT", 1)
    assert restamped != msg
    assert live.send(restamped.replace("\r", "\n")).code == "AA"
    assert [r.status for r in rows(live.store)] == ["applied"]


def test_observer_sees_every_answer(store: Store) -> None:
    seen: list[tuple[str, str]] = []

    class Recorder:
        def message(self, trigger: str, ack_code: str, seconds: float) -> None:
            assert seconds >= 0
            seen.append((trigger, ack_code))

    srv = ServerThread(store, TEST_SETTINGS, observers=[Recorder()])
    try:
        with MllpClient(srv.port) as c:
            c.send(Pam("A28", "O1").render())
            c.send(Pam("A28", "O2", names="").render())
            c.send(b"garbage")
    finally:
        srv.stop()
    assert seen == [("A28", "AA"), ("A28", "AE"), ("", "AR")]
