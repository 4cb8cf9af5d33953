"""Notification latency benchmark (issue 6): from the MLLP frame of an admission received to the
rest-hook POSTs delivered, at a steady admission rate, on PostgreSQL.

Goal: p95 ≤ 1 s at 50 admissions/s with 20 subscribers per patient.

The platform runs as real processes: ``parcours serve --mllp-port`` on a scratch PostgreSQL
schema, with the outbox dispatcher inside it (``--workers 0``) or in ``--workers`` separate
``parcours outbox work`` processes (the PostgreSQL set-up of docs/operations.md). The outside
world runs in this process, on one asyncio loop: the hospital (MLLP connections sending A01 on
a fixed schedule) and the subscribers' rest-hook endpoint (a small HTTP/1.1 server recording
the arrival time of every POST).

Who the 20 subscribers are. The care circle's default subscription delivers in-app and by
e-mail only (a recipient cannot choose rest-hook without a Subscription, see
``notify/preferences.py``), so the rest-hook deliveries come from explicit Subscriptions: a pool
of ``--pool`` practitioners (default: ``--subscribers``), each with ONE rest-hook Subscription
(``CommunicationRequest?event-type=ADM``, full-resource payload, its own endpoint path) created
over FHIR with its own professional token, as a GP's software would; every patient's CareTeam
has ``--subscribers`` of them as members, so each admission matches 20 Subscriptions whose owner
may see the patient: 20 rest-hook POSTs. One Subscription per subscriber (not one per patient)
is how a practice subscribes to all its patients; it also keeps the manager's scan of the
Subscriptions short. The circle members keep the platform's default channel too (in-app: they
have no e-mail here), as in production, so each admission also writes 20 in-app notifications;
``--circle-channels none`` sets every member's preference to no default channel, to measure the
rest-hook path alone.

Each admission is for a distinct patient (registered by A28 beforehand; ``--patients`` defaults
to what the run needs), so the per-patient delivery order never holds one admission's POSTs
behind another's. Latency of a delivery = its arrival at the endpoint − the moment the A01
frame was written on the socket; an admission's latency is that of its last (20th) delivery.
A delivery not received ``--drain`` seconds after the last send counts as late (not lost: the
outbox still holds it, ``outbox_pending_at_end`` says how many events wait).

The stage breakdown comes from the outbox rows (``created_at``/``processed_at``, ms): intake
(frame → Encounter event committed), emitter queue, manager queue, delivery queue; it says
where the time goes when the goal is missed.

    .venv/bin/python bench/notify_bench.py
    .venv/bin/python bench/notify_bench.py --rate 50 --seconds 30 --subscribers 20 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform as host
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

if not __package__:  # run as a script (bench/notify_bench.py): make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import REPO, free_port, running_server, scratch_database
from parcours.auth import issue_token
from parcours.config import Settings
from parcours.notify.preferences import save_preference
from parcours.platform import build_platform
from parcours.security.principal import Principal
from parcours.store.schema_version import ensure_schema

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "bench-notify-token-" + "x" * 16
GOAL = {"p95_ms": 1000, "admissions_per_s": 50, "subscribers_per_patient": 20}
FAC = "CH-BENCH&330000777&M"
START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"


# ---- HL7 ---------------------------------------------------------------------------------


def _ipp(n: int) -> str:
    return f"NB{n:07d}"


def pam(trigger: str, control: str, n: int, when: str) -> bytes:
    """A PAM FR A28 (registration) or A01 (admission) for fictional patient ``n``."""
    structure = "ADT_A05" if trigger == "A28" else "ADT_A01"
    birth = f"19{40 + n % 60}0{1 + n % 9}1{n % 10}"
    segments = [
        f"MSH|^~\\&|GAM|CH-BENCH|PARCOURS|REGION|{when}||ADT^{trigger}^{structure}|{control}|P|"
        "2.5^FRA^2.11|||||FRA|UNICODE UTF-8",
        f"EVN||{when}",
        f"PID|1||{_ipp(n)}^^^{FAC}^PI||NOTIFBENCH^PAT{n}^^^^^L||{birth}|{'F' if n % 2 else 'M'}"
        + "|" * 24
        + "PROV",
    ]
    if trigger == "A28":
        segments.append("PV1|1|N")
    else:
        pv1 = ["PV1", "1", "I", f"4010^^^{FAC}"] + [""] * 15 + [f"V{n:07d}^^^{FAC}^VN"]
        segments.append("|".join(pv1))
        uf = f"CARDIO^^^^^{FAC}^UF^^^4010"
        segments.append(f"ZBE|MV{n:07d}^CH-BENCH^330000777^M|{when}||INSERT|N||{uf}|{uf}|HMS")
    return ("\r".join(segments) + "\r").encode()


def _ack_code(raw: bytes) -> str:
    for seg in raw.strip(START_BLOCK + END_BLOCK).decode("utf-8", "replace").split("\r"):
        if seg.startswith("MSA|"):
            return seg.split("|")[1]
    return "?"


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes
) -> tuple[float, str]:
    """Write one frame; (wall time of the write, MSA-1 of its ACK)."""
    sent = time.time()
    writer.write(START_BLOCK + message + END_BLOCK)
    await writer.drain()
    ack = await reader.readuntil(END_BLOCK)
    return sent, _ack_code(ack)


@dataclass
class Sent:
    send_s: dict[int, float] = field(default_factory=dict)  # patient n -> wall time of the write
    ack_ms: list[float] = field(default_factory=list)
    behind_ms: list[float] = field(default_factory=list)  # write time − scheduled time
    codes: Counter[str] = field(default_factory=Counter)


async def send_all(
    port: int,
    jobs: list[tuple[int, bytes]],
    connections: int,
    rate: float | None,
) -> Sent:
    """Send ``jobs`` (patient n, frame) over ``connections``; at ``rate`` per second overall
    (job i due at start + i / rate), or as fast as the ACKs come when ``rate`` is None."""
    out = Sent()
    start = time.time() + 0.2

    async def one(conn: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in range(conn, len(jobs), connections):
                n, frame = jobs[i]
                if rate is not None:
                    due = start + i / rate
                    if (wait := due - time.time()) > 0:
                        await asyncio.sleep(wait)
                sent, code = await _exchange(reader, writer, frame)
                out.ack_ms.append((time.time() - sent) * 1000)
                if rate is not None:
                    out.behind_ms.append((sent - (start + i / rate)) * 1000)
                out.send_s[n] = sent
                out.codes[code] += 1
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    await asyncio.gather(*(one(c) for c in range(connections)))
    return out


# ---- the subscribers' endpoint -----------------------------------------------------------


@dataclass
class Arrival:
    at: float
    path: str
    key: str
    body: bytes


class Receiver:
    """HTTP/1.1 endpoint answering 200 to every POST; keeps (arrival time, path, key, body).
    The body is parsed after the run, so the loop that also paces the sender stays light."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else ""
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.arrivals.append(
                    Arrival(time.time(), path, headers.get("x-parcours-notification-id", ""), body)
                )
                close = headers.get("connection", "").lower() == "close"
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                    + (b"Connection: close\r\n" if close else b"")
                    + b"\r\n"
                )
                await writer.drain()
                if close:
                    return
        finally:
            writer.close()


