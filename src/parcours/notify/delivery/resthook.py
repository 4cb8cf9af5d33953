"""The rest-hook channel: an R4 Subscription notification as the Subscriptions R5 Backport IG
shapes it, POSTed to the subscriber's endpoint.

Body: a ``history`` Bundle (profile ``backport-subscription-notification-r4``) whose first entry
is the ``Parameters`` SubscriptionStatus (``backport-subscription-status-r4``: subscription,
topic, status, type ``event-notification``, events-since-subscription-start, one
notification-event with event-number, timestamp and focus = the NdE event declaration), then
the declaration itself when the subscription asked for ``full-resource``.

Every byte of the body is derived from the notification (ids, numbers, timestamps), so a retry
sends the same request again; with the ``X-Parcours-Notification-Id`` header a receiver drops
the duplicates that at-least-once delivery produces.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

import httpx

from parcours.notify.model import EXT_REST_HOOK_HEADER
from parcours.store.clock import instant

__all__ = [
    "EXT_PAYLOAD_CONTENT",
    "IDEMPOTENCY_HEADER",
    "PROFILE_NOTIFICATION_R4",
    "PROFILE_STATUS_R4",
    "RestHookFailed",
    "hook_headers",
    "notification_bundle",
    "payload_content",
    "post_notification",
]

_BACKPORT: Final = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
PROFILE_STATUS_R4: Final = _BACKPORT + "backport-subscription-status-r4"
PROFILE_NOTIFICATION_R4: Final = _BACKPORT + "backport-subscription-notification-r4"
EXT_PAYLOAD_CONTENT: Final = _BACKPORT + "backport-payload-content"
IDEMPOTENCY_HEADER: Final = "X-Parcours-Notification-Id"
FHIR_JSON: Final = "application/fhir+json"
# Headers a subscriber may not set: they belong to the transport or to our idempotency key.
_RESERVED = frozenset({"content-type", "content-length", "host", IDEMPOTENCY_HEADER.lower()})


class RestHookFailed(Exception):
    """The receiver could not be reached or did not answer 2xx; the outbox retries."""


def payload_content(subscription: Mapping[str, Any] | None) -> str:
    """``empty`` / ``id-only`` / ``full-resource`` as the Backport IG reads an R4 Subscription.

    The extension on ``channel.payload`` decides; a payload MIME type without it is the R4
    meaning ("send the resource"); no Subscription or no payload: the id only, the least data.
    """
    if not subscription:
        return "id-only"
    payload = (subscription.get("channel") or {}).get("_payload") or {}
    for ext in payload.get("extension") or []:
        if ext.get("url") == EXT_PAYLOAD_CONTENT and ext.get("valueCode"):
            return str(ext["valueCode"])
    return "full-resource" if (subscription.get("channel") or {}).get("payload") else "id-only"


def hook_headers(
    notification: Mapping[str, Any], subscription: Mapping[str, Any] | None
) -> dict[str, str]:
    """``channel.header`` values ("Name: value"), from the copy the manager put on the
    recipient, else from the Subscription itself."""
    raw: list[str] = []
    for recipient in (notification.get("recipient") or [])[:1]:
        raw += [
            str(e["valueString"])
            for e in recipient.get("extension") or []
            if e.get("url") == EXT_REST_HOOK_HEADER and e.get("valueString")
        ]
    if not raw and subscription:
        raw = [str(h) for h in (subscription.get("channel") or {}).get("header") or []]
    headers: dict[str, str] = {}
    for line in raw:
        name, sep, value = line.partition(":")
        name = name.strip()
        if sep and name and name.lower() not in _RESERVED:
            headers[name] = value.strip()
    return headers


def notification_bundle(
    *,
    notification_id: str,
    subscription_url: str | None,
    subscription_display: str | None,
    topic: str | None,
    event_number: int,
    timestamp_ms: int,
    focus_url: str,
    focus: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The Backport IG R4 notification Bundle (``focus`` given: full-resource)."""
    status_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"parcours:{notification_id}:status"))
    subscription: dict[str, Any] = {}
    if subscription_url:
        subscription["reference"] = subscription_url
    if subscription_display:
        subscription["display"] = subscription_display
    parameters: list[dict[str, Any]] = [{"name": "subscription", "valueReference": subscription}]
    if topic:
        parameters.append({"name": "topic", "valueCanonical": topic})
    parameters += [
        {"name": "status", "valueCode": "active"},
        {"name": "type", "valueCode": "event-notification"},
        {"name": "events-since-subscription-start", "valueString": str(event_number)},
        {
            "name": "notification-event",
            "part": [
                {"name": "event-number", "valueString": str(event_number)},
                {"name": "timestamp", "valueInstant": instant(timestamp_ms)},
                {"name": "focus", "valueReference": {"reference": focus_url}},
            ],
        },
    ]
    status_url = f"{subscription_url}/$status" if subscription_url else "Subscription/$status"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:{status_id}",
            "resource": {
                "resourceType": "Parameters",
                "id": status_id,
                "meta": {"profile": [PROFILE_STATUS_R4]},
                "parameter": parameters,
            },
            # A history Bundle needs request/response (bdl-3, bdl-4); the IG fills them as a
            # call to $status.
            "request": {"method": "GET", "url": status_url},
            "response": {"status": "200"},
        }
    ]
    if focus is not None:
        entries.append(
            {
                "fullUrl": focus_url,
                "resource": dict(focus),
                "request": {"method": "POST", "url": str(focus.get("resourceType"))},
                "response": {"status": "201"},
            }
        )
    return {
        "resourceType": "Bundle",
        # The idempotency key again: a receiver that stores Bundles by id dedupes for free.
        "id": notification_id,
        "meta": {"profile": [PROFILE_NOTIFICATION_R4]},
        "type": "history",
        "timestamp": instant(timestamp_ms),
        "entry": entries,
    }


def post_notification(
    endpoint: str,
    bundle: Mapping[str, Any],
    *,
    notification_id: str,
    headers: Mapping[str, str],
    timeout: float,
    client: httpx.Client | None = None,
) -> int:
    """POST the Bundle; the HTTP status on 2xx, else ``RestHookFailed``."""
    if not endpoint.startswith(("http://", "https://")):
        raise RestHookFailed(f"rest-hook endpoint {endpoint[:200]!r} is not an http(s) URL")
    sent = {
        **headers,
        "Content-Type": FHIR_JSON,
        "Accept": FHIR_JSON,
        IDEMPOTENCY_HEADER: notification_id,
    }
    try:
        if client is not None:
            response = client.post(endpoint, json=bundle, headers=sent, timeout=timeout)
        else:
            response = httpx.post(endpoint, json=bundle, headers=sent, timeout=timeout)
    except httpx.HTTPError as exc:
        raise RestHookFailed(f"POST {endpoint[:200]}: {type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise RestHookFailed(f"POST {endpoint[:200]}: HTTP {response.status_code}")
    return response.status_code
