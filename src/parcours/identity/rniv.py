"""RNIV identity confidence: the four statuses, the attributes and the allowed transitions.

A status is a pair of criteria (RNIV 1 §3.2.1): INS retrieved through INSi (I) and traits
checked against a high-trust identity document (C).

    status  I  C   INS usable in exchanges
    PROV    -  -   no
    RECUP   +  -   no
    VALI    -  +   no
    QUAL    +  +   yes, and only this status [EXI SI 08]

Every change goes through :func:`apply` (a trigger) or :func:`set_attribute` /
:func:`clear_attribute`; each returns the new state and a :class:`TransitionRecord` for the
audit trail [EXI SI 14]. Illegal changes raise :class:`IllegalTransitionError`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import Enum
from typing import Final

from .errors import IllegalTransitionError

__all__ = [
    "HIGH_TRUST_DOCUMENTS",
    "MINOR_DOCUMENTS",
    "Attribute",
    "IdentityState",
    "Status",
    "Transition",
    "TransitionRecord",
    "Trigger",
    "apply",
    "clear_attribute",
    "may_call_insi",
    "set_attribute",
]


class Status(Enum):
    """RNIV confidence status; the value is the FR Core / RNIV code."""

    PROV = "PROV"
    RECUP = "RECUP"
    VALI = "VALI"
    QUAL = "QUAL"

    @property
    def ins_retrieved(self) -> bool:
        return self in (Status.RECUP, Status.QUAL)

    @property
    def document_checked(self) -> bool:
        return self in (Status.VALI, Status.QUAL)

    @property
    def may_expose_ins(self) -> bool:
        return self is Status.QUAL


class Attribute(Enum):
    """Identity attributes and management flags; the value is the table 0445 code."""

    HOMONYME = "HOMA"
    DOUTEUSE = "DOUT"
    FICTIVE = "FICT"
    POTENTIAL_DUPLICATE = "DPOT"
    CONFIRMED_DUPLICATE = "DOUA"
    POTENTIAL_COLLISION = "COLP"
    CONFIRMED_COLLISION = "COLV"


# Attributes that only PROV may carry and that forbid any other status and any INSi call.
_PROV_ONLY: Final = frozenset({Attribute.DOUTEUSE, Attribute.FICTIVE})

# Codes of fr-core-cs-mode-validation-identity (2.1.0, plus eCN/IN/AV of the 2.2 line) that
# RNIV accepts as a high-trust device. CC, CE, CM and PC appear in the code system (a copy of
# PAM FR ZFD-7) but are not high-trust under RNIV: see docs/identity.md, Decisions.
HIGH_TRUST_DOCUMENTS: Final = frozenset({"CN", "PA", "CS", "eCN", "IN", "AV", "TC"})
# For a minor, the family record book or birth certificate (with a parent's document).
MINOR_DOCUMENTS: Final = frozenset({"AN", "LE", "LECV", "ANCV", "LEP"})


class Trigger(Enum):
    """Events that move the status (RNIV 1 §3.2.2, §3.2.3, §4.3.4.1, §4.5.3, §4.8.1)."""

    DOCUMENT_CHECK = "document-check"
    """Traits checked against a high-trust document: PROV -> VALI, RECUP -> QUAL."""
    INSI_RECOVERY = "insi-recovery"
    """INSi récupération answered 00 with consistent traits: PROV -> RECUP, VALI -> QUAL."""
    INSI_WITH_DOCUMENT = "insi-with-document"
    """INSi call and document check in the same encounter: PROV -> QUAL."""
    CARTE_VITALE_APP = "carte-vitale-app"
    """INS read from the Appli carte Vitale: -> QUAL (RECUP for an ayant droit if so set)."""
    INSI_VERIFICATION_FAILED = "insi-verification-failed"
    """INSi vérification failed (incl. the periodic re-check): QUAL -> VALI (or PROV)."""
    INSI_INCONSISTENT = "insi-inconsistent"
    """INSi returns an INS inconsistent with a validated identity: VALI -> PROV."""
    DOCUMENT_DISCREPANCY = "document-discrepancy"
    """INS traits and the document disagree, found after the fact: QUAL/RECUP -> PROV."""
    SEX_CHANGE = "sex-change"
    """New NIR after a change of sex: any -> PROV, INS erased."""
    FRAUD = "fraud"
    """Fraudulent use of a carte Vitale: any -> PROV with attribute douteuse."""
    INS_WITHDRAWN = "ins-withdrawn"
    """PAM FR A47 demotion: QUAL -> RECUP."""


_ALLOWED: Final[dict[Trigger, dict[Status, tuple[Status, ...]]]] = {
    # value: allowed targets, the first one being the default.
    Trigger.DOCUMENT_CHECK: {Status.PROV: (Status.VALI,), Status.RECUP: (Status.QUAL,)},
    Trigger.INSI_RECOVERY: {Status.PROV: (Status.RECUP,), Status.VALI: (Status.QUAL,)},
    Trigger.INSI_WITH_DOCUMENT: {Status.PROV: (Status.QUAL,)},
    Trigger.CARTE_VITALE_APP: {
        Status.PROV: (Status.QUAL, Status.RECUP),
        Status.VALI: (Status.QUAL,),
        Status.RECUP: (Status.QUAL,),
    },
    Trigger.INSI_VERIFICATION_FAILED: {Status.QUAL: (Status.VALI, Status.PROV)},
    Trigger.INSI_INCONSISTENT: {Status.VALI: (Status.PROV,)},
    Trigger.DOCUMENT_DISCREPANCY: {Status.QUAL: (Status.PROV,), Status.RECUP: (Status.PROV,)},
    Trigger.SEX_CHANGE: {s: (Status.PROV,) for s in Status},
    Trigger.FRAUD: {s: (Status.PROV,) for s in Status},
    Trigger.INS_WITHDRAWN: {Status.QUAL: (Status.RECUP,)},
}

_NEEDS_DOCUMENT: Final = frozenset({Trigger.DOCUMENT_CHECK, Trigger.INSI_WITH_DOCUMENT})
_USES_INSI: Final = frozenset(
    {Trigger.INSI_RECOVERY, Trigger.INSI_WITH_DOCUMENT, Trigger.CARTE_VITALE_APP}
)


@dataclass(frozen=True, slots=True)
class IdentityState:
    """Status, attributes and how the status was obtained (FR Core identityReliability)."""

    status: Status = Status.PROV
    attributes: frozenset[Attribute] = frozenset()
    collection_method: str | None = None
    """fr-core-cs-method-collection code (SM, CV, INSI, CB, RFID, AV)."""
    collected_on: date | None = None
    validation_mode: str | None = None
    """fr-core-cs-mode-validation-identity code of the document checked."""
    validated_on: date | None = None

    def __post_init__(self) -> None:
        restricted = self.attributes & _PROV_ONLY
        if restricted and self.status is not Status.PROV:
            codes = ", ".join(sorted(a.value for a in restricted))
            raise IllegalTransitionError(
                f"attribute {codes} is only allowed with status PROV [RNIV EXI SI 09]; "
                "remove the attribute or keep the identity provisional",
                field="identityReliability",
            )
        if {Attribute.DOUTEUSE, Attribute.FICTIVE} <= self.attributes:
            raise IllegalTransitionError(
                "an identity cannot be both fictive and douteuse (RNIV 1 §3.2.3); keep one",
                field="identityReliability",
            )


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One audited change (RNIV [EXI SI 14]): no patient data, only codes and actors."""

    from_status: Status
    to_status: Status
    at: datetime
    who: str
    why: str
    trigger: Trigger | None
    collection_method: str | None = None
    validation_mode: str | None = None
    attributes_added: frozenset[Attribute] = frozenset()
    attributes_removed: frozenset[Attribute] = frozenset()
    ins_invalidated: bool = False
    """The INS must be deleted or marked ``use = old`` by the caller."""


