"""Acknowledgements: original mode (AA/AE/AR) and enhanced mode (CA/CE/CR + application ACK).

Original mode when MSH-15 and MSH-16 are both empty: one ACK whose MSA-1 is AA, AE or AR.
Enhanced mode otherwise: an accept ACK (CA/CE/CR) when MSH-15 asks for one, then an
application ACK (AA/AE/AR) when MSH-16 asks for one, both on the same connection. An empty
MSH-15 or MSH-16 next to a valued one means "not requested" (NE): the ANS example
``Consentement_Positif_DMP`` sends only MSH-16=AL and expects a single application ACK.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime

from parcours.hl7v2.er7 import PARIS, Encoding, Message, header_fields
from parcours.hl7v2.errors import TEXTS, Problem

__all__ = ["AckContext", "Outcome", "build_responses", "context_from_bytes", "context_from_message"]

SUPPORTED_VERSIONS = ("2.5", "2.5.1")
_counter = itertools.count(1)
_counter_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class AckContext:
    """What the ACK needs from the received header (whatever could be read of it)."""

    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    trigger: str = ""
    processing_id: str = "P"
    version_raw: str = ""
    charset_raw: str = ""
    codec: str = "latin-1"
    accept_ack_type: str = ""
    application_ack_type: str = ""

    @property
    def enhanced(self) -> bool:
        return bool(self.accept_ack_type or self.application_ack_type)


def context_from_message(msg: Message) -> AckContext:
    msh = msg.msh
    return AckContext(
        sending_application=msh.raw(3),
        sending_facility=msh.raw(4),
        receiving_application=msh.raw(5),
        receiving_facility=msh.raw(6),
        control_id=msh.get(10),
        trigger=msh.get(9, 2),
        processing_id=msh.get(11) or "P",
        version_raw=msh.raw(12),
        charset_raw=msh.first(18).raw,
        codec=msg.charset,
        accept_ack_type=msh.get(15).upper(),
        application_ack_type=msh.get(16).upper(),
    )


def context_from_bytes(data: bytes) -> AckContext:
    """Best effort for a frame we could not parse: Latin-1 never fails to decode."""
    f = header_fields(data)

    def at(n: int) -> str:
        return f[n] if 0 < n < len(f) else ""

    def comp(value: str, i: int) -> str:
        parts = value.split("^")
        return parts[i - 1] if i <= len(parts) else ""

    return AckContext(
        sending_application=at(3)[:227],
        sending_facility=at(4)[:227],
        receiving_application=at(5)[:227],
        receiving_facility=at(6)[:227],
        control_id=comp(at(10), 1)[:199],
        trigger=comp(at(9), 2)[:3],
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of receiving one message.

    ``accept_code`` is the commit outcome (CA: stored durably; CE: stored but unacceptable
    content; CR: refused or could not be stored). ``application_code`` is AA/AE/AR when the
    message went through processing, None when it never got there.
    """

    accept_code: str
    application_code: str | None
    problems: list[Problem] = field(default_factory=list)
    note: str = ""

    @property
    def original_code(self) -> str:
        if self.application_code is not None:
            return self.application_code
        return {"CA": "AA", "CE": "AE"}.get(self.accept_code, "AR")


def _wanted(condition: str, success: bool) -> bool:
    if condition in ("", "NE"):
        return False  # never, or empty next to a valued field
    if condition == "ER":
        return not success
    if condition == "SU":
        return success
    return True  # AL, and any value outside table 0155: when in doubt, answer


def build_responses(
    ctx: AckContext, outcome: Outcome, *, application: str, facility: str
) -> list[bytes]:
    """The ACK message(s) to send back, each not yet framed."""
    if not ctx.enhanced:
        return [_ack(ctx, outcome.original_code, outcome, application, facility)]
    out: list[bytes] = []
    if _wanted(ctx.accept_ack_type, outcome.accept_code == "CA"):
        out.append(_ack(ctx, outcome.accept_code, outcome, application, facility))
    code = outcome.application_code
    if code is not None and _wanted(ctx.application_ack_type, code == "AA"):
        out.append(_ack(ctx, code, outcome, application, facility))
    return out


def _next_control_id() -> str:
    with _counter_lock:
        n = next(_counter)
    return f"PC{datetime.now(PARIS):%y%m%d%H%M%S}{n % 100000:05d}"


def _escape(text: str, enc: Encoding) -> str:
    out = text.replace(enc.escape, f"{enc.escape}E{enc.escape}")
    for ch, code in (
        (enc.field, "F"),
        (enc.component, "S"),
        (enc.repetition, "R"),
        (enc.subcomponent, "T"),
    ):
        out = out.replace(ch, f"{enc.escape}{code}{enc.escape}")
    return out.replace("\r", " ").replace("\n", " ")


def _ack(ctx: AckContext, code: str, outcome: Outcome, application: str, facility: str) -> bytes:
    enc = Encoding()
    version = ctx.version_raw if ctx.version_raw.split("^")[0] in SUPPORTED_VERSIONS else "2.5"
    msh = [
        "MSH",
        "^~\\&",
        ctx.receiving_application or application,
        ctx.receiving_facility or facility,
        ctx.sending_application,
        ctx.sending_facility,
        datetime.now(PARIS).strftime("%Y%m%d%H%M%S"),
        "",
        f"ACK^{_escape(ctx.trigger, enc)}^ACK" if ctx.trigger else "ACK",
        _next_control_id(),
        _escape(ctx.processing_id, enc) or "P",
        version,
        "",
        "",
        "",
        "",
        "",
        ctx.charset_raw,
    ]
    while msh and msh[-1] == "":
        msh.pop()
    first = outcome.problems[0].describe() if outcome.problems else outcome.note
    msa = ["MSA", code, _escape(ctx.control_id, enc)]
    if first and code not in ("AA", "CA"):
        msa.append(_escape(first[:80], enc))
    segments = ["|".join(msh), "|".join(msa)]
    for p in outcome.problems:
        segments.append(
            "|".join(
                [
                    "ERR",
                    "",
                    p.location,
                    f"{p.code}^{_escape(TEXTS.get(p.code, ''), enc)}^HL70357",
                    p.severity,
                    "",
                    "",
                    "",
                    _escape(p.text, enc),
                ]
            )
        )
    return ("\r".join(segments) + "\r").encode(ctx.codec, errors="replace")
