"""`parcours audit …`: verify the chain, "who accessed this record", the break-glass review.

Consulting the trail about a patient is itself an access to personal data: ``report`` and
``break-glass`` append their own entry (agent ``cli/<os user>``) before printing.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from parcours.errors import InvalidInput
from parcours.security.principal import Principal

__all__ = ["register", "run"]


def _since(value: str) -> int:
    from .trail import parse_date_range

    try:
        return parse_date_range(value)[0]
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _anchor(value: str) -> tuple[int, str]:
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError(f"{value!r}: expected SEQ:HASH (64 hex digits)")
    return int(seq), digest.lower()


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``audit`` and its sub-commands (``func`` runs them and returns the exit code)."""
    audit = subparsers.add_parser(
        "audit", help="audit trail: verify the chain, access report, break-glass review"
    )
    audit.set_defaults(func=run)
    sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = sub.add_parser(
        "verify", help="check the hash chain; exit 1 naming the first broken entry"
    )
    verify.add_argument("--batch", type=int, default=5000, help="entries read per batch")
    verify.add_argument(
        "--anchor",
        type=_anchor,
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="a head printed by an earlier verify: fails if that entry's hash changed",
    )
    report = sub.add_parser("report", help="who accessed a patient's record")
    report.add_argument("--patient", required=True, help="Patient/ID or ID")
    report.add_argument("--since", type=_since, default=None, help="ISO date or date-time")
    report.add_argument("--format", choices=("text", "json"), default="text")
    glass = sub.add_parser("break-glass", help="list the accesses under break-the-glass")
    glass.add_argument("--since", type=_since, default=None, help="ISO date or date-time")
    glass.add_argument("--limit", type=int, default=1000)
    glass.add_argument("--format", choices=("text", "json"), default="text")
    return sub


def _cli_principal() -> Principal:
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers; the entry is still worth writing
        user = "unknown"
    return Principal(
        f"cli/{user}", frozenset({"admin"}), display=f"{user} (command line)", method="cli"
    )


def run(args: argparse.Namespace) -> int:
    from parcours.cli_support import settings_or_exit
    from parcours.platform import build_platform
    from parcours.store.clock import now_ms
    from parcours.store.schema_version import SchemaBehind, ensure_schema

    from .entry import AuditEntry
    from .trail import AuditTrail

    platform = build_platform(settings_or_exit())
    try:
        ensure_schema(platform.store.engine)
        trail = AuditTrail(platform.store)
        if args.audit_command == "verify":
            result = trail.verify(batch=args.batch, anchors=args.anchor)
            if not result.ok:
                print(
                    f"audit chain BROKEN at seq={result.first_broken}: {result.problem} "
                    f"({result.checked} entries intact before it)",
                    file=sys.stderr,
                )
                return 1
            print(
                f"intact: {result.checked} entries; head seq={result.head_seq} "
                f"hash={result.head_hash}"
            )
            return 0
        if args.audit_command == "report":
            try:
                with platform.store.begin(readonly=True) as tx:
                    report = trail.access_report(tx.conn, args.patient, since_ms=args.since)
            except InvalidInput as exc:
                print(f"parcours audit: {exc}", file=sys.stderr)
                return 2
            patient = args.patient.rpartition("/")[2]
            trail.record(
                [
                    AuditEntry(
                        now_ms(),
                        "E",
                        "search-type",
                        0,
                        _cli_principal(),
                        patients=(patient,),
                        query=f"patient=Patient/{patient}",
                        resource_type="AuditEvent",
                    )
                ]
            )
            _print_report(f"Patient/{patient}", report, args.format)
            return 0
        if args.audit_command == "break-glass":
            with platform.store.begin(readonly=True) as tx:
                events = trail.break_glass(tx.conn, since_ms=args.since, limit=args.limit)
            trail.record(
                [
                    AuditEntry(
                        now_ms(),
                        "E",
                        "search-type",
                        0,
                        _cli_principal(),
                        patients=tuple(dict.fromkeys(p for e in events for p in e["patients"])),
                        query="purpose=BTG",
                        resource_type="AuditEvent",
                    )
                ]
            )
            _print_break_glass(events, args.format)
            return 0
    except SchemaBehind as exc:
        print(f"parcours audit: {exc}", file=sys.stderr)
        return 2
    finally:
        platform.close()
    return 2


def _print_report(patient: str, report: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps({"patient": patient, "agents": report}, indent=1, ensure_ascii=False))
        return
    print(f"{patient}: accessed by {len(report)} agent(s)")
    for line in report:
        who = line["display"] or line["agent"]
        ids = ", ".join(x for x in (line["practitioner"], line["agent"]) if x)
        kinds = ", ".join(f"{k} {n}" for k, n in line["interactions"].items())
        flags = " [BREAK-GLASS]" if line["break_glass"] else ""
        if line["failed"]:
            flags += f" [{line['failed']} refused/failed]"
        print(
            f"  {line['last']}  {who} ({ids}): {line['count']} access(es) since "
            f"{line['first']} ({kinds}){flags}"
        )


def _print_break_glass(events: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(events, indent=1, ensure_ascii=False))
        return
    print(f"{len(events)} break-glass access(es)")
    for event in events:
        who = event["display"] or event["agent"]
        patients = ", ".join(f"Patient/{p}" for p in event["patients"]) or "-"
        print(
            f"  {event['when']}  AuditEvent/{event['id']}  {who} ({event['agent']})  "
            f"{event['interaction']} {patients}  reason: {event['reason'] or '-'}"
        )