@dataclass(frozen=True, slots=True)
class Transition:
    state: IdentityState
    record: TransitionRecord


def may_call_insi(state: IdentityState) -> bool:
    """INSi must be technically impossible for a douteuse or fictive identity [EXI SI 09]."""
    return not (state.attributes & _PROV_ONLY)


def _check_actor(at: datetime, who: str) -> None:
    if at.tzinfo is None:
        raise IllegalTransitionError("the transition time must be timezone-aware (UTC)", field="at")
    if not who.strip():
        raise IllegalTransitionError("every identity change names its author", field="who")


def apply(
    state: IdentityState,
    trigger: Trigger,
    *,
    at: datetime,
    who: str,
    why: str,
    to: Status | None = None,
    collection_method: str | None = None,
    validation_mode: str | None = None,
    subject_is_minor: bool = False,
) -> Transition:
    """Move ``state`` on ``trigger``; ``to`` picks among the targets where RNIV leaves a choice.

    Raises :class:`IllegalTransitionError` when the trigger is not allowed from the current
    status, when the identity is douteuse or fictive and the trigger would raise it above PROV,
    or when a document check lacks a high-trust ``validation_mode`` [EXI SI 10].
    """
    _check_actor(at, who)
    targets = _ALLOWED[trigger].get(state.status)
    if targets is None:
        allowed_from = ", ".join(s.value for s in _ALLOWED[trigger])
        raise IllegalTransitionError(
            f"{trigger.value} is not allowed from {state.status.value} "
            f"(allowed from: {allowed_from}); see RNIV 1 §3.2.2",
            field="identityReliability.identityStatus",
        )
    target = to or targets[0]
    if target not in targets:
        raise IllegalTransitionError(
            f"{trigger.value} from {state.status.value} leads to "
            f"{' or '.join(t.value for t in targets)}, not {target.value}",
            field="identityReliability.identityStatus",
        )
    blocked = state.attributes & _PROV_ONLY
    if blocked and (target is not Status.PROV or trigger in _USES_INSI):
        raise IllegalTransitionError(
            "a douteuse or fictive identity stays PROV and cannot be sent to INSi "
            "[RNIV EXI SI 09]; clear the attribute first after investigation",
            field="identityReliability.identityStatus",
        )
    mode = validation_mode
    if trigger is Trigger.CARTE_VITALE_APP:
        mode = mode or "AV"
        collection_method = collection_method or "AV"
    if trigger in _NEEDS_DOCUMENT:
        if mode is None:
            raise IllegalTransitionError(
                "a document check must record the type of document used [EXI SI 10]; "
                "pass validation_mode (never pre-selected by default [EXI SI 23])",
                field="identityReliability.validationMode",
            )
        if mode not in HIGH_TRUST_DOCUMENTS and not (subject_is_minor and mode in MINOR_DOCUMENTS):
            raise IllegalTransitionError(
                f"document type {mode} is not a high-trust identification device under RNIV; "
                "use an identity card, passport or residence permit",
                field="identityReliability.validationMode",
            )
    if trigger in _USES_INSI and trigger is not Trigger.CARTE_VITALE_APP:
        collection_method = collection_method or "INSI"

    attributes = state.attributes
    added: frozenset[Attribute] = frozenset()
    if trigger is Trigger.FRAUD:
        added = frozenset({Attribute.DOUTEUSE}) - attributes
        attributes = (attributes - {Attribute.FICTIVE}) | {Attribute.DOUTEUSE}
    removed = state.attributes - attributes

    ins_invalidated = state.status.ins_retrieved and not target.ins_retrieved
    ins_invalidated = ins_invalidated or trigger in (Trigger.SEX_CHANGE, Trigger.FRAUD)
    new = IdentityState(
        status=target,
        attributes=attributes,
        collection_method=(
            collection_method
            if trigger in _USES_INSI
            else (state.collection_method if target.ins_retrieved else None)
        ),
        collected_on=(
            at.date()
            if trigger in _USES_INSI
            else (state.collected_on if target.ins_retrieved else None)
        ),
        validation_mode=(
            mode
            if trigger in _NEEDS_DOCUMENT or trigger is Trigger.CARTE_VITALE_APP
            else (state.validation_mode if target.document_checked else None)
        ),
        validated_on=(
            at.date()
            if trigger in _NEEDS_DOCUMENT or trigger is Trigger.CARTE_VITALE_APP
            else (state.validated_on if target.document_checked else None)
        ),
    )
    if trigger is Trigger.CARTE_VITALE_APP and target is Status.RECUP:
        new = replace(new, validation_mode=None, validated_on=None)
    record = TransitionRecord(
        from_status=state.status,
        to_status=target,
        at=at,
        who=who,
        why=why,
        trigger=trigger,
        collection_method=new.collection_method if trigger in _USES_INSI else None,
        validation_mode=(
            new.validation_mode
            if trigger in _NEEDS_DOCUMENT or trigger is Trigger.CARTE_VITALE_APP
            else None
        ),
        attributes_added=added,
        attributes_removed=removed,
        ins_invalidated=ins_invalidated,
    )
    return Transition(new, record)


