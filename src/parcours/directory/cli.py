"""`parcours directory …`: load the Annuaire Santé into the directory."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register"]

# Rejected lines printed in full; the rest are counted (a national file can have thousands).
_SHOWN_REJECTIONS = 50


def _cmd_import(args: argparse.Namespace) -> int:
    from parcours.config import ConfigError, load_settings
    from parcours.platform import build_platform
    from parcours.store.schema_version import SchemaBehind, ensure_schema

    from .annuaire_csv import CsvFormatError
    from .importer import import_directory

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SystemExit(f"parcours: configuration error: {exc}") from None
    departements = (
        [d for d in args.departement.split(",") if d.strip()] if args.departement else None
    )
    platform = build_platform(settings)
    try:
        ensure_schema(platform.store.engine)
        platform.load_custom_search_parameters()
        report = import_directory(
            platform.store,
            args.file,
            format=args.format,
            departements=departements,
            batch_size=args.batch_size,
        )
    except SchemaBehind as exc:
        print(f"parcours directory: {exc}", file=sys.stderr)
        return 2
    except (OSError, CsvFormatError, ValueError) as exc:
        print(f"parcours directory: {exc}", file=sys.stderr)
        return 1
    finally:
        platform.close()
    print(report.summary())
    for rejection in report.rejected[:_SHOWN_REJECTIONS]:
        print(f"  line {rejection.line}: {rejection.reason}")
    if len(report.rejected) > _SHOWN_REJECTIONS:
        print(f"  … and {len(report.rejected) - _SHOWN_REJECTIONS} more rejected lines")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``directory import`` to the ``parcours`` command line."""
    directory: argparse.ArgumentParser = subparsers.add_parser(
        "directory", help="directory of professionals and structures (Annuaire Santé)"
    )
    sub = directory.add_subparsers(dest="directory_command", required=True)
    load = sub.add_parser(
        "import",
        help="load an Annuaire Santé extract (public CSV or FHIR export), idempotently",
    )
    load.add_argument("file", help="PS_LibreAcces_Personne_activite_*.txt, a Bundle or NDJSON")
    load.add_argument("--format", choices=("csv", "fhir", "auto"), default="auto")
    load.add_argument(
        "--departement",
        default=None,
        help="only these départements, comma-separated (e.g. 21,25,39,58,70,71,89,90)",
    )
    load.add_argument("--batch-size", type=int, default=500, help="resources per transaction")
    load.set_defaults(func=_cmd_import)
    return directory
