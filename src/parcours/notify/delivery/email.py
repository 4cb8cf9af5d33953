"""The e-mail channel: a short French message to the member's MSSanté address over SMTP.

MSSanté carries health data, but a notification must not turn a mailbox into a second record:
the subject names the event type only (a subject line shows in every list and notification
banner), and the body holds the minimum a professional needs to act — event type, date,
establishment, the patient's initials and birth year, and a link to the patient page where the
platform's access policy applies. Never the name, the INS or a diagnosis.

``Message-ID`` is derived from the notification id, so a resent message (at-least-once) is the
same message to the receiving MTA and mail client, which drop duplicates by that header.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from parcours.config import Settings
from parcours.notify.delivery.resthook import IDEMPOTENCY_HEADER
from parcours.notify.model import (
    CODE_ADM,
    CODE_DCD,
    CODE_DOC,
    CODE_NOT,
    CODE_SOR,
    CODE_URG,
    SYSTEM_EVENEMENT_PARCOURS,
    SYSTEM_TRE_R254,
)

__all__ = [
    "EmailFailed",
    "compose_email",
    "event_label",
    "message_id",
    "patient_summary",
    "send_email",
]

_PARIS: Final = ZoneInfo("Europe/Paris")
_LABELS: Final = {
    CODE_ADM: "admission",
    CODE_SOR: "sortie",
    CODE_DOC: "nouveau document",
    CODE_NOT: "nouvelle note",
}
# Parcours refinements of a TRE_R254 code (see parcours.notify.model).
_REFINED: Final = {CODE_URG: "passage aux urgences", CODE_DCD: "décès"}


class EmailFailed(Exception):
    """The relay refused the message or could not be reached; the outbox retries."""


def event_label(codes: Sequence[tuple[str, str]]) -> str:
    """ "admission", "passage aux urgences"… from the event-type codings."""
    for system, code in codes:
        if system == SYSTEM_EVENEMENT_PARCOURS and code in _REFINED:
            return _REFINED[code]
    for system, code in codes:
        if system == SYSTEM_TRE_R254 and code in _LABELS:
            return _LABELS[code]
    return "événement"


def patient_summary(patient: Mapping[str, Any] | None) -> str:
    """Initials and birth year ("J. M., né(e) en 1952"): never the name or an identifier."""
    if not patient:
        return "patient de votre cercle de soins"
    initials = ""
    for name in (patient.get("name") or [])[:1]:
        given = [g for g in name.get("given") or [] if isinstance(g, str) and g]
        family = name.get("family")
        parts = [given[0][0]] if given else []
        if isinstance(family, str) and family:
            parts.append(family[0])
        initials = " ".join(f"{p.upper()}." for p in parts)
    birth = patient.get("birthDate")
    year = birth[:4] if isinstance(birth, str) and len(birth) >= 4 else ""
    if initials and year:
        return f"{initials}, né(e) en {year}"
    return initials or (f"né(e) en {year}" if year else "patient de votre cercle de soins")


def _on_screen(value: str | None) -> str:
    """A FHIR dateTime as a French reader expects it (Europe/Paris), or as given if partial."""
    if not value:
        return "date non précisée"
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is None:
        return when.strftime("%d/%m/%Y %H:%M")
    return when.astimezone(_PARIS).strftime("%d/%m/%Y à %H:%M")


def message_id(notification_id: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "parcours.localhost"
    return f"<{notification_id}@{domain}>"


def compose_email(
    *,
    notification_id: str,
    to: str,
    settings: Settings,
    codes: Sequence[tuple[str, str]],
    event_time: str | None,
    establishment: str | None,
    patient_id: str | None,
    patient: Mapping[str, Any] | None,
    sent_at_ms: int,
) -> EmailMessage:
    label = event_label(codes)
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Subject"] = f"[Parcours] Notification : {label}"
    msg["Message-ID"] = message_id(notification_id, settings.smtp_from)
    # The notification's time, not the sending time: a retry is the same message.
    msg["Date"] = format_datetime(datetime.fromtimestamp(sent_at_ms / 1000, tz=_PARIS))
    msg[IDEMPOTENCY_HEADER] = notification_id
    lines = [
        "Bonjour,",
        "",
        "Un événement concerne un patient de votre cercle de soins :",
        "",
        f"Événement : {label}",
        f"Date : {_on_screen(event_time)}",
        f"Établissement : {establishment or 'non précisé'}",
        f"Patient : {patient_summary(patient)}",
        "",
    ]
    if patient_id:
        lines += [f"Consulter le dossier : {settings.base_url}/patients/{patient_id}", ""]
    lines += [
        "Ce message ne contient volontairement aucune donnée d'identité : connectez-vous à "
        "Parcours pour en savoir plus.",
        "",
        "-- ",
        "Parcours, plateforme régionale de coordination des parcours",
    ]
    msg.set_content("\n".join(lines))
    return msg


def send_email(msg: EmailMessage, settings: Settings) -> None:
    """Hand the message to the relay (``PARCOURS_SMTP_HOST``); ``EmailFailed`` otherwise."""
    if not settings.smtp_host:
        raise EmailFailed("PARCOURS_SMTP_HOST is not set: e-mail notifications cannot be sent")
    timeout = settings.rest_hook_timeout_seconds
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            refused = smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise EmailFailed(
            f"SMTP {settings.smtp_host}:{settings.smtp_port}: {type(exc).__name__}: {exc}"
        ) from exc
    if refused:
        raise EmailFailed(f"SMTP relay refused recipient(s): {', '.join(refused)}")
