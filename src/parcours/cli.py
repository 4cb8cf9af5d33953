"""`parcours …`: the one command line of the platform."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from parcours.cli_support import settings_or_exit
from parcours.config import Settings

if TYPE_CHECKING:
    from parcours.platform import Platform
    from parcours.store import Store

__all__ = ["main"]


def _settings() -> Settings:
    return settings_or_exit()


def _cmd_db(args: argparse.Namespace) -> int:
    from parcours.store import make_engine
    from parcours.store.schema_version import current_revision, head_revision, upgrade

    settings = _settings()
    engine = make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        if args.db_command == "upgrade":
            before = current_revision(engine)
            upgrade(engine)
            after = current_revision(engine)
            print(f"schema: {before or 'empty'} -> {after}" if before != after else f"at {after}")
            # Reference data the migrations cannot write through the repository (D21).
            from parcours.platform import build_platform
            from parcours.reference_data import load_reference_data

            loaded = build_platform(settings)
            try:
                for line in load_reference_data(loaded.store):
                    print(line)
            finally:
                loaded.close()
        elif args.db_command == "current":
            print(f"current: {current_revision(engine) or 'empty'}; head: {head_revision()}")
        elif args.db_command == "reindex":
            from parcours.platform import build_platform
            from parcours.store.maintenance import reindex_all

            platform = build_platform(settings)
            count = reindex_all(platform.store, args.type)
            print(f"reindexed {count} resources")
    finally:
        engine.dispose()
    return 0


def _demo_accounts(platform: Platform) -> None:
    """The web workspace's demo logins (README), never on a production platform."""
    from parcours.web import DEMO_PASSWORD, ensure_demo_accounts

    if platform.settings.production:
        return
    created = ensure_demo_accounts(platform.store, platform.settings)
    if created:
        print(f"demo accounts: {', '.join(created)} (password {DEMO_PASSWORD!r}, no TOTP)")


def _cmd_demo(args: argparse.Namespace) -> int:
    from parcours.demo import DemoDatabaseNotEmpty, load_demo
    from parcours.platform import build_platform
    from parcours.store.schema_version import SchemaBehind, ensure_schema

    platform = build_platform(_settings())
    try:
        ensure_schema(platform.store.engine)
        platform.load_custom_search_parameters()
        try:
            summary = load_demo(platform.store, seed=args.seed, patients=args.patients)
        except DemoDatabaseNotEmpty as exc:
            if args.if_empty:
                print("demo: database already holds data, nothing loaded")
                _demo_accounts(platform)
                return 0
            print(f"parcours demo: {exc}", file=sys.stderr)
            return 1
        print(f"demo loaded: {summary}")
        from parcours.reference_data import load_reference_data

        load_reference_data(platform.store)
        from parcours.store.maintenance import refresh_statistics

        refresh_statistics(platform.store, after_import=True)
        _demo_accounts(platform)
    except SchemaBehind as exc:
        print(f"parcours demo: {exc}", file=sys.stderr)
        return 2
    finally:
        platform.close()
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from parcours.serve import serve

    return serve(_settings(), host=args.host, port=args.port, mllp_port=args.mllp_port)


def _open_store() -> Store:
    from parcours.platform import build_platform

    return build_platform(_settings()).store


def _cmd_hl7_listen(args: argparse.Namespace) -> int:
    from parcours.serve import listen_mllp

    return listen_mllp(_settings(), host=args.host, port=args.port)


def _cmd_outbox(args: argparse.Namespace) -> int:
    from parcours.serve import run_outbox_worker

    return run_outbox_worker(_settings(), once=args.once)


