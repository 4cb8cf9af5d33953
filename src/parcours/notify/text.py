"""The short French texts of declarations and notifications (inbox line, e-mail subject)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from parcours.notify.model import CODE_ADM, CODE_DCD, CODE_DOC, CODE_NOT, CODE_SOR, CODE_URG

__all__ = ["event_label", "payload_text"]

_PARIS = ZoneInfo("Europe/Paris")
# Most specific first: a Parcours code refines its TRE_R254 code.
_LABELS = (
    (CODE_URG, "Passage aux urgences"),
    (CODE_DCD, "Décès"),
    (CODE_ADM, "Admission"),
    (CODE_SOR, "Sortie"),
    (CODE_DOC, "Nouveau document"),
    (CODE_NOT, "Nouvelle note"),
)


def event_label(codes: Iterable[str]) -> str:
    present = set(codes)
    return next((label for code, label in _LABELS if code in present), "Événement")


def _when(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if len(value) <= 10:
        return moment.strftime("%d/%m/%Y")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    # Time is UTC in storage, Europe/Paris on screen.
    return moment.astimezone(_PARIS).strftime("%d/%m/%Y à %H:%M")


def payload_text(label: str, when: str | None, establishment: str | None) -> str:
    text = label
    if when:
        text += f" le {_when(when)}"
    if establishment:
        text += f" — {establishment}"
    return text
