"""The PPCS lifecycle rules, as a store write hook (decision D29).

Every CarePlan write, whatever its entry point (REST, Bundle, web UI), runs ``on_write`` in
its transaction, so a refused write leaves nothing behind:

- a signed version (status active, completed or revoked, with its ``ppcs-signature``) is
  never changed in place (409): the next version is a new ``draft`` without the signature,
  which must be signed again; only the status may move on (active -> completed / revoked);
- a signed PPCS is not deleted (409): it is revoked;
- a PPCS becomes signed only through ``CarePlan/{id}/$ppcs-sign`` (``signing.sign``), which
  records who signed and when; a client cannot write ``active`` or a signature itself (422).
  The platform's own writes (no caller, e.g. an import of signed plans) are trusted;
- a draft carries no signature, and the agreement status is one of the shipped codes (422).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from parcours.errors import Conflict, InvalidResource, Issue
from parcours.ppcs.model import (
    AGREEMENT_CODES,
    EXT_AGREEMENT,
    EXT_SIGNATURE,
    SIGNED_STATUSES,
    agreement,
    is_ppcs,
    signature,
)
from parcours.store import Transaction

__all__ = ["completeness_issues", "is_signed", "on_write", "signing"]

_STATUSES = frozenset({"draft", *SIGNED_STATUSES, "entered-in-error"})
# The CarePlans being signed by ``signing.sign`` in this call stack.
_SIGNING: ContextVar[frozenset[str]] = ContextVar("ppcs_signing", default=frozenset())


@contextmanager
def signing(careplan_id: str) -> Iterator[None]:
    """Lets the write hook accept the signed version that ``signing.sign`` writes."""
    token = _SIGNING.set(_SIGNING.get() | {careplan_id})
    try:
        yield
    finally:
        _SIGNING.reset(token)


def is_signed(careplan: dict[str, Any]) -> bool:
    return careplan.get("status") in SIGNED_STATUSES and signature(careplan) is not None


def _without(careplan: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in careplan.items() if k not in ("meta", "text", *keys)}


def on_write(tx: Transaction, new: dict[str, Any] | None, old: dict[str, Any] | None) -> None:
    if not (is_ppcs(new) or is_ppcs(old)):
        return
    ref = f"CarePlan/{(new or old or {}).get('id')}"
    if old is not None and is_signed(old):
        _check_after_signed(ref, new, old)
        return
    if new is None:
        return  # a draft may be deleted
    if not is_ppcs(new):
        raise InvalidResource(
            f"{ref} is a PPCS: its category 'ppcs' cannot be removed",
            [Issue("the PPCS category is required", "CarePlan.category", "value")],
        )
    _check_content(ref, new)
    status = new.get("status")
    signed_here = status in SIGNED_STATUSES or signature(new) is not None
    if signed_here and tx.access is not None and new.get("id") not in _SIGNING.get():
        if status in ("completed", "revoked") and signature(new) is None:
            return  # a draft abandoned (revoked) or closed without ever being signed
        raise InvalidResource(
            f"{ref}: a PPCS is validated with POST {ref}/$ppcs-sign, which records who signs "
            "and when; write it with status 'draft' and no signature extension",
            [Issue("set by $ppcs-sign only", "CarePlan.status", "business-rule")],
        )


def _check_after_signed(ref: str, new: dict[str, Any] | None, old: dict[str, Any]) -> None:
    version = (old.get("meta") or {}).get("versionId")
    signed = signature(old) or {}
    when = f"signed on {signed.get('date')}" if signed.get("date") else "signed"
    if new is None:
        raise Conflict(
            f"{ref} version {version} is a {when} PPCS: it is kept; set its status to "
            "'revoked' instead of deleting it"
        )
    if new.get("status") == "draft":
        _check_content(ref, new)
        return  # the next version of the plan, to be signed again
    if new.get("status") in SIGNED_STATUSES and _without(new, "status") == _without(old, "status"):
        return  # active -> completed / revoked: the signed content is unchanged
    raise Conflict(
        f"{ref} version {version} is a {when} PPCS and cannot be changed in place: "
        "PUT it with status 'draft' (and without the ppcs-signature extension) to start a "
        "new version, then sign that version with $ppcs-sign",
        [Issue("signed versions are read-only", "CarePlan", "conflict")],
    )


def _check_content(ref: str, careplan: dict[str, Any]) -> None:
    issues: list[Issue] = []
    status = careplan.get("status")
    if status not in _STATUSES:
        issues.append(
            Issue(
                f"a PPCS status is one of {', '.join(sorted(_STATUSES))}, not {status!r}",
                "CarePlan.status",
                "code-invalid",
            )
        )
    if status == "draft" and signature(careplan) is not None:
        issues.append(
            Issue(
                f"a draft is not signed: remove the extension {EXT_SIGNATURE}",
                "CarePlan.extension",
                "business-rule",
            )
        )
    agreed = agreement(careplan)
    if agreed is not None and agreed["code"] not in AGREEMENT_CODES:
        issues.append(
            Issue(
                f"the agreement status (extension {EXT_AGREEMENT}, 'statut') is one of "
                f"{', '.join(AGREEMENT_CODES)}",
                "CarePlan.extension",
                "code-invalid",
            )
        )
    if issues:
        raise InvalidResource(f"{ref} is not a valid PPCS: {issues[0].message}", issues)


def completeness_issues(careplan: dict[str, Any]) -> list[Issue]:
    """What a PPCS still lacks before it can be signed (every HAS section is filled)."""
    missing: list[Issue] = []

    def need(ok: bool, what: str, where: str) -> None:
        if not ok:
            missing.append(Issue(f"missing: {what}", where, "required"))

    subject = str((careplan.get("subject") or {}).get("reference") or "")
    need(subject.startswith("Patient/"), "the person (subject, a Patient)", "CarePlan.subject")
    need(
        bool(str(careplan.get("description") or "").strip()),
        "the situation of the person (description)",
        "CarePlan.description",
    )
    need(bool(careplan.get("addresses")), "at least one need (addresses)", "CarePlan.addresses")
    need(bool(careplan.get("goal")), "at least one objective (goal)", "CarePlan.goal")
    activities = careplan.get("activity") or []
    need(bool(activities), "at least one action (activity)", "CarePlan.activity")
    for n, activity in enumerate(activities):
        detail = (activity or {}).get("detail") or {}
        where = f"CarePlan.activity[{n}].detail"
        what = detail.get("description") or (detail.get("code") or {}).get("text")
        need(bool(what), f"what action {n + 1} is (description)", f"{where}.description")
        need(bool(detail.get("performer")), f"who does action {n + 1}", f"{where}.performer")
        when = any(k.startswith("scheduled") for k in detail)
        need(when, f"when action {n + 1} is due (scheduled[x])", f"{where}.scheduled[x]")
    need(bool(careplan.get("author")), "the coordinator (author)", "CarePlan.author")
    need(
        bool((careplan.get("period") or {}).get("end")),
        "the date of the next review (period.end)",
        "CarePlan.period.end",
    )
    agreed = agreement(careplan)
    need(
        agreed is not None and agreed["code"] is not None,
        f"the agreement of the person (extension {EXT_AGREEMENT})",
        "CarePlan.extension",
    )
    return missing
