"""Care circles (CDS CareTeams) and the demo users of the demo region.

Every demo Patient gets one care circle after the ANS Cercle de soins profile
``cds-ihe-careteam``: an identifier, status ``active``, a name, the patient as subject, a start,
the DAC of the patient's département as managing organisation, and as participants the
patient's GP (role PCP "Médecin traitant", TRE_R259), zero to three other professionals of the
département (nurse, pharmacist, hospital doctor; role PROV, TRE_R260), sometimes a carer
(RelatedPerson after ``cds-fr-related-person``, role CAREGIVER) and the DAC (role ASSIGNED).
Participant roles come from the IG's ValueSet ``careteam-roles-vs`` (all of TRE_R260 plus PCP
of TRE_R259); the TRE_R260 displays were written from memory of the NOS, not read from it.
Some professional participations have already ended (``period.end`` before the reference day).

:data:`DEMO_USERS` names one professional per platform role for the UI and the access-policy
tests. Their ids never change with the seed or the number of patients; the GP is the first GP
of Côte-d'Or, who is the médecin traitant of real demo patients, and the nurse and the DAC
coordinator sit in those patients' care circles.

All of it is built after the rest of the region, the care circles from a random stream of their
own (derived from the seed), so adding it left the rest of the region exactly as it was.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from .data import COMMUNES, DEPARTEMENTS, FAMILY_NAMES, FEMALE_GIVEN, MALE_GIVEN

if TYPE_CHECKING:
    from .generator import _Builder

__all__ = [
    "CARETEAM_ID_SYSTEM",
    "CARETEAM_PROFILE",
    "DEMO_USERS",
    "RELATED_PERSON_PROFILE",
    "DemoUser",
    "add_care_circles",
    "add_demo_users",
]

Resource = dict[str, Any]

_CDS: Final = "https://interop.esante.gouv.fr/ig/fhir/cds/StructureDefinition"
_NOS: Final = "https://mos.esante.gouv.fr/NOS"
CARETEAM_PROFILE: Final = f"{_CDS}/cds-ihe-careteam"
RELATED_PERSON_PROFILE: Final = f"{_CDS}/cds-fr-related-person"
CARETEAM_ID_SYSTEM: Final = "https://parcours.example/fhir/sid/cercle-de-soins"
PARTICIPATION_FUNCTION: Final = (
    f"{_NOS}/TRE_R259-HL7ParticipationFunction/FHIR/TRE-R259-HL7ParticipationFunction"
)
ROLE_CLASS: Final = f"{_NOS}/TRE_R260-HL7RoleClass/FHIR/TRE-R260-HL7RoleClass"
ROLE_CODE: Final = f"{_NOS}/TRE_R216-HL7RoleCode/FHIR/TRE-R216-HL7RoleCode"

_PCP: Final = {"system": PARTICIPATION_FUNCTION, "code": "PCP", "display": "Médecin traitant"}
_PROV: Final = {"system": ROLE_CLASS, "code": "PROV", "display": "Professionnel de santé"}
_CAREGIVER: Final = {"system": ROLE_CLASS, "code": "CAREGIVER", "display": "Aidant"}
_ASSIGNED: Final = {"system": ROLE_CLASS, "code": "ASSIGNED", "display": "Entité assignée"}
# (TRE_R216 code, display) of a carer's relationship to the patient.
_RELATIONS: Final = (
    ("SPS", "Conjoint(e)"),
    ("DAU", "Fille"),
    ("SON", "Fils"),
    ("NBOR", "Voisin(e)"),
    ("FRND", "Ami(e)"),
)


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A demo account: who the UI logs in as, and what the access policy sees."""

    username: str
    display: str
    # Platform roles (parcours.security.principal.ROLES).
    roles: frozenset[str]
    practitioner_id: str
    practitioner_role_id: str

    @property
    def practitioner(self) -> str:
        return f"Practitioner/{self.practitioner_id}"


