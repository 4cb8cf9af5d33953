"""What the access policy reads: care-circle memberships, oppositions, break-glass grants.

All three are derived from FHIR resources (CareTeam, Consent) or written by the break-glass
operation, in the same transaction as the resource they come from, so the policy's SQL never
has to parse JSON. ``care_member`` and ``care_opposition`` can be rebuilt from the resources.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from parcours.store.schema import BigId, metadata

__all__ = [
    "access_grant",
    "care_member",
    "care_opposition",
    "circle_epoch",
    "platform_secret",
]

care_member = Table(
    "care_member",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("careteam_id", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    # "Practitioner/1", "PractitionerRole/2", "Organization/3", "RelatedPerson/4".
    Column("member", String(140), nullable=False),
    # The organisation a PractitionerRole member works for, as "Organization/3".
    Column("member_org", String(140), nullable=True),
    # "member" (a participant) or "managing" (the CareTeam's managingOrganization).
    Column("via", String(16), nullable=False),
    # Milliseconds since the epoch; NULL: open.
    Column("start_ms", BigInteger, nullable=True),
    Column("end_ms", BigInteger, nullable=True),
    Index("ix_care_member_member", "member", "patient_id"),
    Index("ix_care_member_org", "member_org", "patient_id"),
    Index("ix_care_member_team", "careteam_id"),
    Index("ix_care_member_patient", "patient_id"),
)

care_opposition = Table(
    "care_opposition",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("consent_id", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    # A member key as in care_member, or "*" for an opposition to every professional.
    Column("actor", String(140), nullable=False),
    Column("start_ms", BigInteger, nullable=True),
    Column("end_ms", BigInteger, nullable=True),
    Index("ix_care_opposition_patient", "patient_id", "actor"),
    Index("ix_care_opposition_consent", "consent_id"),
)

access_grant = Table(
    "access_grant",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    # Principal.subject of the professional who broke the glass.
    Column("subject", String(140), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("granted_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_access_grant_subject", "subject", "patient_id", "expires_ms"),
    Index("ix_access_grant_patient", "patient_id", "granted_ms"),
)

# One row (id = 1) counting the commits that changed who may see which patient (circles,
# oppositions, grants, roles): a process keeps each caller's visible patients while the count
# has not moved (``parcours.security.visibility``), whichever process made the change.
circle_epoch = Table(
    "circle_epoch",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)

platform_secret = Table(
    "platform_secret",
    metadata,
    # "pseudonym-key"…: secrets every process of the platform must share.
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
