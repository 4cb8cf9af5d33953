"""`parcours …`: the one command line of the platform."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from parcours.config import ConfigError, Settings, load_settings

__all__ = ["main"]


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise SystemExit(f"parcours: configuration error: {exc}") from None


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
                return 0
            print(f"parcours demo: {exc}", file=sys.stderr)
            return 1
        print(f"demo loaded: {summary}")
    except SchemaBehind as exc:
        print(f"parcours demo: {exc}", file=sys.stderr)
        return 2
    finally:
        platform.close()
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from parcours.serve import serve

    return serve(_settings(), host=args.host, port=args.port, mllp_port=args.mllp_port)


def _cmd_outbox(args: argparse.Namespace) -> int:
    from parcours.serve import run_outbox_worker

    return run_outbox_worker(_settings(), once=args.once)


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
