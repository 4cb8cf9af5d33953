"""The authenticated caller, as every entry point (FHIR API, web UI, CLI, HL7) describes it.

Authentication (``parcours.auth``) builds a ``Principal``; the access policy
(``parcours.security.policy``) decides from it alone, and the audit trail records it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ADMIN",
    "ROLES",
    "Principal",
]

# Platform roles. A principal may hold several.
ROLES = frozenset(
    {
        "admin",  # operations: everything, through the admin token or an admin account
        "professional",  # a health or social professional: the patients of their care circles
        "coordinator",  # a DAC / structure coordinator: the patients of their structure
        "identity-referent",  # identity vigilance: identities, not clinical data
        "analyst",  # regional analyst: pseudonymised data only
        "system",  # a system client (OAuth2 client credentials) limited by its scopes
    }
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and on which grounds."""

    # Stable identifier of the caller: "admin", "Practitioner/123", "client/hospital-a",
    # "account/jdupont".
    subject: str
    roles: frozenset[str] = frozenset()
    # The professional the caller is, as a local reference ("Practitioner/123"), if any.
    practitioner: str | None = None
    # SMART-style scopes ("system/*.read", "system/Patient.write", "user/*.*").
    scopes: frozenset[str] = frozenset()
    # Human-readable name for audit trails and the UI.
    display: str = ""
    # How the caller authenticated: "admin-token", "jwt", "session", "client-credentials"...
    method: str = ""
    # Token id (jti) or session id, so an audit entry can be tied to one login.
    session: str | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


ADMIN = Principal("admin", frozenset({"admin"}), display="administrateur", method="admin-token")
