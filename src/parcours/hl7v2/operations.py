"""Operator functions on the inbox, called by ``parcours hl7 …`` and usable from code."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from parcours.hl7v2 import inbox
from parcours.hl7v2.inbox import InboxRow, MessageFilter
from parcours.hl7v2.receiver import Receiver, ReplayResult
from parcours.hl7v2.resolver import IdentityService
from parcours.hl7v2.settings import Hl7Settings
from parcours.store.repository import Store

__all__ = ["MessageFilter", "discard", "list_messages", "purge", "replay"]


def list_messages(
    store: Store, flt: MessageFilter | None = None, *, limit: int = 100, offset: int = 0
) -> list[InboxRow]:
    return inbox.list_messages(store, flt, limit=limit, offset=offset)


def replay(
    store: Store,
    selection: Iterable[int] | MessageFilter,
    *,
    settings: Hl7Settings | None = None,
    identity: IdentityService | None = None,
) -> list[ReplayResult]:
    """Apply again the selected ``received``/``failed`` messages, oldest first.

    ``selection`` is a list of inbox ids or a filter; with a filter only received and
    failed rows are taken. Rows in other states are reported unchanged.
    """
    if isinstance(selection, MessageFilter):
        statuses = selection.statuses or ("received", "failed")
        flt = dataclasses.replace(selection, statuses=tuple(statuses))
        ids = inbox.ids_matching(store, flt)
    else:
        ids = list(selection)
    return Receiver(store, settings, identity=identity).replay(ids)


def discard(store: Store, ids: Iterable[int], reason: str) -> int:
    """Close failed/received rows by hand (status ``ignored``, reason kept); returns count."""
    count = 0
    with store.begin() as tx:
        for row_id in ids:
            row = inbox.get(tx.conn, row_id, lock=True)
            if row is None or row.status not in ("failed", "received"):
                continue
            note = f"discarded by operator: {reason[:200]}"
            error = f"{row.error}; {note}" if row.error else note
            inbox.mark(tx.conn, row_id, status="ignored", error=error)
            count += 1
    return count


def purge(store: Store, older_than_days: int) -> int:
    return inbox.purge(store, older_than_days)
