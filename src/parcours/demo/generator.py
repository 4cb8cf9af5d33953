"""A deterministic, entirely fictitious care-coordination region as FHIR R4 resources.

``generate_region(seed, patients)`` always returns the same resources for the same arguments
(no clock, no global random state). What it builds, over the 8 départements of
Bourgogne-Franche-Comté:

* Organizations (FR Core / Annuaire shape, FINESS as ``IDNST`` on the OID
  ``urn:oid:1.2.250.1.71.4.2.2`` plus ``FINEG`` on ``https://finess.esante.gouv.fr``): CHU and CH,
  one DAC per département, CPTS, EHPAD, maisons de santé (MSP) and SSIAD.
* Practitioners (``IDNPS`` = ``8`` + RPPS on ``urn:oid:1.2.250.1.71.4.2.1`` plus ``RPPS`` on
  ``https://rpps.esante.gouv.fr``): GPs, nurses, pharmacists, DAC coordinators, hospital doctors.
* PractitionerRoles linking them to their organisation.
* Patients after FR Core Patient / Patient INS: test INS (``INS-NIR-TEST``, OID
  ``urn:oid:1.2.250.1.213.1.4.10``), birth and used names, birth-list of given names,
  birthplace COG, address, telecom, GP, identityReliability.

Codes and where they come from:

* FR Core 2.1.0 (``shared/definitions/fr-core``): identifier types ``fr-core-cs-v2-0203``
  (INS-NIR-TEST, IDNST, FINEG, IDNPS, RPPS), organisation type ``fr-core-cs-v2-3307``
  (GEOGRAPHICAL-ENTITY), ``fr-core-cs-method-collection`` (INSI, CV, SM),
  ``fr-core-cs-mode-validation-identity`` (CN, PA, CS), extension URLs.
* identityStatus: the four RNIV codes (PROV, RECUP, VALI, QUAL) in
  ``https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status`` (FR Core 2.2 line),
  which is the storage form ``parcours.identity.reliability`` writes (``StatusCoding.RNIV``);
  FR Core 2.1.0 binds the sub-extension *extensibly* to ``fr-core-cs-v2-0445``, which has no
  QUAL/RECUP. Only QUAL and RECUP identities carry an INS (RNIV: the INS comes from INSi);
  VALI identities were checked against an ID document but have no INS; PROV ones have neither.
* ANS NOS terminologies (not shipped in this tree; codes seen in ANS examples or recalled):
  TRE_R66-CategorieEtablissement (101 CHR/CHU, 355 CH, 500 EHPAD, 603 MSP, 604 CPTS,
  354 SSIAD), TRE_R02-SecteurActivite (SA01 public hospital), TRE_G15-ProfessionSante
  (10 médecin, 21 pharmacien, 60 infirmier), TRE_R38-SpecialiteOrdinale (SM54 médecine
  générale), TRE_R22-GenreActivite (GENR01), TRE_R23-ModeExercice (L libéral, S salarié).
  Everything else (DAC category, hospital specialties, coordinator role) is plain text.

Near-duplicates (for the identity-vigilance queue)
--------------------------------------------------
The last ``near_duplicate_count(patients)`` Patients (at most 8) are the *same person* as an
earlier Patient, typed differently at another front desk, always ``PROV`` and without INS.
:func:`build_region` returns them as :class:`NearDuplicate` (original id, duplicate id, kind);
the kinds, in order:

1. ``accents-and-hyphen``: birth name typed with accents and in mixed case, compound given
   name with a hyphen instead of a space (or the reverse).
2. ``used-name-as-birth-name``: a married woman registered under her used name.
3. ``day-month-swapped``: birth date with day and month swapped.
4. ``typo``: one letter of the birth name dropped.
5. ``apostrophe``: apostrophe, hyphen or space dropped or changed in the birth name.
6. ``first-given-only``: only the first given name, and a new address.
7. ``unknown-birthplace``: birthplace unknown (COG 99999), other phone number.
8. ``sex-typo``: same traits but the other sex (a typing error on the first digit).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from parcours.identity.ins import ins_key

from .data import (
    COMMUNES,
    DEPARTEMENTS,
    EHPAD_NAMES,
    FAMILY_NAMES,
    FEMALE_GIVEN,
    FOREIGN_BIRTHPLACES,
    HOSPITALS,
    MALE_GIVEN,
    OTHER_FRENCH_BIRTHPLACES,
    STREETS,
    Commune,
)

__all__ = [
    "INS_TEST_OID",
    "NearDuplicate",
    "Region",
    "build_region",
    "generate_region",
    "ins_key",
    "near_duplicate_count",
]

Resource = dict[str, Any]

# ---- systems and URLs -----------------------------------------------------------------------

_FR: Final = "https://hl7.fr/ig/fhir/core"
_NOS: Final = "https://mos.esante.gouv.fr/NOS"
CS_V2_0203_FR: Final = f"{_FR}/CodeSystem/fr-core-cs-v2-0203"
CS_V2_0203_HL7: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
CS_V2_3307: Final = f"{_FR}/CodeSystem/fr-core-cs-v2-3307"
CS_IDENTITY_STATUS: Final = f"{_FR}/CodeSystem/fr-core-cs-identity-status"
CS_METHOD_COLLECTION: Final = f"{_FR}/CodeSystem/fr-core-cs-method-collection"
CS_MODE_VALIDATION: Final = f"{_FR}/CodeSystem/fr-core-cs-mode-validation-identity"
IDENTITY_RELIABILITY_URL: Final = f"{_FR}/StructureDefinition/fr-core-identity-reliability"
BIRTH_LIST_GIVEN_NAME_URL: Final = (
    f"{_FR}/StructureDefinition/fr-core-patient-birth-list-given-name"
)
INSEE_CODE_URL: Final = f"{_FR}/StructureDefinition/fr-core-address-insee-code"
BIRTH_PLACE_URL: Final = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
ORG_TYPES_EXT: Final = (
    "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-organization-types"
)
PATIENT_PROFILE: Final = f"{_FR}/StructureDefinition/fr-core-patient"
PATIENT_INS_PROFILE: Final = f"{_FR}/StructureDefinition/fr-core-patient-ins"
ORGANIZATION_PROFILE: Final = f"{_FR}/StructureDefinition/fr-core-organization"
PRACTITIONER_PROFILE: Final = f"{_FR}/StructureDefinition/fr-core-practitioner"
PRACTITIONER_ROLE_PROFILE: Final = f"{_FR}/StructureDefinition/fr-core-practitioner-role"

INS_TEST_OID: Final = "urn:oid:1.2.250.1.213.1.4.10"
IDNPS_OID: Final = "urn:oid:1.2.250.1.71.4.2.1"
IDNST_OID: Final = "urn:oid:1.2.250.1.71.4.2.2"
RPPS_SYSTEM: Final = "https://rpps.esante.gouv.fr"
FINESS_SYSTEM: Final = "https://finess.esante.gouv.fr"
# The platform's own regional patient identifier (RRI slice of FR Core Patient).
REGIONAL_ID_SYSTEM: Final = "https://parcours.example/fhir/sid/patient-regional-id"

COMMUNE_SYSTEM: Final = f"{_NOS}/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
CATEGORIE_SYSTEM: Final = (
    f"{_NOS}/TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement"
)
SECTEUR_SYSTEM: Final = f"{_NOS}/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite"
PROFESSION_SYSTEM: Final = f"{_NOS}/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
CATEG_PRO_SYSTEM: Final = (
    f"{_NOS}/TRE_R09-CategorieProfessionnelle/FHIR/TRE-R09-CategorieProfessionnelle"
)
SPECIALITE_SYSTEM: Final = f"{_NOS}/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
GENRE_SYSTEM: Final = f"{_NOS}/TRE_R22-GenreActivite/FHIR/TRE-R22-GenreActivite"
MODE_SYSTEM: Final = f"{_NOS}/TRE_R23-ModeExercice/FHIR/TRE-R23-ModeExercice"

# Everything is dated relative to this day, never to the clock (determinism).
REFERENCE_DAY: Final = date(2024, 6, 30)
MAX_NEAR_DUPLICATES: Final = 8

# ---- small helpers --------------------------------------------------------------------------


def _luhn_digit(digits: str) -> str:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def rniv_form(display: str) -> str:
    """Storage form of a strict trait (RNIV annexe III): uppercase, no diacritics, - and ' kept."""
    text = display.replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    text = text.replace("’", "'")
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
    kept = "".join(c if ("A" <= c <= "Z" or c in "-' ") else " " for c in stripped)
    return " ".join(kept.split())


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)]}


