"""`parcours notify …`: deliveries and the manual retry of dead letters.

``register`` returns the ``notify`` sub-command parsers so that other parts of
``parcours.notify`` can add their commands to the same group.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from parcours.cli_support import on_platform

if TYPE_CHECKING:
    from parcours.platform import Platform

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    return on_platform(lambda platform: int(args.notify_func(args, platform)), "notify")


def _deliveries(args: argparse.Namespace, platform: Platform) -> int:
    from parcours.notify.delivery.admin import deliveries

    rows = deliveries(platform.store, failed=args.failed, limit=args.limit)
    if args.format == "json":
        print(json.dumps([r.as_json() for r in rows], indent=1, ensure_ascii=False))
        return 0
    for row in rows:
        data = row.as_json()
        error = (row.last_error or "").replace("\n", " ")[:160]
        print(
            f"{row.notification_id}\t{row.state}\t{row.channel}\t{row.endpoint}\t"
            f"attempts={row.attempts}\t{data['at'] or ''}\t{error}"
        )
    if not rows:
        print("no failed delivery" if args.failed else "no delivery yet", file=sys.stderr)
    return 0


def _retry(args: argparse.Namespace, platform: Platform) -> int:
    from parcours.notify.delivery.admin import retry_notifications

    if args.all == bool(args.ids):
        print("parcours notify retry: give notification ids or --all", file=sys.stderr)
        return 1
    retried = retry_notifications(platform.store, None if args.all else list(args.ids))
    for notification_id in retried:
        print(f"{notification_id}\tback in line")
    print(f"{len(retried)} notification(s) put back in line", file=sys.stderr)
    return 0


def register(subparsers: Any) -> Any:
    """Add the ``notify`` command group; returns its sub-parsers."""
    notify = subparsers.add_parser("notify", help="event notifications (NdE): deliveries")
    notify_sub = notify.add_subparsers(dest="notify_command", required=True)
    listing = notify_sub.add_parser(
        "deliveries", help="failing deliveries (attempts, last error), then the delivered ones"
    )
    listing.add_argument(
        "--failed", action="store_true", help="only those retrying or parked as dead letters"
    )
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(func=_run, notify_func=_deliveries)
    retry = notify_sub.add_parser(
        "retry", help="put dead-letter notifications back in line (after fixing the cause)"
    )
    retry.add_argument("ids", nargs="*", metavar="ID", help="notification id (ntf-…)")
    retry.add_argument("--all", action="store_true", help="every dead-letter notification")
    retry.set_defaults(func=_run, notify_func=_retry)
    return notify_sub