# One per platform role a person holds. Ids are fixed; the GP is the first practitioner built.
DEMO_USERS: Final[tuple[DemoUser, ...]] = (
    DemoUser(
        "medecin", "Dr Jeanne Fabre", frozenset({"professional"}), "demo-practitioner-0001",
        "demo-role-0001",
    ),
    DemoUser(
        "infirmiere", "Camille Lambert", frozenset({"professional"}), "demo-user-ide",
        "demo-user-ide-role",
    ),
    DemoUser(
        "coordinatrice", "Nadia Roussel", frozenset({"coordinator"}), "demo-user-dac",
        "demo-user-dac-role",
    ),
    DemoUser(
        "identitovigilance", "Olivier Chevalier", frozenset({"identity-referent"}),
        "demo-user-iv", "demo-user-iv-role",
    ),
    DemoUser(
        "analyste", "Dr Bruno Masson", frozenset({"analyst"}), "demo-user-analyste",
        "demo-user-analyste-role",
    ),
)  # fmt: skip
_BY_USERNAME: Final = {user.username: user for user in DEMO_USERS}
DEMO_DEPARTEMENT: Final = next(iter(DEPARTEMENTS))  # Côte-d'Or: the GP's département


def _find(builder: _Builder, res_type: str, res_id: str) -> Resource:
    return next(r for r in builder.resources if r["resourceType"] == res_type and r["id"] == res_id)


def _rename(practitioner: Resource, display: str, seq: str, *, female: bool) -> None:
    """Give a demo user the fixed name of DEMO_USERS (the generated one depends on the seed)."""
    from .generator import _email_local

    prefix, _, rest = display.partition(" ") if display.startswith("Dr ") else ("", "", display)
    given, family = rest.split(" ", 1)
    name: dict[str, Any] = {"use": "usual", "family": family, "given": [given]}
    if prefix:
        name["prefix"] = [prefix]
    practitioner["name"] = [name]
    practitioner["gender"] = "female" if female else "male"
    for telecom in practitioner["telecom"]:
        if telecom["system"] == "email":
            local = f"{_email_local(given)}.{_email_local(family)}.{seq}"
            telecom["value"] = f"{local}@pro.parcours.example"


def add_demo_users(builder: _Builder) -> None:
    """The demo users' Practitioners and PractitionerRoles (the GP exists already)."""
    dept = DEMO_DEPARTEMENT
    gp = _BY_USERNAME["medecin"]
    _rename(_find(builder, "Practitioner", gp.practitioner_id), gp.display, "1", female=True)
    gp_role = _find(builder, "PractitionerRole", gp.practitioner_role_id)
    msp_ref = gp_role.get("organization", {}).get("reference")
    msp = next(o for o in builder.orgs if f"Organization/{o.id}" == msp_ref)
    dac = builder._orgs(dept, "DAC")[0]
    chu = builder._orgs(dept, "CHU", "CH")[0]
    nurse, doctor = ("60", "Infirmier"), ("10", "Médecin")
    for username, female, profession, org, liberal, function in (
        ("infirmiere", True, nurse, msp, True, "Infirmier(ère) diplômé(e) d'État"),
        ("coordinatrice", True, nurse, dac, False, "Coordinateur(trice) de parcours"),
        ("identitovigilance", False, nurse, chu, False, "Référent(e) identitovigilance"),
        ("analyste", False, doctor, None, False, "Médecin de santé publique, analyste (ARS)"),
    ):
        user = _BY_USERNAME[username]
        commune = org.commune if org is not None else COMMUNES[dept][0]
        generated = builder.practitioner(dept, profession, commune)
        practitioner = builder.resources.pop()
        builder._pract_seq -= 1  # the generated id is not kept: the sequence stays dense
        assert practitioner["id"] == generated
        practitioner["id"] = user.practitioner_id
        _rename(practitioner, user.display, user.practitioner_id.rsplit("-", 1)[1], female=female)
        builder.resources.append(practitioner)
        role_id = builder.role(user.practitioner_id, org, liberal=liberal, function=function)
        builder._role_seq -= 1
        role = builder.resources[-1]
        assert role["id"] == role_id
        role["id"] = user.practitioner_role_id
        builder.role_of[user.practitioner_id] = user.practitioner_role_id