def _insee_ext(code: str) -> dict[str, Any]:
    return {"url": INSEE_CODE_URL, "valueCoding": _coding(COMMUNE_SYSTEM, code)}


def _address(rng: random.Random, commune: Commune, *, use: str | None = None) -> dict[str, Any]:
    line = f"{rng.randint(1, 120)} {rng.choice(STREETS)}"
    address: dict[str, Any] = {
        "extension": [_insee_ext(commune.insee)],
        "line": [line],
        "city": commune.name,
        "district": commune.insee[:2],
        "postalCode": commune.postal_code,
        "country": "FR",
    }
    if use:
        address = {"use": use, "type": "both", **address}
    return address


def _phone(rng: random.Random, *, mobile: bool) -> str:
    # ARCEP numbering blocks reserved for fiction (03 53 01 .., 06 39 98 ..): never assigned.
    prefix = "06 39 98" if mobile else "03 53 01"
    return f"{prefix} {rng.randint(0, 99):02d} {rng.randint(0, 99):02d}"


def _email_local(display: str) -> str:
    return rniv_form(display).lower().replace(" ", "-").replace("'", "")


# ---- organisations --------------------------------------------------------------------------


@dataclass
class _Org:
    id: str
    kind: str  # CHU, CH, DAC, CPTS, EHPAD, MSP, SSIAD
    dept: str
    commune: Commune


