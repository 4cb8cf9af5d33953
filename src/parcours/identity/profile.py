"""The FR Core identity rules as a profile check the store's validator runs on every write.

A Patient is checked when it carries an identifier of the INS arc (``1.2.250.1.213.1.4.*``,
whatever its type) or claims an FR Core Patient profile; other Patients (a partner's plain
R4 Patient) only get the structural R4 check. The RNIV rule "a key-invalid INS is never
stored as an INS" makes a bad key an error (422 naming ``Patient.identifier[i].value``),
not a warning. Production refuses the test and demo INS authorities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from parcours.errors import Issue

from .frcore import PATIENT_PROFILE
from .validation import validate_patient

__all__ = ["fr_core_patient_check", "needs_fr_core_check"]

_INS_ARC: Final = "urn:oid:1.2.250.1.213.1.4."


def needs_fr_core_check(resource: Mapping[str, Any]) -> bool:
    """True for a Patient with an INS-arc identifier or an FR Core Patient profile."""
    if resource.get("resourceType") != "Patient":
        return False
    identifiers = resource.get("identifier")
    if isinstance(identifiers, list) and any(
        isinstance(i, Mapping)
        and isinstance(i.get("system"), str)
        and i["system"].startswith(_INS_ARC)
        for i in identifiers
    ):
        return True
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, Mapping) else None
    # fr-core-patient and fr-core-patient-ins (and versioned canonicals "...|2.1.0").
    return isinstance(profiles, list) and any(
        isinstance(p, str) and p.startswith(PATIENT_PROFILE) for p in profiles
    )


def fr_core_patient_check(*, production: bool) -> Callable[[dict[str, Any]], Iterable[Issue]]:
    """The check for ``make_validator(profile_checks=...)``; test INS only outside production."""

    def check(resource: dict[str, Any]) -> Iterable[Issue]:
        if not needs_fr_core_check(resource):
            return ()
        return validate_patient(resource, allow_test_ins=not production)

    return check
