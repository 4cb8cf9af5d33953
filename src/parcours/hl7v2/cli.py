"""``parcours hl7 …`` sub-commands, as functions over parsed arguments.

Wiring (in ``parcours.cli.build_parser``)::

    from parcours.hl7v2 import cli as hl7_cli
    hl7_cli.register(sub, open_store=lambda: build_platform(_settings()).store)

which sets ``func`` like the other commands (the store's engine is disposed afterwards);
or call ``hl7_cli.run(args, store)`` yourself.

Output is JSON lines (one per message) so it can be piped to ``jq``; it never contains the
message text unless ``show --raw`` is asked for explicitly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TextIO

from parcours.hl7v2 import inbox, operations
from parcours.hl7v2.inbox import MessageFilter
from parcours.hl7v2.settings import Hl7Settings
from parcours.store.repository import Store

__all__ = ["build_filter", "register", "run"]


def _add_filter(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", nargs="*", type=int, help="inbox ids")
    p.add_argument("--status", action="append", choices=inbox.STATUSES, default=[])
    p.add_argument("--sender", help="MSH-3 or MSH-3@MSH-4")
    p.add_argument("--control-id", help="MSH-10")
    p.add_argument("--trigger", help="e.g. A01")
    p.add_argument("--patient", help="IPP (value or system|value)")
    p.add_argument("--error", help="substring of the error text")
    p.add_argument("--since", help="ISO date/time (UTC) or a number of hours ago, e.g. 24h")
    p.add_argument("--until", help="ISO date/time (UTC)")


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    open_store: Callable[[], Store] | None = None,
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``hl7`` and its sub-commands; with ``open_store``, also ``func`` (args -> exit code).

    Returns the sub-command group, so the caller can add commands that need more than a store
    (``hl7 listen``)."""
    hl7 = subparsers.add_parser("hl7", help="HL7 v2 inbox: list, show, replay, discard, purge")
    if open_store is not None:

        def _func(args: argparse.Namespace) -> int:
            store = open_store()
            try:
                return run(args, store, settings=Hl7Settings.from_env(os.environ))
            finally:
                store.engine.dispose()

        hl7.set_defaults(func=_func)
    sub = hl7.add_subparsers(dest="hl7_command", required=True)
    p = sub.add_parser("messages", help="list received messages (newest last)")
    _add_filter(p)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--stats", action="store_true", help="only the count per status")
    p = sub.add_parser("show", help="one message with its outcome")
    p.add_argument("id", type=int)
    p.add_argument("--raw", action="store_true", help="also print the message text")
    p = sub.add_parser("replay", help="apply again failed/received messages")
    _add_filter(p)
    p = sub.add_parser("discard", help="close failed messages that will never apply")
    p.add_argument("ids", nargs="+", type=int)
    p.add_argument("--reason", required=True)
    p = sub.add_parser("purge", help="delete applied/ignored/rejected messages past retention")
    p.add_argument("--older-than-days", type=int, default=None)
    return sub


def _time(value: str | None) -> int | None:
    if not value:
        return None
    if value.endswith("h") and value[:-1].isdigit():
        moment = datetime.now(UTC) - timedelta(hours=int(value[:-1]))
    else:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def build_filter(args: argparse.Namespace) -> MessageFilter:
    return MessageFilter(
        ids=tuple(args.ids or ()),
        statuses=tuple(args.status or ()),
        sender=args.sender,
        control_id=args.control_id,
        trigger=args.trigger,
        patient_key=args.patient,
        error_contains=args.error,
        since_ms=_time(args.since),
        until_ms=_time(args.until),
    )


def run(
    args: argparse.Namespace,
    store: Store,
    *,
    settings: Hl7Settings | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Execute ``args.hl7_command``; returns the process exit code."""
    settings = settings or Hl7Settings()
    command = args.hl7_command
    if command == "messages":
        if args.stats:
            print(json.dumps(inbox.count_by_status(store)), file=out)
            return 0
        for row in operations.list_messages(
            store, build_filter(args), limit=args.limit, offset=args.offset
        ):
            print(json.dumps(row.summary(), ensure_ascii=False), file=out)
        return 0
    if command == "show":
        with store.begin(readonly=True) as tx:
            found = inbox.get(tx.conn, args.id)
        if found is None:
            print(json.dumps({"error": f"no message {args.id}"}), file=out)
            return 1
        summary = found.summary()
        if args.raw:
            codec = "utf-8" if "UTF" in found.charset.upper() else "iso8859-15"
            summary["raw"] = found.raw.decode(codec, errors="replace").replace("\r", "\n")
        print(json.dumps(summary, ensure_ascii=False, indent=2), file=out)
        return 0
    if command == "replay":
        flt = build_filter(args)
        selection = list(flt.ids) if flt.ids and flt == MessageFilter(ids=flt.ids) else flt
        results = operations.replay(store, selection, settings=settings)
        for r in results:
            print(
                json.dumps({"id": r.id, "status": r.status, "ack": r.ack_code, "error": r.error}),
                file=out,
            )
        return 0 if all(r.status in ("applied", "ignored") for r in results) else 2
    if command == "discard":
        count = operations.discard(store, args.ids, args.reason)
        print(json.dumps({"discarded": count}), file=out)
        return 0
    if command == "purge":
        days = args.older_than_days if args.older_than_days is not None else settings.retention_days
        print(json.dumps({"purged": operations.purge(store, days)}), file=out)
        return 0
    print(json.dumps({"error": f"unknown hl7 command {command}"}), file=out)
    return 1