def set_attribute(
    state: IdentityState, attribute: Attribute, *, at: datetime, who: str, why: str
) -> Transition:
    """Add an attribute; douteuse or fictive force PROV and invalidate the INS (§3.2.3)."""
    _check_actor(at, who)
    if attribute in state.attributes:
        raise IllegalTransitionError(
            f"attribute {attribute.value} is already set", field="identityReliability"
        )
    if attribute in _PROV_ONLY and (state.attributes & _PROV_ONLY):
        raise IllegalTransitionError(
            "an identity cannot be both fictive and douteuse (RNIV 1 §3.2.3); keep one",
            field="identityReliability",
        )
    forced = attribute in _PROV_ONLY and state.status is not Status.PROV
    target = Status.PROV if forced else state.status
    new = IdentityState(
        status=target,
        attributes=state.attributes | {attribute},
        collection_method=None if forced else state.collection_method,
        collected_on=None if forced else state.collected_on,
        validation_mode=None if forced else state.validation_mode,
        validated_on=None if forced else state.validated_on,
    )
    record = TransitionRecord(
        from_status=state.status,
        to_status=target,
        at=at,
        who=who,
        why=why,
        trigger=None,
        attributes_added=frozenset({attribute}),
        ins_invalidated=forced and state.status.ins_retrieved,
    )
    return Transition(new, record)


def clear_attribute(
    state: IdentityState, attribute: Attribute, *, at: datetime, who: str, why: str
) -> Transition:
    """Remove an attribute; the status does not change (it is raised by its own trigger)."""
    _check_actor(at, who)
    if attribute not in state.attributes:
        raise IllegalTransitionError(
            f"attribute {attribute.value} is not set", field="identityReliability"
        )
    new = replace(state, attributes=state.attributes - {attribute})
    record = TransitionRecord(
        from_status=state.status,
        to_status=state.status,
        at=at,
        who=who,
        why=why,
        trigger=None,
        attributes_removed=frozenset({attribute}),
    )
    return Transition(new, record)
