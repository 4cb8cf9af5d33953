"""Errors raised by the identity rules.

    IdentityError (ValueError)        carries ``field``: a FHIRPath-like location
     ├── InvalidInsError              an INS matricule or OID breaks a rule
     ├── InvalidTraitError            a strict or complementary trait cannot be used
     └── IllegalTransitionError       an RNIV status or attribute change is not allowed

They derive from ``ValueError`` so that a caller who only knows "bad value" can catch them;
the store maps them to ``parcours.errors.InvalidResource`` (422) or an HL7 ACK AE in one place.
Messages name the rule broken and the remedy, never the patient's name or matricule.
"""

from __future__ import annotations

__all__ = [
    "IdentityError",
    "IllegalTransitionError",
    "InvalidInsError",
    "InvalidTraitError",
]


class IdentityError(ValueError):
    """Base of the identity errors; ``field`` locates the offending element."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInsError(IdentityError):
    """The INS matricule, its key or its assigning authority (OID) is not acceptable."""


class InvalidTraitError(IdentityError):
    """A trait (name, given names, birth date, sex, birthplace) breaks an RNIV rule."""


class IllegalTransitionError(IdentityError):
    """The RNIV state machine refuses a status or attribute change."""
