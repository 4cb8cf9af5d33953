"""The pipeline for one frame: parse, check the header, commit to the inbox, apply, ACK.

Durability and idempotency (docs/hl7-interface.md §Ordering and resends):

1. the raw frame is inserted in ``hl7_inbox`` and COMMITTED (status ``received``) before
   anything else; if that commit fails we answer AR and the sender resends;
2. the message is applied in a second transaction that also moves the row to ``applied``
   (or ``ignored``), so the FHIR writes and the inbox status commit together: a crash
   between 1 and 2 leaves a ``received`` row that a resend or ``replay`` applies, and
   nothing is ever applied twice;
3. MSH-3 + MSH-4 + MSH-10 is unique: a resend of an applied message gets its AA back
   without being applied again; a resend of a failed one is tried again; the same control
   id with different content is refused (AE 205).

Ordering: the apply transaction takes a per-sender lock (PostgreSQL advisory lock; SQLite
serialises writers with BEGIN IMMEDIATE), so messages of one sender are applied one at a
time in arrival order; a sender that waits for each ACK before the next message (MLLP's
normal use) therefore gets them applied in the order it sent them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import text

from parcours.errors import Conflict, InvalidInput, NotFound, ParcoursError, Unavailable
from parcours.hl7v2 import inbox
from parcours.hl7v2.ack import (
    SUPPORTED_VERSIONS,
    AckContext,
    Outcome,
    build_responses,
    context_from_bytes,
    context_from_message,
)
from parcours.hl7v2.apply import apply_message, is_handled
from parcours.hl7v2.er7 import Message, parse
from parcours.hl7v2.errors import (
    APPLICATION_ERROR,
    DATA_TYPE_ERROR,
    DUPLICATE_KEY,
    REQUIRED_FIELD_MISSING,
    UNKNOWN_KEY,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_VERSION,
    Hl7Error,
    Problem,
)
from parcours.hl7v2.framing import Frame
from parcours.hl7v2.identifiers import Sender, cx_system
from parcours.hl7v2.resolver import IdentityService, LocalIdentity
from parcours.hl7v2.settings import Hl7Settings
from parcours.identity import IdentityCollision
from parcours.store.repository import Store, Transaction

__all__ = ["Receiver", "ReplayResult"]

log = logging.getLogger("parcours.hl7v2")


class Hl7Observer(Protocol):
    """Told about every frame answered (for metrics): MSH-9.2, MSA-1 of the response, time."""

    def message(self, trigger: str, ack_code: str, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class ReplayResult:
    id: int
    status: str
    ack_code: str | None
    error: str | None


def _sender(msg: Message) -> Sender:
    msh = msg.msh
    return Sender(
        msh.get(3) or msh.get(3, 2),
        msh.get(4) or msh.get(4, 2),
    )


def _patient_key(msg: Message, sender: Sender) -> str | None:
    pid = msg.first("PID")
    if pid is None:
        return None
    for rep in pid.reps(3):
        if rep.c(5).upper() in ("PI", "") and rep.c(1):
            return f"{cx_system('ipp', rep, sender)}|{rep.c(1)}"[:768]
    return None


def _describe(problems: Iterable[Problem]) -> str | None:
    text_ = "; ".join(p.describe() for p in problems)
    return text_ or None


class Receiver:
    """Turns received frames into inbox rows, FHIR writes and ACKs. Thread-safe."""

    def __init__(
        self,
        store: Store,
        settings: Hl7Settings | None = None,
        *,
        identity: IdentityService | None = None,
        observers: Sequence[Hl7Observer] = (),
    ) -> None:
        self.store = store
        self.settings = settings or Hl7Settings()
        self.identity: IdentityService = identity or LocalIdentity()
        self.observers = tuple(observers)

    # ---- entry points --------------------------------------------------------------------

    def handle_frame(self, frame: Frame, peer: str | None = None) -> list[bytes]:
        """ACK message(s) for one MLLP frame (not framed)."""
        started = time.monotonic()
        responses = self._handle_frame(frame, peer)
        if self.observers:
            trigger, code = _summary(responses)
            for observer in self.observers:
                observer.message(trigger, code, time.monotonic() - started)
        return responses

    def _handle_frame(self, frame: Frame, peer: str | None) -> list[bytes]:
        if frame.oversized:
            ctx = context_from_bytes(frame.data)
            problem = Problem(
                APPLICATION_ERROR,
                f"message of {frame.size} bytes exceeds the limit of "
                f"{self.settings.max_message_bytes} bytes; it was not processed",
                "MSH^1",
            )
            self._store_rejected(frame.data, ctx, "AR", [problem], peer, size=frame.size)
            return self._responses(ctx, Outcome("CR", "AR", [problem]))
        return self.handle(frame.data, peer)

    def handle(self, data: bytes, peer: str | None = None) -> list[bytes]:
        try:
            msg = parse(data, default_charset=self.settings.default_charset)
        except Hl7Error as exc:
            ctx = context_from_bytes(data)
            self._store_rejected(data, ctx, exc.ack_code, exc.problems, peer)
            return self._responses(ctx, _refused(exc))
        ctx = context_from_message(msg)
        try:
            self._check_header(msg)
        except Hl7Error as exc:
            self._store_rejected(data, ctx, exc.ack_code, exc.problems, peer, msg=msg)
            return self._responses(ctx, _refused(exc))
        return self._responses(ctx, self._receive(data, msg, peer))

    # ---- steps ---------------------------------------------------------------------------

    def _check_header(self, msg: Message) -> None:
        msh = msg.msh
        if not msg.message_type:
            raise Hl7Error.reject(
                REQUIRED_FIELD_MISSING, "MSH-9 message type is required", msh.loc(9)
            )
        if not msg.control_id:
            raise Hl7Error.reject(
                REQUIRED_FIELD_MISSING, "MSH-10 message control id is required", msh.loc(10)
            )
        if msg.message_type != "ADT":
            raise Hl7Error.reject(
                UNSUPPORTED_MESSAGE_TYPE,
                f"message type {msg.message_type[:8]} is not supported; this interface "
                "receives IHE PAM FR (ADT) only",
                msh.loc(9, 1, 1),
            )
        if not msg.trigger:
            raise Hl7Error.reject(
                REQUIRED_FIELD_MISSING, "MSH-9.2 trigger event is required", msh.loc(9, 1, 2)
            )
        if msg.version not in SUPPORTED_VERSIONS:
            raise Hl7Error.reject(
                UNSUPPORTED_VERSION,
                f"version {msg.version[:10]} is not supported; PAM FR uses 2.5 (2.5^FRA^2.11)",
                msh.loc(12),
            )

    def _store_rejected(
        self,
        data: bytes,
        ctx: AckContext,
        ack_code: str,
        problems: Sequence[Problem],
        peer: str | None,
        *,
        msg: Message | None = None,
        size: int | None = None,
    ) -> None:
        try:
            with self.store.begin() as tx:
                inbox.insert_row(
                    tx.conn,
                    raw=data,
                    size=size if size is not None else len(data),
                    sending_application=ctx.sending_application,
                    sending_facility=ctx.sending_facility,
                    control_id=ctx.control_id,
                    message_type=msg.message_type if msg else "",
                    trigger=ctx.trigger.upper(),
                    charset=ctx.charset_raw,
                    status="rejected",
                    ack_code=ack_code,
                    error=_describe(problems),
                    peer=peer,
                    processed_at=None,
                )
        except ParcoursError:
            # The refusal is still sent; the sender keeps the message.
            log.warning("hl7: could not record a rejected frame (database unavailable)")

    def _receive(self, data: bytes, msg: Message, peer: str | None) -> Outcome:
        sender = _sender(msg)
        key = f"{msg.msh.raw(3)}|{msg.msh.raw(4)}|{msg.control_id}"[:768]
        try:
            with self.store.begin() as tx:
                row_id = inbox.insert_row(
                    tx.conn,
                    raw=data,
                    dedup_key=key,
                    sending_application=msg.msh.raw(3),
                    sending_facility=msg.msh.raw(4),
                    control_id=msg.control_id,
                    message_type=msg.message_type,
                    trigger=msg.trigger,
                    charset=msg.msh.first(18).raw,
                    status="received",
                    content_hash=msg.fingerprint(),
                    patient_key=_patient_key(msg, sender),
                    peer=peer,
                )
                existing = None if row_id is not None else inbox.by_dedup_key(tx.conn, key)
        except ParcoursError as exc:
            log.warning("hl7: inbox unavailable, message refused (AR): %s", type(exc).__name__)
            return Outcome(
                "CR",
                "AR",
                [Problem(APPLICATION_ERROR, "message could not be stored; resend later", "MSH^1")],
            )
        if row_id is None:
            assert existing is not None
            if existing.content_hash != msg.fingerprint():
                problem = Problem(
                    DUPLICATE_KEY,
                    "this control id was already received from this sender with a different "
                    "content; send a new MSH-10",
                    "MSH^1^10",
                )
                self._store_rejected(
                    data, context_from_message(msg), "AE", [problem], peer, msg=msg
                )
                return Outcome("CE", "AE", [problem])
            if existing.status in inbox.FINAL:
                return Outcome("CA", existing.ack_code or "AA", note="duplicate; already processed")
            row_id = existing.id
        return self._apply(row_id, msg)

    def _lock(self, tx: Transaction, msg: Message, sender: Sender) -> None:
        if not self.store.dialect.is_postgres:
            return  # SQLite: BEGIN IMMEDIATE already serialises writers
        keys = [f"hl7:sender:{sender.key}"]
        pid = msg.first("PID")
        if pid is not None:
            keys += sorted(
                {f"hl7:ins:{r.c(1).upper()}" for r in pid.reps(3) if r.c(5).upper() == "INS"}
            )
        for k in keys:
            tx.conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": k})

    def _apply(self, row_id: int, msg: Message) -> Outcome:
        sender = _sender(msg)
        try:
            with self.store.begin() as tx:
                self._lock(tx, msg, sender)
                row = inbox.get(tx.conn, row_id, lock=True)
                if row is None:
                    raise Hl7Error.reject(APPLICATION_ERROR, "inbox row vanished", "MSH^1")
                if row.status in inbox.FINAL:
                    return Outcome("CA", row.ack_code or "AA", note="already processed")
                if not is_handled(msg.trigger):
                    inbox.mark(
                        tx.conn,
                        row_id,
                        status="ignored",
                        ack_code="AA",
                        error=f"trigger {msg.trigger[:8]} is not handled; ignored (PAM FR)",
                        attempts=row.attempts + 1,
                    )
                    return Outcome("CA", "AA", note="trigger ignored")
                result = apply_message(
                    tx, msg, self.settings, sender, self.identity, sequence=row_id
                )
                inbox.mark(
                    tx.conn,
                    row_id,
                    status=result.status,
                    ack_code="AA",
                    error=_describe(result.warnings),
                    targets=" ".join(result.targets) or None,
                    attempts=row.attempts + 1,
                )
            return Outcome("CA", "AA", result.warnings)
        except Hl7Error as exc:
            return self._failed(row_id, exc.ack_code, exc.problems)
        except Unavailable as exc:
            log.warning("hl7: message %s not applied, database unavailable", row_id)
            problem = Problem(
                APPLICATION_ERROR, f"temporary failure, resend later: {exc.message[:200]}"
            )
            return self._failed(row_id, "AR", [problem])
        except IdentityCollision as exc:
            # One INS, two people: refused until an identity-vigilance referent decides.
            problem = Problem(
                APPLICATION_ERROR, f"identity collision, refused for review: {exc.message[:200]}"
            )
            return self._failed(row_id, "AE", [problem])
        except Conflict as exc:
            problem = Problem(APPLICATION_ERROR, f"concurrent update, resend: {exc.message[:200]}")
            return self._failed(row_id, "AR", [problem])
        except NotFound as exc:
            return self._failed(row_id, "AE", [Problem(UNKNOWN_KEY, exc.message[:300])])
        except InvalidInput as exc:
            issues = "; ".join(
                f"{i.location + ': ' if i.location else ''}{i.message}" for i in exc.issues
            )
            problem = Problem(DATA_TYPE_ERROR, f"resource refused by validation: {issues[:500]}")
            return self._failed(row_id, "AE", [problem])
        except ParcoursError as exc:
            return self._failed(
                row_id, exc.ack_code, [Problem(APPLICATION_ERROR, exc.message[:300])]
            )
        except Exception:
            log.exception("hl7: internal error applying inbox message %s", row_id)
            problem = Problem(APPLICATION_ERROR, "internal error; the message is kept for replay")
            return self._failed(row_id, "AE", [problem])

    def _failed(self, row_id: int, ack_code: str, problems: list[Problem]) -> Outcome:
        try:
            with self.store.begin() as tx:
                row = inbox.get(tx.conn, row_id)
                inbox.mark(
                    tx.conn,
                    row_id,
                    status="failed",
                    ack_code=ack_code,
                    error=_describe(problems),
                    attempts=(row.attempts if row else 0) + 1,
                )
        except ParcoursError:
            log.warning("hl7: could not record the failure of message %s", row_id)
        return Outcome("CA", ack_code, problems)

    def _responses(self, ctx: AckContext, outcome: Outcome) -> list[bytes]:
        return build_responses(
            ctx, outcome, application=self.settings.application, facility=self.settings.facility
        )

    # ---- operator functions ----------------------------------------------------------------

    def replay(self, ids: Iterable[int]) -> list[ReplayResult]:
        """Apply again received/failed rows, in inbox order; other rows are reported as is."""
        results: list[ReplayResult] = []
        for row_id in sorted(set(ids)):
            with self.store.begin(readonly=True) as tx:
                row = inbox.get(tx.conn, row_id)
            if row is None:
                continue
            if row.status not in ("received", "failed"):
                results.append(ReplayResult(row.id, row.status, row.ack_code, row.error))
                continue
            try:
                msg = parse(row.raw, default_charset=self.settings.default_charset)
                self._check_header(msg)
            except Hl7Error as exc:
                outcome = self._failed(row.id, exc.ack_code, exc.problems)
            else:
                outcome = self._apply(row.id, msg)
            with self.store.begin(readonly=True) as tx:
                after = inbox.get(tx.conn, row_id)
            results.append(
                ReplayResult(
                    row_id,
                    after.status if after else "?",
                    outcome.original_code,
                    after.error if after else None,
                )
            )
        return results


def _refused(exc: Hl7Error) -> Outcome:
    return Outcome("CR" if exc.ack_code == "AR" else "CE", exc.ack_code, exc.problems)


def _summary(responses: list[bytes]) -> tuple[str, str]:
    """(trigger, MSA-1 of the last response) read back from our own ACK(s)."""
    if not responses:
        return "", ""
    lines = responses[-1].decode("latin-1").split("\r")
    msh = lines[0].split("|")
    msa = next((line.split("|") for line in lines if line.startswith("MSA|")), ["", ""])
    message_type = msh[8].split("^") if len(msh) > 8 else []
    return (message_type[1] if len(message_type) > 1 else ""), msa[1]
