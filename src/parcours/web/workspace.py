"""What a page needs besides FHIR interactions: the user's own references and inbox.

The user's references (their Practitioner, active PractitionerRoles and organisations) are
what the access policy computes for them (``access_for``): directory data, not patient data.
The inbox is read with ``parcours.notify.delivery.inbox``, the same functions as
``/notify/inbox``, which only ever return what was addressed to this person.
"""

from __future__ import annotations

from dataclasses import dataclass

from parcours.notify.delivery.inbox import (
    InboxItem,
    inbox_items,
    inbox_targets,
    mark_all_read,
    mark_read,
    unread_count,
)
from parcours.security.policy import access_for
from parcours.security.principal import Principal
from parcours.store import Store

__all__ = ["Inbox", "MyRefs", "mark_inbox_read", "my_inbox", "my_refs"]


@dataclass(frozen=True, slots=True)
class MyRefs:
    members: tuple[str, ...]  # Practitioner/… and active PractitionerRole/…
    organizations: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return (*self.members, *self.organizations)


@dataclass(frozen=True, slots=True)
class Inbox:
    unread: int
    items: list[InboxItem]


def my_refs(store: Store, user: Principal) -> MyRefs:
    with store.begin(readonly=True) as tx:
        access = access_for(tx, user)
        return MyRefs(access.member_keys, access.org_keys)


def my_inbox(
    store: Store, user: Principal, *, limit: int = 50, patient: str | None = None
) -> Inbox:
    with store.begin(readonly=True) as tx:
        targets = inbox_targets(tx, user)
        items = inbox_items(tx, targets, user.subject, limit=limit if patient is None else 200)
        unread = unread_count(tx, targets, user.subject)
    if patient is not None:
        items = [i for i in items if i.patient == patient][:limit]
    return Inbox(unread, items)


def mark_inbox_read(store: Store, user: Principal, notification_id: str | None) -> int:
    """Mark one notification (or all, with None) read for this user; how many were marked."""
    with store.begin() as tx:
        targets = inbox_targets(tx, user)
        if notification_id is None:
            return mark_all_read(tx, targets, user.subject)
        return 1 if mark_read(tx, targets, user.subject, notification_id) else 0
