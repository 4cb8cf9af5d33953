"""`parcours pathways …`: load, list, export definitions; run the overdue sweep."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _with_platform(
    action: Callable[[Any, argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from parcours.cli_support import settings_or_exit
        from parcours.errors import ParcoursError
        from parcours.platform import build_platform
        from parcours.store.schema_version import SchemaBehind, ensure_schema

        platform = build_platform(settings_or_exit())
        try:
            ensure_schema(platform.store.engine)
            platform.load_custom_search_parameters()
            return action(platform, args)
        except SchemaBehind as exc:
            print(f"parcours pathways: {exc}", file=sys.stderr)
            return 2
        except ParcoursError as exc:
            print(f"parcours pathways: {exc}", file=sys.stderr)
            return 1
        finally:
            platform.close()

    return run


def _load(platform: Any, args: argparse.Namespace) -> int:
    from parcours.pathways import load_library, load_yaml_file, save_definition

    if args.library:
        for pathway, version, outcome in load_library(platform.store):
            print(f"{pathway} {version}: {outcome}")
    if not args.files and not args.library:
        print("parcours pathways load: give YAML files or --library", file=sys.stderr)
        return 1
    # Check every file before storing any, so a batch is all or nothing.
    definitions = [load_yaml_file(Path(name)) for name in args.files]
    with platform.store.begin() as tx:
        outcomes = [save_definition(tx, d) for d in definitions]
    for d, outcome in zip(definitions, outcomes, strict=True):
        print(f"{d.id} {d.version}: {outcome} (PlanDefinition/{d.id}-{d.version})")
    return 0


def _list(platform: Any, args: argparse.Namespace) -> int:
    from parcours.pathways import list_plans

    with platform.store.begin(readonly=True) as tx:
        plans = list_plans(tx, include_retired=args.all)
    for plan in plans:
        print(f"{plan.plan_id}\t{plan.status}\t{plan.title}")
    return 0


def _export(platform: Any, args: argparse.Namespace) -> int:
    from parcours.pathways import definition_of, dump_yaml, resolve_plan

    with platform.store.begin(readonly=True) as tx:
        plan = resolve_plan(tx, args.plan)
        text = dump_yaml(definition_of(tx, plan))
    if args.fhir:
        text = json.dumps(plan, indent=1, ensure_ascii=False) + "\n"
    sys.stdout.write(text)
    return 0


def _sweep(platform: Any, args: argparse.Namespace) -> int:
    from parcours.pathways import sweep_overdue
    from parcours.store.clock import now_ms, parse_instant_ms

    now = parse_instant_ms(args.at) if args.at else now_ms()
    report = sweep_overdue(platform.store, now, batch_size=args.batch_size)
    print(report.summary())
    return 0


def _schema(args: argparse.Namespace) -> int:
    from parcours.pathways import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0


def _check(args: argparse.Namespace) -> int:
    from parcours.pathways import DefinitionError, load_yaml_file

    failed = 0
    for name in args.files:
        try:
            d = load_yaml_file(Path(name))
        except DefinitionError as exc:
            print(exc, file=sys.stderr)
            failed += 1
        else:
            print(f"{name}: {d.id} {d.version} is valid")
    return 1 if failed else 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``pathways load|list|export|sweep|check|schema`` to the command line."""
    pathways: argparse.ArgumentParser = subparsers.add_parser(
        "pathways", help="pathway definitions (YAML) and the overdue-task sweep"
    )
    sub = pathways.add_subparsers(dest="pathways_command", required=True)
    load = sub.add_parser("load", help="store pathway versions from YAML files (idempotent)")
    load.add_argument("files", nargs="*", help="pathway YAML files")
    load.add_argument("--library", action="store_true", help="also the shipped library")
    load.set_defaults(func=_with_platform(_load))
    listing = sub.add_parser("list", help="stored pathway versions")
    listing.add_argument("--all", action="store_true", help="retired versions too")
    listing.set_defaults(func=_with_platform(_list))
    export = sub.add_parser("export", help="print a stored pathway as YAML (or its FHIR)")
    export.add_argument("plan", help="pathway id, PlanDefinition id or url|version")
    export.add_argument("--fhir", action="store_true", help="the PlanDefinition JSON instead")
    export.set_defaults(func=_with_platform(_export))
    sweep = sub.add_parser("sweep", help="send the reminders and escalations now due")
    sweep.add_argument("--at", default=None, help="as of this instant (ISO 8601), not now")
    sweep.add_argument("--batch-size", type=int, default=200, help="tasks per transaction")
    sweep.set_defaults(func=_with_platform(_sweep))
    check = sub.add_parser("check", help="validate YAML files without storing them")
    check.add_argument("files", nargs="+")
    check.set_defaults(func=_check)
    schema = sub.add_parser("schema", help="print the JSON Schema of the YAML format")
    schema.set_defaults(func=_schema)
    return pathways
