"""FR Core 2.1.0 vocabulary used by the identity module: URLs, systems and codes.

Every constant here was read in the published FR Core 2.1.0 package
(``shared/definitions/fr-core``); the few that only exist in the 2.2 line are marked.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BIRTHDATE_UPDATE_INDICATOR_URL",
    "BIRTH_LIST_GIVEN_NAME_URL",
    "BIRTH_PLACE_URL",
    "CS_FIABILITE_IDENTITE",
    "CS_IDENTITY_STATUS_2_2",
    "CS_METHOD_COLLECTION",
    "CS_MODE_VALIDATION",
    "CS_V2_0203_FR",
    "CS_V2_0203_HL7",
    "CS_V2_0445",
    "IDENTITY_RELIABILITY_URL",
    "INSEE_CODE_URL",
    "INSEE_COMMUNE_SYSTEM",
    "PATIENT_INS_PROFILE",
    "PATIENT_PROFILE",
]

_BASE: Final = "https://hl7.fr/ig/fhir/core"

PATIENT_PROFILE: Final = f"{_BASE}/StructureDefinition/fr-core-patient"
PATIENT_INS_PROFILE: Final = f"{_BASE}/StructureDefinition/fr-core-patient-ins"

IDENTITY_RELIABILITY_URL: Final = f"{_BASE}/StructureDefinition/fr-core-identity-reliability"
BIRTH_LIST_GIVEN_NAME_URL: Final = (
    f"{_BASE}/StructureDefinition/fr-core-patient-birth-list-given-name"
)
BIRTHDATE_UPDATE_INDICATOR_URL: Final = (
    f"{_BASE}/StructureDefinition/fr-core-patient-birthdate-update-indicator"
)
INSEE_CODE_URL: Final = f"{_BASE}/StructureDefinition/fr-core-address-insee-code"
# FR Core 2.1.0 reuses the international extension for the birthplace (slice birthPlace).
BIRTH_PLACE_URL: Final = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"

CS_V2_0203_FR: Final = f"{_BASE}/CodeSystem/fr-core-cs-v2-0203"
CS_V2_0203_HL7: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
# identityStatus is bound (extensible) to fr-core-vs-identity-reliability = this system in 2.1.0.
CS_V2_0445: Final = f"{_BASE}/CodeSystem/fr-core-cs-v2-0445"
# Same codes, also published in 2.1.0 under a French name; accepted on read.
CS_FIABILITE_IDENTITE: Final = f"{_BASE}/CodeSystem/fr-core-cs-fiabilite-identite"
# Only in the FR Core 2.2 line: the four RNIV statuses with their RNIV meaning.
CS_IDENTITY_STATUS_2_2: Final = f"{_BASE}/CodeSystem/fr-core-cs-identity-status"
CS_METHOD_COLLECTION: Final = f"{_BASE}/CodeSystem/fr-core-cs-method-collection"
CS_MODE_VALIDATION: Final = f"{_BASE}/CodeSystem/fr-core-cs-mode-validation-identity"

INSEE_COMMUNE_SYSTEM: Final = (
    "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
)