_ORG_CATEGORY: Final[dict[str, tuple[str, str] | None]] = {
    "CHU": ("101", "Centre Hospitalier Régional (C.H.R.)"),
    "CH": ("355", "Centre Hospitalier (C.H.)"),
    "EHPAD": ("500", "Etablissement d'hébergement pour personnes âgées dépendantes"),
    "MSP": ("603", "Maison de santé (L.6223-3)"),
    "CPTS": ("604", "Communauté Professionnelle Territoriale de Santé (CPTS)"),
    "SSIAD": ("354", "Service de Soins Infirmiers A Domicile (S.S.I.A.D)"),
    "DAC": None,
}


class _Builder:
    def __init__(self, seed: int, patients: int) -> None:
        self.rng = random.Random(seed)
        self.patient_count = patients
        self.resources: list[Resource] = []
        self.orgs: list[_Org] = []
        self.gps_by_dept: dict[str, list[str]] = {d: [] for d in DEPARTEMENTS}
        self.near_duplicates: list[NearDuplicate] = []
        self._finess_seq = 0
        self._rpps_seq = 0
        self._pract_seq = 0
        self._role_seq = 0
        # First PractitionerRole of each Practitioner (a GP's "médecin traitant" role), and the
        # roles a care circle may draw its other professionals from, by département.
        self.role_of: dict[str, str] = {}
        self.circle_pool: dict[str, list[str]] = {d: [] for d in DEPARTEMENTS}

    # -- identifiers (all fictitious) --

    def _finess(self, dept: str) -> str:
        # FICTITIOUS FINESS: département + "9" + 5-digit sequence + Luhn digit (9 characters).
        # Real FINESS numbers of these establishments are deliberately not used.
        self._finess_seq += 1
        body = f"{dept}9{self._finess_seq:05d}"
        return body + _luhn_digit(body)

    def _rpps(self) -> str:
        # FICTITIOUS RPPS: 11 digits, "10" + "99" + 6-digit sequence + Luhn digit. These
        # numbers were made up for the demo and designate no real professional.
        self._rpps_seq += 1
        body = f"1099{self._rpps_seq:06d}"
        return body + _luhn_digit(body)

    # -- organisations --

    def organization(self, kind: str, dept: str, commune: Commune, name: str) -> _Org:
        org = _Org(f"demo-org-{len(self.orgs) + 1:03d}", kind, dept, commune)
        finess = self._finess(dept)
        types: list[dict[str, Any]] = [
            {
                "extension": [{"url": ORG_TYPES_EXT, "valueCode": "organizationType"}],
                "coding": [_coding(CS_V2_3307, "GEOGRAPHICAL-ENTITY", "Entité géographique")],
            }
        ]
        if kind in ("CHU", "CH"):
            types.append(
                {
                    "extension": [{"url": ORG_TYPES_EXT, "valueCode": "secteurActiviteRASS"}],
                    "coding": [_coding(SECTEUR_SYSTEM, "SA01", "Etablissement public de santé")],
                }
            )
        category = _ORG_CATEGORY[kind]
        if category is None:
            types.append({"text": "Dispositif d'appui à la coordination (DAC)"})
        else:
            types.append(
                {
                    "extension": [
                        {"url": ORG_TYPES_EXT, "valueCode": "categorieEtablissementRASS"}
                    ],
                    "coding": [_coding(CATEGORIE_SYSTEM, *category)],
                }
            )
        slug = _email_local(name)[:40]
        resource: Resource = {
            "resourceType": "Organization",
            "id": org.id,
            "meta": {"profile": [ORGANIZATION_PROFILE]},
            "language": "fr",
            "identifier": [
                {
                    "use": "official",
                    "type": _concept(CS_V2_0203_FR, "IDNST"),
                    "system": IDNST_OID,
                    "value": "1" + finess,
                },
                {
                    "use": "official",
                    "type": _concept(CS_V2_0203_FR, "FINEG"),
                    "system": FINESS_SYSTEM,
                    "value": finess,
                },
            ],
            "active": True,
            "type": types,
            "name": name,
            "telecom": [
                {"system": "phone", "value": _phone(self.rng, mobile=False), "rank": 1},
                {"system": "email", "value": f"contact@{slug}.parcours.example"},
            ],
            "address": [_address(self.rng, commune)],
        }
        self.orgs.append(org)
        self.resources.append(resource)
        return org

    def organizations(self) -> None:
        for dept, dept_name in DEPARTEMENTS.items():
            communes = COMMUNES[dept]
            prefecture = communes[0]
            for index, name, chu in HOSPITALS[dept]:
                self.organization("CHU" if chu else "CH", dept, communes[index], name)
            self.organization(
                "DAC", dept, prefecture, f"Dispositif d'appui à la coordination {dept_name}"
            )
            cpts = (communes[0], communes[min(2, len(communes) - 1)])
            self.organization("CPTS", dept, cpts[0], f"CPTS du Grand {cpts[0].name}")
            self.organization("CPTS", dept, cpts[1], f"CPTS de {cpts[1].name} et environs")
            for i, commune in enumerate(communes[1:4]):
                self.organization(
                    "MSP", dept, commune, f"Maison de santé pluriprofessionnelle de {commune.name}"
                )
                label = EHPAD_NAMES[(int(dept) + i) % len(EHPAD_NAMES)]
                self.organization("EHPAD", dept, commune, f"EHPAD {label} – {commune.name}")
            self.organization(
                "SSIAD", dept, communes[-1], f"SSIAD du secteur de {communes[-1].name}"
            )

    def _orgs(self, dept: str, *kinds: str) -> list[_Org]:
        return [o for o in self.orgs if o.dept == dept and o.kind in kinds]

    # -- practitioners --

    def practitioner(
        self,
        dept: str,
        profession: tuple[str, str],
        commune: Commune,
        *,
        prefix: str | None = None,
    ) -> str:
        rng = self.rng
        self._pract_seq += 1
        pid = f"demo-practitioner-{self._pract_seq:04d}"
        female = rng.random() < 0.55
        given = rng.choice(FEMALE_GIVEN if female else MALE_GIVEN)
        family = rng.choice(FAMILY_NAMES)
        rpps = self._rpps()
        name: dict[str, Any] = {"use": "usual", "family": family, "given": [given]}
        if prefix:
            name["prefix"] = [prefix]
        self.resources.append(
            {
                "resourceType": "Practitioner",
                "id": pid,
                "meta": {"profile": [PRACTITIONER_PROFILE]},
                "language": "fr",
                "identifier": [
                    {
                        "use": "official",
                        "type": _concept(CS_V2_0203_FR, "IDNPS"),
                        "system": IDNPS_OID,
                        "value": "8" + rpps,
                    },
                    {
                        "use": "official",
                        "type": _concept(CS_V2_0203_FR, "RPPS"),
                        "system": RPPS_SYSTEM,
                        "value": rpps,
                    },
                ],
                "active": True,
                "name": [name],
                "telecom": [
                    {"system": "phone", "value": _phone(rng, mobile=False), "rank": 1},
                    {
                        "system": "email",
                        "value": f"{_email_local(given)}.{_email_local(family)}"
                        f".{self._pract_seq}@pro.parcours.example",
                    },
                ],
                "address": [_address(rng, commune, use="work")],
                "gender": "female" if female else "male",
                "qualification": [
                    {
                        "code": {
                            "coding": [
                                _coding(PROFESSION_SYSTEM, *profession),
                                _coding(CATEG_PRO_SYSTEM, "C", "Civil"),
                            ]
                        }
                    }
                ],
            }
        )
        return pid

    def role(
        self,
        practitioner: str,
        org: _Org | None,
        *,
        liberal: bool,
        specialty: dict[str, Any] | None = None,
        function: str | None = None,
    ) -> str:
        self._role_seq += 1
        codes: list[dict[str, Any]] = [
            _concept(GENRE_SYSTEM, "GENR01", "Activité standard de soin ou de pharmacien"),
            _concept(MODE_SYSTEM, "L" if liberal else "S", "Libéral" if liberal else "Salarié"),
        ]
        if function:
            codes.append({"text": function})
        resource: Resource = {
            "resourceType": "PractitionerRole",
            "id": f"demo-role-{self._role_seq:04d}",
            "meta": {"profile": [PRACTITIONER_ROLE_PROFILE]},
            "active": True,
            "period": {"start": "2020-01-01"},
            "practitioner": {"reference": f"Practitioner/{practitioner}"},
            "code": codes,
        }
        if org is not None:
            resource["organization"] = {"reference": f"Organization/{org.id}"}
        if specialty is not None:
            resource["specialty"] = [specialty]
        self.resources.append(resource)
        self.role_of.setdefault(practitioner, resource["id"])
        return str(resource["id"])

    def practitioners(self) -> None:
        rng = self.rng
        doctor = ("10", "Médecin")
        nurse = ("60", "Infirmier")
        pharmacist = ("21", "Pharmacien")
        general = _concept(SPECIALITE_SYSTEM, "SM54", "Médecine générale (SM)")
        hospital_specialties = (
            "Gériatrie",
            "Cardiologie",
            "Médecine interne",
            "Pneumologie",
            "Neurologie",
            "Oncologie médicale",
            "Néphrologie",
            "Psychiatrie",
        )
        gps_per_dept = max(4, min(12, self.patient_count // 40 + 2))
        for dept in DEPARTEMENTS:
            communes = COMMUNES[dept]
            msps = self._orgs(dept, "MSP")
            cpts = self._orgs(dept, "CPTS")
            for i in range(gps_per_dept):
                msp = msps[i % len(msps)] if i % 3 != 2 else None
                commune = msp.commune if msp else communes[i % len(communes)]
                gp = self.practitioner(dept, doctor, commune, prefix="Dr")
                self.gps_by_dept[dept].append(gp)
                self.role(gp, msp, liberal=True, specialty=general, function="Médecin traitant")
                if i % 2 == 0:
                    self.role(gp, cpts[i % len(cpts)], liberal=True, specialty=general)
            for i in range(3):
                org = msps[i % len(msps)]
                ide = self.practitioner(dept, nurse, org.commune)
                self.circle_pool[dept].append(
                    self.role(ide, org, liberal=True, function="Infirmier(ère) diplômé(e) d'État")
                )
            ssiad = self._orgs(dept, "SSIAD")[0]
            ide = self.practitioner(dept, nurse, ssiad.commune)
            self.circle_pool[dept].append(
                self.role(ide, ssiad, liberal=False, function="Infirmier(ère) coordinateur(trice)")
            )
            for i in range(2):
                commune = communes[(i * 2) % len(communes)]
                ph = self.practitioner(dept, pharmacist, commune, prefix="Dr")
                self.circle_pool[dept].append(
                    self.role(ph, None, liberal=True, function="Pharmacien titulaire d'officine")
                )
            dac = self._orgs(dept, "DAC")[0]
            for _ in range(2):
                coord = self.practitioner(dept, nurse, dac.commune)
                self.role(coord, dac, liberal=False, function="Coordinateur(trice) de parcours")
            for hospital in self._orgs(dept, "CHU", "CH"):
                for _ in range(4 if hospital.kind == "CHU" else 2):
                    doc = self.practitioner(dept, doctor, hospital.commune, prefix="Dr")
                    role = self.role(
                        doc,
                        hospital,
                        liberal=False,
                        specialty={"text": rng.choice(hospital_specialties)},
                        function="Praticien hospitalier",
                    )
                    self.circle_pool[dept].append(role)
            for ehpad in self._orgs(dept, "EHPAD")[:1]:
                medco = self.practitioner(dept, doctor, ehpad.commune, prefix="Dr")
                self.role(medco, ehpad, liberal=False, function="Médecin coordonnateur d'EHPAD")

    # -- patients --

    def _birth_date(self) -> date:
        rng = self.rng
        roll = rng.random()
        if roll < 0.7:
            age = rng.randint(65, 98)
        elif roll < 0.9:
            age = rng.randint(40, 64)
        else:
            age = rng.randint(0, 39)
        return REFERENCE_DAY - timedelta(days=age * 365 + rng.randint(0, 364))

    def _birthplace(self, home_dept: str) -> tuple[str, str, str | None]:
        """(COG, label, country name when born abroad)."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.8:
            dept = home_dept if rng.random() < 0.7 else rng.choice(list(DEPARTEMENTS))
            commune = rng.choice(COMMUNES[dept])
            return commune.insee, commune.name, None
        if roll < 0.9:
            commune = rng.choice(OTHER_FRENCH_BIRTHPLACES)
            return commune.insee, commune.name, None
        country, cog = rng.choice(FOREIGN_BIRTHPLACES)
        return cog, country, country

    def patients(self) -> None:
        rng = self.rng
        duplicates = near_duplicate_count(self.patient_count)
        base = self.patient_count - duplicates
        people: list[_Person] = []
        used_nirs: set[str] = set()
        for n in range(1, base + 1):
            person = self._person(n, used_nirs)
            people.append(person)
            self.resources.append(self._patient_resource(person))
        # Near-duplicates: the same person typed again, PROV, no INS.
        candidates = [p for p in people if p.status in ("QUAL", "VALI")]
        rng.shuffle(candidates)
        kinds = DUPLICATE_KINDS[:duplicates]
        chosen: list[_Person] = []
        for kind in kinds:
            fit = next((p for p in candidates if p not in chosen and _fits(kind, p)), None)
            if fit is None:
                continue
            chosen.append(fit)
            dup_id = f"demo-patient-{len(people) + len(self.near_duplicates) + 1:04d}"
            dup = self._duplicate(fit, kind, dup_id)
            self.near_duplicates.append(NearDuplicate(fit.id, dup_id, kind))
            self.resources.append(self._patient_resource(dup))
        # A tiny region may not offer a candidate for every kind: fill up with new people.
        n = len(people) + len(self.near_duplicates)
        while n < self.patient_count:
            n += 1
            self.resources.append(self._patient_resource(self._person(n, used_nirs)))

    def _person(self, n: int, used_nirs: set[str]) -> _Person:
        rng = self.rng
        dept = rng.choices(list(DEPARTEMENTS), weights=[6, 6, 3, 2, 2, 6, 3, 2])[0]
        female = rng.random() < 0.55
        pool = FEMALE_GIVEN if female else MALE_GIVEN
        given: list[str] = []
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            name = rng.choice(pool)
            words = {w for g in given for w in rniv_form(g).replace("-", " ").split()}
            if not words & set(rniv_form(name).replace("-", " ").split()):
                given.append(name)
        birth = self._birth_date()
        family = rng.choice(FAMILY_NAMES)
        used: str | None = None
        if female and (REFERENCE_DAY.year - birth.year) > 25 and rng.random() < 0.45:
            used = rng.choice([f for f in FAMILY_NAMES if f != family])
        cog, place, country = self._birthplace(dept)
        roll = rng.random()
        status = "PROV"
        for threshold, name in ((0.74, "QUAL"), (0.79, "RECUP"), (0.92, "VALI")):
            if roll < threshold:
                status = name
                break
        nir: str | None = None
        if status in ("QUAL", "RECUP"):
            while nir is None or nir in used_nirs:
                # sex, year, month, département + commune of birth (the COG; 99 + country
                # code when born abroad; 2A/2B kept for Corsica), order number.
                first13 = (
                    ("2" if female else "1")
                    + f"{birth.year % 100:02d}{birth.month:02d}"
                    + cog
                    + f"{rng.randint(1, 999):03d}"
                )
                nir = first13 + ins_key(first13)
            used_nirs.add(nir)
        home = rng.choice(COMMUNES[dept])
        return _Person(
            id=f"demo-patient-{n:04d}",
            female=female,
            family=family,
            used_family=used,
            given=given,
            birth=birth,
            birth_cog=cog,
            birth_label=place,
            birth_country=country,
            status=status,
            nir=nir,
            dept=dept,
            address=_address(rng, home, use="home"),
            mobile=_phone(rng, mobile=True),
            home_phone=_phone(rng, mobile=False) if rng.random() < 0.5 else None,
            email=rng.random() < 0.3,
            gp=rng.choice(self.gps_by_dept[dept]),
            method=rng.choice(("INSI", "CV")) if status in ("QUAL", "RECUP") else "SM",
            mode=rng.choice(("CN", "CN", "CN", "PA", "CS")),
            stored=status != "PROV",
        )

    def _patient_resource(self, p: _Person) -> Resource:
        def strict(value: str) -> str:
            return rniv_form(value) if p.stored else value

        given_list = [strict(g) for g in p.given]
        official: dict[str, Any] = {
            "extension": [{"url": BIRTH_LIST_GIVEN_NAME_URL, "valueString": " ".join(given_list)}],
            "use": "official",
            "text": f"{' '.join(p.given)} {p.family.upper()}",
            "family": strict(p.family),
            "given": [given_list[0]],
        }
        names = [official]
        if p.used_family is not None:
            names.append(
                {
                    "use": "usual",
                    "text": f"{p.given[0]} {p.used_family.upper()}",
                    "family": strict(p.used_family),
                    "given": [given_list[0]],
                }
            )
        reliability: list[dict[str, Any]] = [
            {"url": "identityStatus", "valueCoding": _coding(CS_IDENTITY_STATUS, p.status)},
            {"url": "methodCollection", "valueCoding": _coding(CS_METHOD_COLLECTION, p.method)},
        ]
        year = 2019 + int(p.id[-4:]) % 5
        if p.status in ("QUAL", "RECUP"):
            reliability.append({"url": "dateCollection", "valueDate": f"{year}-03-14"})
        if p.status in ("QUAL", "VALI"):
            reliability.append({"url": "validationDate", "valueDate": f"{year}-03-14"})
            reliability.append(
                {"url": "validationMode", "valueCoding": _coding(CS_MODE_VALIDATION, p.mode)}
            )
        identifiers: list[dict[str, Any]] = [
            {
                "use": "secondary",
                "type": _concept(CS_V2_0203_HL7, "RRI"),
                "system": REGIONAL_ID_SYSTEM,
                "value": "BFC-" + p.id.rsplit("-", 1)[1],
            }
        ]
        if p.nir is not None:
            identifiers.insert(
                0,
                {
                    "use": "official",
                    "type": _concept(CS_V2_0203_FR, "INS-NIR-TEST", "NIR TEST"),
                    "system": INS_TEST_OID,
                    "value": p.nir,
                },
            )
        birth_place: dict[str, Any] = {"extension": [_insee_ext(p.birth_cog)]}
        if p.birth_country is not None:
            birth_place["country"] = p.birth_country
        elif p.birth_cog != "99999":
            birth_place["city"] = p.birth_label
        telecom: list[dict[str, Any]] = [
            {"system": "phone", "value": p.mobile, "use": "mobile", "rank": 1}
        ]
        if p.home_phone:
            telecom.append({"system": "phone", "value": p.home_phone, "use": "home"})
        if p.email:
            local = f"{_email_local(p.given[0])}.{_email_local(p.family)}"
            telecom.append({"system": "email", "value": f"{local}@mail.parcours.example"})
        return {
            "resourceType": "Patient",
            "id": p.id,
            "meta": {"profile": [PATIENT_INS_PROFILE if p.nir else PATIENT_PROFILE]},
            "extension": [
                {"url": BIRTH_PLACE_URL, "valueAddress": birth_place},
                {"url": IDENTITY_RELIABILITY_URL, "extension": reliability},
            ],
            "identifier": identifiers,
            "active": True,
            "name": names,
            "telecom": telecom,
            "gender": "female" if p.female else "male",
            "birthDate": p.birth.isoformat(),
            "address": [p.address],
            "generalPractitioner": [{"reference": f"Practitioner/{p.gp}"}],
        }

    def _duplicate(self, p: _Person, kind: str, dup_id: str) -> _Person:
        rng = self.rng
        family, given, birth = p.family, list(p.given), p.birth
        female, used, cog = p.female, p.used_family, p.birth_cog
        address, mobile = p.address, p.mobile
        if kind == "accents-and-hyphen":
            # Typed as spoken, accents and mixed case kept (the original is in RNIV form).
            given = [_swap_separator(given[0]), *given[1:]]
        elif kind == "used-name-as-birth-name":
            assert used is not None
            family, used = used, None
        elif kind == "day-month-swapped":
            birth = date(birth.year, birth.day, birth.month)
        elif kind == "typo":
            letters = [i for i, c in enumerate(family) if c.isalpha()]
            drop = letters[len(letters) // 2]
            family = family[:drop] + family[drop + 1 :]
        elif kind == "apostrophe":
            family = family.replace("'", " ", 1) if "'" in family else family.replace(" ", "", 1)
            family = family.replace("-", " ", 1) if family == p.family else family
        elif kind == "first-given-only":
            given = given[:1]
            other = rng.choice(COMMUNES[p.dept])
            address = _address(rng, other, use="home")
        elif kind == "unknown-birthplace":
            cog = "99999"
            mobile = _phone(rng, mobile=True)
        elif kind == "sex-typo":
            female = not female
        return _Person(
            id=dup_id,
            female=female,
            family=family,
            used_family=used,
            given=given,
            birth=birth,
            birth_cog=cog,
            birth_label=p.birth_label,
            birth_country=p.birth_country if cog != "99999" else None,
            status="PROV",
            nir=None,
            dept=p.dept,
            address=address,
            mobile=mobile,
            home_phone=None,
            email=False,
            gp=p.gp,
            method="SM",
            mode=p.mode,
            stored=kind != "accents-and-hyphen",
        )


DUPLICATE_KINDS: Final[tuple[str, ...]] = (
    "accents-and-hyphen",
    "used-name-as-birth-name",
    "day-month-swapped",
    "typo",
    "apostrophe",
    "first-given-only",
    "unknown-birthplace",
    "sex-typo",
)


def _swap_separator(given: str) -> str:
    if "-" in given:
        return given.replace("-", " ")
    if " " in given:
        return given.replace(" ", "-")
    return given.lower()


def _fits(kind: str, p: _Person) -> bool:
    if kind == "accents-and-hyphen":
        return any(c in p.given[0] for c in "- ") or rniv_form(p.family) != p.family.upper()
    if kind == "used-name-as-birth-name":
        return p.used_family is not None
    if kind == "day-month-swapped":
        return p.birth.day <= 12 and p.birth.day != p.birth.month
    if kind == "typo":
        return sum(c.isalpha() for c in p.family) >= 5
    if kind == "apostrophe":
        return any(c in p.family for c in "' -")
    if kind == "first-given-only":
        return len(p.given) > 1
    return True


@dataclass
class _Person:
    id: str
    female: bool
    family: str
    used_family: str | None
    given: list[str]
    birth: date
    birth_cog: str
    birth_label: str
    birth_country: str | None
    status: str
    nir: str | None
    dept: str
    address: dict[str, Any]
    mobile: str
    home_phone: str | None
    email: bool
    gp: str
    method: str
    mode: str
    stored: bool  # strict traits stored in RNIV form (uppercase, no diacritics)


@dataclass(frozen=True, slots=True)
class NearDuplicate:
    """A Patient that is the same person as ``original`` typed differently."""

    original: str
    duplicate: str
    kind: str


@dataclass(frozen=True, slots=True)
class Region:
    resources: list[Resource]
    near_duplicates: list[NearDuplicate]


def near_duplicate_count(patients: int) -> int:
    """How many of ``patients`` are near-duplicates of another one (up to 8)."""
    return min(MAX_NEAR_DUPLICATES, patients // 10)


def build_region(seed: int = 2024, patients: int = 300) -> Region:
    """The region and the list of its deliberate near-duplicates."""
    if patients < 0:
        raise ValueError("patients must be >= 0")
    builder = _Builder(seed, patients)
    builder.organizations()
    builder.practitioners()
    builder.patients()
    from .circles import add_care_circles, add_demo_users

    # After everything else, from their own random streams: adding them changed nothing above.
    add_demo_users(builder)
    add_care_circles(builder, seed)
    return Region(builder.resources, builder.near_duplicates)


def generate_region(seed: int = 2024, patients: int = 300) -> list[Resource]:
    """A deterministic synthetic region as FHIR R4 resources (JSON dicts); all fictitious.

    Organizations first, then Practitioners and PractitionerRoles, then Patients, whose last
    few are deliberate near-duplicates of earlier ones (see the module docstring and
    :func:`build_region`).
    """
    return build_region(seed, patients).resources