def _participant(
    member: str, role: dict[str, str], start: str, end: str | None = None
) -> dict[str, Any]:
    period = {"start": start}
    if end is not None:
        period["end"] = end
    return {"role": [{"coding": [dict(role)]}], "member": {"reference": member}, "period": period}


def _carer(rng: random.Random, patient: Resource, number: str) -> Resource:
    code, display = rng.choice(_RELATIONS)
    female = rng.random() < 0.6
    family = patient["name"][0]["family"] if code in ("SPS", "DAU", "SON") else None
    return {
        "resourceType": "RelatedPerson",
        "id": f"demo-relatedperson-{number}",
        "meta": {"profile": [RELATED_PERSON_PROFILE]},
        "active": True,
        "patient": {"reference": f"Patient/{patient['id']}"},
        "relationship": [
            {"coding": [dict(_CAREGIVER)]},
            {"coding": [{"system": ROLE_CODE, "code": code, "display": display}]},
        ],
        "name": [
            {
                "use": "usual",
                "family": family or rng.choice(FAMILY_NAMES),
                "given": [rng.choice(FEMALE_GIVEN if female else MALE_GIVEN)],
            }
        ],
        "telecom": [{"system": "phone", "value": f"06{rng.randint(10_000_000, 99_999_999)}"}],
        "gender": "female" if female else "male",
    }


def add_care_circles(builder: _Builder, seed: int) -> None:
    """One CDS CareTeam per Patient, after the Patients (see the module docstring)."""
    from .generator import REFERENCE_DAY

    rng = random.Random(f"parcours-demo-circles-{seed}")
    gp_user = _BY_USERNAME["medecin"]
    followers = [
        _BY_USERNAME[name].practitioner_role_id for name in ("infirmiere", "coordinatrice")
    ]
    dacs = {dept: builder._orgs(dept, "DAC")[0].id for dept in DEPARTEMENTS}
    patients = [r for r in builder.resources if r["resourceType"] == "Patient"]
    for patient in patients:
        number = patient["id"].rsplit("-", 1)[1]
        dept = patient["address"][0]["postalCode"][:2]
        gp = patient["generalPractitioner"][0]["reference"].split("/", 1)[1]
        start_day = REFERENCE_DAY - timedelta(days=rng.randint(60, 1500))
        start = start_day.isoformat()
        official = patient["name"][0]
        participants = [_participant(f"PractitionerRole/{builder.role_of[gp]}", _PCP, start)]
        others = rng.sample(builder.circle_pool[dept], k=rng.choice((0, 1, 1, 2, 2, 3)))
        if gp == gp_user.practitioner_id:
            others = [*followers, *(o for o in others if o not in followers)]
        for role_id in others:
            joined = start_day + timedelta(days=rng.randint(0, 30))
            ended: str | None = None
            if role_id not in followers and rng.random() < 0.12:
                # An earlier participation, over before the reference day.
                span = (REFERENCE_DAY - joined).days
                ended = (joined + timedelta(days=rng.randint(1, max(1, span - 1)))).isoformat()
            participants.append(
                _participant(f"PractitionerRole/{role_id}", _PROV, joined.isoformat(), ended)
            )
        if rng.random() < 0.35:
            carer = _carer(rng, patient, number)
            builder.resources.append(carer)
            participants.append(_participant(f"RelatedPerson/{carer['id']}", _CAREGIVER, start))
        participants.append(_participant(f"Organization/{dacs[dept]}", _ASSIGNED, start))
        builder.resources.append(
            {
                "resourceType": "CareTeam",
                "id": f"demo-careteam-{number}",
                "meta": {"profile": [CARETEAM_PROFILE]},
                "identifier": [{"system": CARETEAM_ID_SYSTEM, "value": f"CDS-BFC-{number}"}],
                "status": "active",
                "name": f"Cercle de soins de {official['text']}",
                "subject": {"reference": f"Patient/{patient['id']}"},
                "period": {"start": start},
                "participant": participants,
                "managingOrganization": [{"reference": f"Organization/{dacs[dept]}"}],
            }
        )