def _patient_of(body: bytes) -> str | None:
    """The patient of the declaration carried in a full-resource notification Bundle."""
    bundle = json.loads(body)
    for entry in bundle.get("entry") or []:
        res = entry.get("resource") or {}
        if res.get("resourceType") == "CommunicationRequest":
            ref = (res.get("subject") or {}).get("reference", "")
            return str(ref).split("/", 1)[1] if "/" in str(ref) else None
    return None


# ---- set-up ------------------------------------------------------------------------------


def _ref(kind: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{kind}/{res_id}"}


def _members(n: int, subscribers: int, pool: int) -> list[int]:
    return [(n + k) % pool for k in range(subscribers)]


def patient_ids(url: str) -> dict[str, str]:
    """IPP -> Patient id, for the patients the A28s registered."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, content FROM resource WHERE type = 'Patient' AND NOT deleted")
            ).all()
    finally:
        engine.dispose()
    out: dict[str, str] = {}
    for res_id, content in rows:
        for ident in content.get("identifier") or []:
            if str(ident.get("value", "")).startswith("NB"):
                out[ident["value"]] = str(res_id)
    return out


def build_circles(
    url: str, ids: dict[int, str], subscribers: int, pool: int, circle_channels: str
) -> None:
    """Practitioners of the pool and one CareTeam per patient, through the store."""
    platform = build_platform(Settings(database_url=url, admin_token=TOKEN))
    try:
        with platform.store.begin() as tx:
            for s in range(pool):
                tx.update(
                    {
                        "resourceType": "Practitioner",
                        "id": f"sub-{s}",
                        "name": [{"family": f"Abonne{s}", "given": ["Bench"]}],
                    }
                )
                if circle_channels == "none":
                    save_preference(tx, f"Practitioner/sub-{s}", [], [])
        items = sorted(ids.items())
        for start in range(0, len(items), 200):
            with platform.store.begin() as tx:
                for n, pid in items[start : start + 200]:
                    tx.update(
                        {
                            "resourceType": "CareTeam",
                            "id": f"circle-{pid}",
                            "status": "active",
                            "subject": _ref("Patient", pid),
                            "period": {"start": "2024-01-01"},
                            "participant": [
                                {
                                    "member": _ref("Practitioner", f"sub-{s}"),
                                    "period": {"start": "2024-01-01"},
                                }
                                for s in _members(n, subscribers, pool)
                            ],
                        }
                    )
    finally:
        platform.close()


def subscribe(url: str, base: str, receiver_port: int, pool: int) -> None:
    """One rest-hook Subscription per practitioner of the pool, POSTed with its own token."""
    settings = Settings(database_url=url, admin_token=TOKEN, base_url=base)
    platform = build_platform(settings)
    try:
        for s in range(pool):
            who = f"Practitioner/sub-{s}"
            token = issue_token(
                platform.store,
                Principal(who, frozenset({"professional"}), who),
                7200,
                settings=settings,
            )
            created = httpx.post(
                f"{base}/fhir/Subscription",
                json={
                    "resourceType": "Subscription",
                    "status": "requested",
                    "reason": "admissions de mes patients",
                    "criteria": "CommunicationRequest?event-type=ADM",
                    "channel": {
                        "type": "rest-hook",
                        "endpoint": f"http://127.0.0.1:{receiver_port}/hook/{s}",
                        "payload": "application/fhir+json",
                    },
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            if created.status_code != 201:
                raise RuntimeError(f"Subscription for {who}: {created.status_code} {created.text}")
    finally:
        platform.close()


def _scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


async def wait_for(url: str, sql: str, want: int, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while (got := await asyncio.to_thread(_scalar, url, sql)) != want:
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what} ({got}, want {want})")
        await asyncio.sleep(0.5)


PENDING = "SELECT count(*) FROM outbox WHERE processed_at IS NULL AND dead_at IS NULL"
DEAD = "SELECT count(*) FROM outbox WHERE dead_at IS NOT NULL"
ACTIVE_SUBS = (
    "SELECT count(*) FROM resource WHERE type = 'Subscription' AND NOT deleted"
    " AND content->>'status' = 'active'"
)


@contextlib.contextmanager
def outbox_workers(
    url: str, base: str, count: int, profile: Path | None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` worker processes; with ``profile``, the first one runs under cProfile (its
    stats are written there when it stops)."""
    env = {
        **os.environ,
        "PARCOURS_DATABASE_URL": url,
        "PARCOURS_ADMIN_TOKEN": TOKEN,
        "PARCOURS_BASE_URL": base,
        "PARCOURS_LOG_LEVEL": "WARNING",
    }
    cmd = ["-m", "parcours.cli", "outbox", "work"]
    profiled = ["-m", "cProfile", "-o", str(profile)] if profile else []
    procs = [
        subprocess.Popen(
            [sys.executable, *(profiled if i == 0 else []), *cmd],
            env=env,
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


# ---- figures -----------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "count": len(ordered),
        "p50": round(statistics.median(ordered), 1),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(ordered[-1], 1),
    }


def stages(url: str, since_ms: int) -> dict[str, Any]:
    """Queue wait (created → processed) and processing order of the outbox events of the
    measured phase, by kind: where an admission's time goes."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT res_type, res_id, action, created_at, processed_at, attempts "
                    "FROM outbox WHERE created_at >= :since"
                ),
                {"since": since_ms},
            ).all()
            channels = dict(
                conn.execute(
                    text(
                        "SELECT notification_id, channel FROM notify_delivery "
                        "WHERE delivered_at >= :since"
                    ),
                    {"since": since_ms},
                ).all()
            )
    finally:
        engine.dispose()
    waits: dict[str, list[float]] = defaultdict(list)
    retried: Counter[str] = Counter()
    first, last = None, None
    for res_type, res_id, action, created, processed, attempts in rows:
        kind = f"{res_type}.{action}"
        if res_type == "CommunicationRequest":
            if str(res_id).startswith("evt-"):
                kind = "declaration"
            elif str(res_id).startswith("ntf-"):
                kind = (
                    f"notification.{channels.get(res_id, 'pending')}"
                    if action == "create"
                    else ("notification.status-update")
                )
        if processed is not None:
            waits[kind].append(float(processed - created))
            first = processed if first is None else min(first, processed)
            last = processed if last is None else max(last, processed)
        if attempts:
            retried[kind] += 1
    span_s = (last - first) / 1000 if first is not None and last is not None else 0.0
    processed_total = sum(len(v) for v in waits.values())
    return {
        "events": {k: len(v) for k, v in sorted(waits.items())},
        "queue_wait_ms": {k: percentiles(v) for k, v in sorted(waits.items())},
        "events_retried": dict(retried),
        "events_processed_per_s": round(processed_total / span_s, 1) if span_s else None,
    }


# ---- the run -----------------------------------------------------------------------------


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    warm = args.warmup
    measured = int(args.rate * args.seconds)
    patients = max(args.patients or 0, warm + measured)
    receiver = Receiver()
    await receiver.start()
    mllp_port = free_port()
    env = {"PARCOURS_OUTBOX_WORKERS": "0" if args.workers else "1"}
    result: dict[str, Any] = {}
    try:
        with (
            running_server(url, TOKEN, mllp_port=mllp_port, extra_env=env) as base,
            outbox_workers(url, base, args.workers, args.profile),
        ):
            t = time.monotonic()
            registrations = [
                (n, pam("A28", f"REG{n:07d}", n, "20251123080000")) for n in range(patients)
            ]
            reg = await send_all(mllp_port, registrations, 8, None)
            if reg.codes.get("AA", 0) != patients:
                raise RuntimeError(f"A28 registrations: ACKs {dict(reg.codes)}")
            by_ipp = await asyncio.to_thread(patient_ids, url)
            ids = {n: by_ipp[_ipp(n)] for n in range(patients)}
            await asyncio.to_thread(
                build_circles, url, ids, args.subscribers, args.pool, args.circle_channels
            )
            await asyncio.to_thread(subscribe, url, base, receiver.port, args.pool)
            await wait_for(url, ACTIVE_SUBS, args.pool, 120, "active Subscriptions")
            await wait_for(url, PENDING, 0, 900, "the set-up's outbox events")
            print(
                f"set-up: {patients} patients, {args.pool} subscribers, circles of "
                f"{args.subscribers}, in {time.monotonic() - t:.1f} s",
                flush=True,
            )
            if warm:
                jobs = [(n, pam("A01", f"W{n:07d}", n, "20251123100000")) for n in range(warm)]
                await send_all(mllp_port, jobs, args.connections, args.rate)
                await wait_for(url, PENDING, 0, 300, "the warm-up's notifications")
                print(f"warm-up: {len(receiver.arrivals)} deliveries", flush=True)
            receiver.arrivals.clear()
            since_ms = int(time.time() * 1000)
            load_before = os.getloadavg()[0]
            jobs = [
                (n, pam("A01", f"A{n:07d}", n, "20251123100000"))
                for n in range(warm, warm + measured)
            ]
            sent = await send_all(mllp_port, jobs, args.connections, args.rate)
            sending_s = max(sent.send_s.values()) - min(sent.send_s.values())
            expected = sent.codes.get("AA", 0) * args.subscribers
            print(
                f"sent {len(jobs)} A01 in {sending_s:.1f} s, ACKs {dict(sent.codes)}; "
                f"waiting for {expected} deliveries",
                flush=True,
            )
            deadline = time.monotonic() + args.drain
            while len(receiver.arrivals) < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # duplicates, if any, arrive too
            load_after = os.getloadavg()[0]
            result["stages"] = await asyncio.to_thread(stages, url, since_ms)
            result["outbox_pending_at_end"] = await asyncio.to_thread(_scalar, url, PENDING)
            result["outbox_dead_letters"] = await asyncio.to_thread(_scalar, url, DEAD)
    finally:
        await receiver.stop()
    send_by_pid = {ids[n]: s for n, s in sent.send_s.items()}
    per_delivery: list[float] = []
    per_admission: dict[str, list[float]] = defaultdict(list)
    keys: Counter[str] = Counter()
    unknown = 0
    for arrival in receiver.arrivals:
        keys[arrival.key] += 1
        if keys[arrival.key] > 1:
            continue
        pid = _patient_of(arrival.body)
        if pid is None or pid not in send_by_pid:
            unknown += 1
            continue
        latency = (arrival.at - send_by_pid[pid]) * 1000
        per_delivery.append(latency)
        per_admission[pid].append(latency)
    complete = [max(v) for v in per_admission.values() if len(v) >= args.subscribers]
    delivered = len(per_delivery)
    last_arrival = max((a.at for a in receiver.arrivals), default=0.0)
    first_send = min(sent.send_s.values())
    result.update(
        {
            "admissions_sent": len(jobs),
            "acks": dict(sent.codes),
            "achieved_admissions_per_s": round((len(jobs) - 1) / sending_s, 2)
            if sending_s
            else None,
            "ack_latency_ms": percentiles(sent.ack_ms),
            "send_behind_schedule_ms": percentiles(sent.behind_ms),
            "deliveries_expected": expected,
            "deliveries_received": len(receiver.arrivals),
            "deliveries_unique": delivered,
            "duplicates": sum(c - 1 for c in keys.values() if c > 1),
            "unknown_deliveries": unknown,
            # Not received within --drain s of the last send: still queued (backlog, see
            # outbox_pending_at_end) or given up on (outbox_dead_letters).
            "late": expected - delivered,
            "admissions_complete": len(complete),
            "delivery_latency_ms": percentiles(per_delivery),
            "admission_latency_ms": percentiles(complete),
            "deliveries_per_s": round(delivered / (last_arrival - first_send), 1)
            if delivered
            else None,
            "drain_after_last_send_s": round(last_arrival - max(sent.send_s.values()), 1)
            if delivered
            else None,
            "load_avg_1m": [round(load_before, 2), round(load_after, 2)],
        }
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="admissions per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the measured run")
    parser.add_argument("--subscribers", type=int, default=20, help="rest-hook per admission")
    parser.add_argument("--pool", type=int, default=0, help="distinct subscribers (default: =)")
    parser.add_argument("--patients", type=int, default=0, help="default: one per admission")
    parser.add_argument("--workers", type=int, default=0, help="`parcours outbox work` procs")
    parser.add_argument("--connections", type=int, default=4, help="MLLP connections")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured admissions first")
    parser.add_argument(
        "--circle-channels",
        choices=["default", "none"],
        default="default",
        help="members' care-circle channels: the platform default (in-app) or none",
    )
    parser.add_argument(
        "--profile", type=Path, help="run the first outbox worker under cProfile, stats here"
    )
    parser.add_argument("--drain", type=float, default=180.0, help="max wait after last send")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"))
    parser.add_argument("--output", type=Path, default=RESULTS / "notify.json")
    args = parser.parse_args()
    args.pool = args.pool or args.subscribers
    if args.pool < args.subscribers:
        parser.error("--pool must be at least --subscribers")

    url, cleanup = scratch_database("postgresql", args.workdir, "notifybench")
    try:
        platform = build_platform(Settings(database_url=url, admin_token=TOKEN))
        ensure_schema(platform.store.engine)
        platform.close()
        result = asyncio.run(run(args, url))
    finally:
        cleanup()

    d, a = result["delivery_latency_ms"], result["admission_latency_ms"]
    met = (
        a["p95"] is not None
        and a["p95"] <= GOAL["p95_ms"]
        and result["late"] == 0
        and (result["achieved_admissions_per_s"] or 0) >= 0.95 * GOAL["admissions_per_s"]
        and args.rate >= GOAL["admissions_per_s"]
        and args.subscribers >= GOAL["subscribers_per_patient"]
    )
    print(
        f"admissions: {result['admissions_sent']} at {result['achieved_admissions_per_s']}/s "
        f"(offered {args.rate:g}/s), ACK p50 {result['ack_latency_ms']['p50']} / p95 "
        f"{result['ack_latency_ms']['p95']} ms\n"
        f"deliveries: {result['deliveries_unique']} of {result['deliveries_expected']} "
        f"({result['late']} late, {result['duplicates']} duplicates), "
        f"{result['deliveries_per_s']}/s, last one {result['drain_after_last_send_s']} s after "
        f"the last send; outbox at the end: {result['outbox_pending_at_end']} pending, "
        f"{result['outbox_dead_letters']} dead letters\n"
        f"latency per delivery: p50 {d['p50']} / p95 {d['p95']} / p99 {d['p99']} ms "
        f"(max {d['max']})\n"
        f"latency per admission (last delivery): p50 {a['p50']} / p95 {a['p95']} / p99 "
        f"{a['p99']} ms (max {a['max']}), {result['admissions_complete']} complete\n"
        f"outbox: {result['stages']['events_processed_per_s']} events/s; queue waits (ms):",
        flush=True,
    )
    for kind, w in result["stages"]["queue_wait_ms"].items():
        print(f"  {kind}: {w['count']} events, p50 {w['p50']} / p95 {w['p95']} / max {w['max']}")
    print(
        f"goal (p95 ≤ {GOAL['p95_ms']} ms at 50/s, 20 subscribers): {'met' if met else 'NOT met'}"
    )

    report = {
        "benchmark": "notify",
        "command": " ".join([".venv/bin/python", "bench/notify_bench.py", *sys.argv[1:]]),
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "database": "postgresql",
        "scale": {
            "rate": args.rate,
            "seconds": args.seconds,
            "subscribers": args.subscribers,
            "pool": args.pool,
            "workers": args.workers,
            "dispatcher": f"{args.workers} outbox worker processes"
            if args.workers
            else "inside parcours serve",
            "connections": args.connections,
            "warmup": args.warmup,
            "circle_channels": args.circle_channels,
        },
        "goal": GOAL,
        "goal_met": met,
        "results": result,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
