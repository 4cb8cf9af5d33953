"""`parcours coordination …`: figures of a structure, SLA sweep, install the intake form."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parcours.platform import Platform

__all__ = ["register"]


def _report(args: argparse.Namespace) -> int:
    from parcours.cli_support import on_platform

    from .report import coordination_report, period_ms

    organization = args.organization
    if not organization.startswith("Organization/"):
        organization = f"Organization/{organization}"

    def run(platform: Platform) -> int:
        start, end = period_ms(args.start, args.end)
        with platform.store.begin(readonly=True) as tx:
            tx.read("Organization", organization.split("/", 1)[1])
            figures = coordination_report(tx, organization, start, end).as_dict()
        if args.format == "json":
            print(json.dumps(figures, ensure_ascii=False, indent=2))
        else:
            for key, value in figures.items():
                print(f"{key}: {value if value is not None else '-'}")
        return 0

    return on_platform(run, "coordination report")


def _sweep(args: argparse.Namespace) -> int:
    from parcours.cli_support import on_platform

    from .sla import sweep

    def run(platform: Platform) -> int:
        result = sweep(platform.store)
        print(f"examined {result.examined} open requests; flags changed on {len(result.changed)}")
        for ref, flags in sorted(result.changed.items()):
            print(f"  {ref}: {', '.join(flags) or 'on time'}")
        return 0

    return on_platform(run, "coordination sweep")


def _install(args: argparse.Namespace) -> int:
    from parcours.cli_support import on_platform

    from .conformance import install_conformance

    def run(platform: Platform) -> int:
        for ref in install_conformance(platform.store):
            print(f"installed {ref}")
        return 0

    return on_platform(run, "coordination install")


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``coordination report|sweep|install`` to the ``parcours`` command line."""
    group: argparse.ArgumentParser = subparsers.add_parser(
        "coordination", help="coordination requests (Stella): figures, SLA sweep, intake form"
    )
    sub = group.add_subparsers(dest="coordination_command", required=True)
    report = sub.add_parser("report", help="a structure's figures for a period")
    report.add_argument(
        "--organization", required=True, help="Organization id (or Organization/id)"
    )
    report.add_argument("--from", dest="start", required=True, help="first day (YYYY-MM-DD)")
    report.add_argument("--to", dest="end", required=True, help="last day, included")
    report.add_argument("--format", choices=("text", "json"), default="text")
    report.set_defaults(func=_report)
    sweep = sub.add_parser("sweep", help="flag the open requests past their due times")
    sweep.set_defaults(func=_sweep)
    install = sub.add_parser("install", help="store the intake Questionnaire and CodeSystems")
    install.set_defaults(func=_install)
    return group