def _cmd_identity(args: argparse.Namespace) -> int:
    import json

    from parcours.identity import CandidateStatus, list_candidates, read_patients, run_audit
    from parcours.platform import build_platform
    from parcours.store.schema_version import SchemaBehind, ensure_schema

    settings = _settings()
    platform = build_platform(settings)
    try:
        ensure_schema(platform.store.engine)
        if args.identity_command == "audit":
            report = run_audit(
                platform.store,
                threshold=args.threshold,
                batch_size=args.batch_size,
                write=not args.dry_run,
            )
            if args.format == "json":
                # Record ids and scores only: no name or INS leaves through this output.
                out = {
                    "records": report.records,
                    "pairs": [pair.as_json() for pair in report.pairs],
                    "queued": report.queued,
                    "seconds": {k: round(v, 3) for k, v in report.seconds.items()},
                }
                print(json.dumps(out, indent=1))
            else:
                print(
                    f"identity audit: {report.records} patients, {len(report.pairs)} pairs at "
                    f"p >= {args.threshold}, {report.queued} offered to the review queue"
                )
        elif args.identity_command == "reindex":
            count = matchable = 0
            batch: list[dict[str, object]] = []

            def flush() -> None:
                nonlocal matchable
                with platform.store.begin() as tx:
                    matchable += sum(platform.identity.reindex(tx, p) for p in batch)
                batch.clear()

            for patient in read_patients(platform.store):
                batch.append(patient)
                count += 1
                if len(batch) >= 1000:
                    flush()
            if batch:
                flush()
            print(f"identity reindex: {count} patients, {matchable} matchable")
        elif args.identity_command == "queue":
            statuses = tuple(CandidateStatus(s) for s in args.status or ["open"])
            with platform.store.begin(readonly=True) as tx:
                rows = list_candidates(tx, statuses=statuses, limit=args.limit)
            if args.format == "json":
                print(json.dumps([row.as_json() for row in rows], indent=1))
            else:
                for row in rows:
                    print(
                        f"{row.pk}\t{row.status.value}\t{row.score:.4f}\t{row.grade}\t"
                        f"{row.tier}\tPatient/{row.patient_a}\tPatient/{row.patient_b}"
                    )
    except SchemaBehind as exc:
        print(f"parcours identity: {exc}", file=sys.stderr)
        return 2
    finally:
        platform.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parcours", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web UI, the FHIR API and the MLLP listener")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--mllp-port", type=int, default=None, help="HL7 v2 MLLP listener port (off if omitted)"
    )
    serve.set_defaults(func=_cmd_serve)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply the schema migrations (Alembic)")
    db_sub.add_parser("current", help="print the schema revision")
    reindex = db_sub.add_parser("reindex", help="rebuild the search index from stored resources")
    reindex.add_argument("--type", default=None, help="only this resource type")
    db.set_defaults(func=_cmd_db)

    demo = sub.add_parser("demo", help="load the synthetic demo region into an empty database")
    demo.add_argument("--seed", type=int, default=2024)
    demo.add_argument("--patients", type=int, default=300)
    demo.add_argument(
        "--if-empty", action="store_true", help="do nothing (exit 0) if data is already there"
    )
    demo.set_defaults(func=_cmd_demo)

    outbox = sub.add_parser("outbox", help="event outbox")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    work = outbox_sub.add_parser("work", help="run an outbox worker process")
    work.add_argument("--once", action="store_true", help="drain the pending events and exit")
    outbox.set_defaults(func=_cmd_outbox)

    identity = sub.add_parser("identity", help="patient identity: duplicate audit, review queue")
    identity_sub = identity.add_subparsers(dest="identity_command", required=True)
    audit = identity_sub.add_parser(
        "audit", help="score every stored Patient with Splink and fill the review queue"
    )
    audit.add_argument("--format", choices=("text", "json"), default="text")
    audit.add_argument("--threshold", type=float, default=0.5, help="Splink match probability")
    audit.add_argument("--batch-size", type=int, default=50_000, help="rows read per batch")
    audit.add_argument("--dry-run", action="store_true", help="print the pairs, queue nothing")
    identity_sub.add_parser(
        "reindex", help="rebuild blocking keys and audit rows of every stored Patient"
    )
    queue = identity_sub.add_parser("queue", help="list the review queue, highest score first")
    queue.add_argument(
        "--status",
        action="append",
        choices=("open", "linked", "merged", "not-duplicate", "resolved"),
        help="repeat for several (default: open)",
    )
    queue.add_argument("--limit", type=int, default=100)
    queue.add_argument("--format", choices=("text", "json"), default="text")
    identity.set_defaults(func=_cmd_identity)

    from parcours.hl7v2 import cli as hl7_cli

    hl7_sub = hl7_cli.register(sub, open_store=_open_store)
    listen = hl7_sub.add_parser("listen", help="run the MLLP listener alone (no web server)")
    listen.add_argument("--host", default="127.0.0.1")
    listen.add_argument("--port", type=int, default=2575)
    listen.set_defaults(func=_cmd_hl7_listen)
    from parcours.directory import cli as directory_cli

    directory_cli.register(sub)
    from parcours.coordination import cli as coordination_cli

    coordination_cli.register(sub)
    from parcours.audit import cli as audit_cli

    audit_cli.register(sub)
    from parcours.auth import cli as auth_cli

    auth_cli.register(sub)
    from parcours.notify.delivery import cli as notify_cli

    notify_cli.register(sub)
    from parcours.demo import hospital

    hospital.register(sub)
    from parcours.pathways import cli as pathways_cli

    pathways_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
