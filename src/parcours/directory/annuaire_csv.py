"""The Annuaire Santé public extract (``PS_LibreAcces_Personne_activite_*.txt``) as FHIR.

The "extraction en libre accès" of annuaire.sante.fr is one pipe-separated text file with a
header line, one line per activity of a professional (a professional with three workplaces has
three lines, one with no activity has one line with empty structure columns). The file is
sorted by professional, which :func:`read_groups` relies on to hand over all the lines of one
professional together (it still copes with an unsorted file, see there).

Mapping, after the Annuaire Santé FHIR profiles (``as-practitioner``, ``as-organization``,
``as-practitionerrole``) and the ANS examples in ``shared/corpus/fhir/annuaire``:

* one **Practitioner** per "Identification nationale PP" (IDNPS on ``urn:oid:1.2.250.1.71.4.2.1``,
  plus the RPPS on ``https://rpps.esante.gouv.fr`` when the identifier type is 8 = RPPS), its
  exercise name, and qualifications: profession (TRE_G15 + category TRE_R09) and ordinal
  specialty (savoir-faire of type S, TRE_R38);
* one **Organization** per structure: IDNST on ``urn:oid:1.2.250.1.71.4.2.2`` = "1" + FINESS of
  the site, else "3" + SIRET, else "4" + the technical identifier of the structure; FINESS
  (FINEG) on ``https://finess.esante.gouv.fr``, SIRET on ``https://sirene.fr``, the technical
  identifier (RPPSRG) on ``https://rppsrang.esante.gouv.fr``; name, alias, address, telecom;
* one **PractitionerRole** per activity: practitioner, organization, code = profession, mode
  of exercise (TRE_R23), role (TRE_R21) and activity kind (TRE_R22), specialty = savoir-faire,
  telecom of the structure.

Logical ids come from the national identifiers (``idnps-…``, ``idnst-…``, and for a role a
digest of professional, structure, profession, mode, role and activity kind), so a re-import
finds and updates the same resources.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "ActivityRow",
    "CsvFormatError",
    "Group",
    "Rejected",
    "departement_of",
    "group_resources",
    "read_groups",
]

Resource = dict[str, Any]

# The 56 columns of PS_LibreAcces_Personne_activite, in file order.
COLUMNS: Final[tuple[str, ...]] = (
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Code civilité d'exercice",
    "Libellé civilité d'exercice",
    "Code civilité",
    "Libellé civilité",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code profession",
    "Libellé profession",
    "Code catégorie professionnelle",
    "Libellé catégorie professionnelle",
    "Code type savoir-faire",
    "Libellé type savoir-faire",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Code mode exercice",
    "Libellé mode exercice",
    "Numéro SIRET site",
    "Numéro SIREN site",
    "Numéro FINESS site",
    "Numéro FINESS établissement juridique",
    "Identifiant technique de la structure",
    "Raison sociale site",
    "Enseigne commerciale site",
    "Complément destinataire (coord. structure)",
    "Complément point géographique (coord. structure)",
    "Numéro Voie (coord. structure)",
    "Indice répétition voie (coord. structure)",
    "Code type de voie (coord. structure)",
    "Libellé type de voie (coord. structure)",
    "Libellé Voie (coord. structure)",
    "Mention distribution (coord. structure)",
    "Bureau cedex (coord. structure)",
    "Code postal (coord. structure)",
    "Code commune (coord. structure)",
    "Libellé commune (coord. structure)",
    "Code pays (coord. structure)",
    "Libellé pays (coord. structure)",
    "Téléphone (coord. structure)",
    "Téléphone 2 (coord. structure)",
    "Télécopie (coord. structure)",
    "Adresse e-mail (coord. structure)",
    "Code Département (structure)",
    "Libellé Département (structure)",
    "Ancien identifiant de la structure",
    "Autorité d'enregistrement",
    "Code secteur d'activité",
    "Libellé secteur d'activité",
    "Code section tableau pharmaciens",
    "Libellé section tableau pharmaciens",
    "Code rôle",
    "Libellé rôle",
    "Code genre activité",
    "Libellé genre activité",
)
# Without these the file cannot be mapped at all; the others may be missing from older layouts.
REQUIRED_COLUMNS: Final = frozenset(
    {
        "Type d'identifiant PP",
        "Identifiant PP",
        "Identification nationale PP",
        "Nom d'exercice",
        "Prénom d'exercice",
        "Code profession",
        "Numéro SIRET site",
        "Numéro FINESS site",
        "Identifiant technique de la structure",
        "Raison sociale site",
        "Code postal (coord. structure)",
    }
)

_FR: Final = "https://hl7.fr/ig/fhir/core"
_NOS: Final = "https://mos.esante.gouv.fr/NOS"
_AS: Final = "https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition"
CS_V2_0203: Final = f"{_FR}/CodeSystem/fr-core-cs-v2-0203"
CS_V2_3307: Final = f"{_FR}/CodeSystem/fr-core-cs-v2-3307"
IDNPS_OID: Final = "urn:oid:1.2.250.1.71.4.2.1"
IDNST_OID: Final = "urn:oid:1.2.250.1.71.4.2.2"
RPPS_SYSTEM: Final = "https://rpps.esante.gouv.fr"
FINESS_SYSTEM: Final = "https://finess.esante.gouv.fr"
SIRET_SYSTEM: Final = "https://sirene.fr"
RPPSRG_SYSTEM: Final = "https://rppsrang.esante.gouv.fr"
INSEE_CODE_URL: Final = f"{_FR}/StructureDefinition/fr-core-address-insee-code"
ORG_TYPES_EXT: Final = f"{_AS}/as-ext-organization-types"
PROFESSION_SYSTEM: Final = f"{_NOS}/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
CATEGORY_SYSTEM: Final = (
    f"{_NOS}/TRE_R09-CategorieProfessionnelle/FHIR/TRE-R09-CategorieProfessionnelle"
)
SPECIALTY_SYSTEM: Final = f"{_NOS}/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
MODE_SYSTEM: Final = f"{_NOS}/TRE_R23-ModeExercice/FHIR/TRE-R23-ModeExercice"
ROLE_SYSTEM: Final = f"{_NOS}/TRE_R21-Fonction/FHIR/TRE-R21-Fonction"
GENRE_SYSTEM: Final = f"{_NOS}/TRE_R22-GenreActivite/FHIR/TRE-R22-GenreActivite"
SECTOR_SYSTEM: Final = f"{_NOS}/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite"
COMMUNE_SYSTEM: Final = f"{_NOS}/TRE_R13-Commune/FHIR/TRE-R13-Commune"
PRACTITIONER_PROFILE: Final = f"{_AS}/as-practitioner"
ORGANIZATION_PROFILE: Final = f"{_AS}/as-organization"
ROLE_PROFILE: Final = f"{_AS}/as-practitionerrole"

_ID_VALUE = re.compile(r"^[0-9A-Za-z]{1,60}$")
_FINESS = re.compile(r"^[0-9][0-9AB][0-9]{7}$")
_SIRET = re.compile(r"^[0-9]{14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class CsvFormatError(ValueError):
    """The file is not an Annuaire Santé extract (its header lacks required columns)."""


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ActivityRow:
    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        return self.values.get(column, "")


@dataclass(slots=True)
class Group:
    """Every kept line of one professional, and the lines refused on the way."""

    idnps: str
    rows: list[ActivityRow] = field(default_factory=list)

    @property
    def lines(self) -> list[int]:
        return [row.line for row in self.rows]


def _decode(raw: bytes) -> str:
    # Current extracts are UTF-8; older ones (and some re-exports) are Windows-1252.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _split(line: str) -> list[str]:
    return line.rstrip("\r\n").split("|")


def departement_of(row: ActivityRow) -> str | None:
    """The département of the activity's structure: its column, else from the postal code."""
    code = row.get("Code Département (structure)").strip()
    if code:
        return code
    postal = row.get("Code postal (coord. structure)").strip()
    if len(postal) != 5 or not postal.isdigit():
        return None
    if postal.startswith("97") or postal.startswith("98"):
        return postal[:3]
    if postal.startswith("20"):
        # Corsica: 200xx-201xx is Corse-du-Sud, 202xx-206xx Haute-Corse.
        return "2A" if postal < "20200" else "2B"
    return postal[:2]


def _check(row: ActivityRow) -> str | None:
    """Why the line cannot be imported, or None."""
    idnps = row.get("Identification nationale PP").strip()
    if not idnps:
        return "no Identification nationale PP"
    if not _ID_VALUE.match(idnps):
        return f"Identification nationale PP {idnps[:20]!r} is not alphanumeric"
    kind, pp = row.get("Type d'identifiant PP").strip(), row.get("Identifiant PP").strip()
    if kind and pp and idnps != kind + pp:
        return f"Identification nationale PP {idnps} is not type {kind} + identifier {pp}"
    if not row.get("Nom d'exercice").strip():
        return "no Nom d'exercice"
    finess = row.get("Numéro FINESS site").strip()
    if finess and not _FINESS.match(finess):
        return f"Numéro FINESS site {finess[:20]!r} is not 9 characters"
    siret = row.get("Numéro SIRET site").strip()
    if siret and not _SIRET.match(siret):
        return f"Numéro SIRET site {siret[:20]!r} is not 14 digits"
    tech = row.get("Identifiant technique de la structure").strip()
    if tech and not _ID_VALUE.match(tech):
        return f"Identifiant technique de la structure {tech[:20]!r} is not alphanumeric"
    email = row.get("Adresse e-mail (coord. structure)").strip()
    if email and not _EMAIL.match(email):
        return f"Adresse e-mail {email[:40]!r} is not an e-mail address"
    return None


def read_groups(
    stream: IO[bytes],
    *,
    departements: frozenset[str] | None = None,
    rejected: list[Rejected],
    counters: dict[str, int],
) -> Iterator[Group]:
    """The professionals of the extract, one :class:`Group` each, streamed.

    Bad lines go to ``rejected`` (line number and reason) and are skipped. With
    ``departements``, only activities whose structure is in one of them are kept (a
    professional without any is not yielded). ``counters`` receives ``rows`` (data lines read)
    and ``filtered`` (lines outside the départements). Lines of one professional are expected to
    be adjacent, as ANS writes them; if they are not, the professional comes out once per run
    of lines, and the importer merges what it has already written in the same import.
    """
    header_raw = stream.readline()
    if not header_raw:
        raise CsvFormatError("the file is empty")
    header = [h.strip().lstrip("\ufeff") for h in _split(_decode(header_raw))]
    if header and header[-1] == "":
        header.pop()  # ANS ends every line with a separator
    missing = REQUIRED_COLUMNS - set(header)
    if missing:
        raise CsvFormatError(
            "not an Annuaire Santé PS_LibreAcces_Personne_activite extract: missing column(s) "
            + ", ".join(sorted(missing))
        )
    width = len(header)
    current: Group | None = None
    line_no = 1
    counters.setdefault("rows", 0)
    counters.setdefault("filtered", 0)
    for raw in stream:
        line_no += 1
        text = _decode(raw)
        if not text.strip():
            continue
        counters["rows"] += 1
        values = _split(text)
        if len(values) == width + 1 and values[-1].strip() == "":
            values.pop()
        if len(values) != width:
            rejected.append(Rejected(line_no, f"{len(values)} fields, the header has {width}"))
            continue
        row = ActivityRow(line_no, dict(zip(header, values, strict=True)))
        problem = _check(row)
        if problem is not None:
            rejected.append(Rejected(line_no, problem))
            continue
        if departements is not None and departement_of(row) not in departements:
            counters["filtered"] += 1
            continue
        idnps = row.get("Identification nationale PP").strip()
        if current is not None and current.idnps != idnps:
            yield current
            current = None
        if current is None:
            current = Group(idnps)
        current.rows.append(row)
    if current is not None:
        yield current


# ---- mapping --------------------------------------------------------------------------------


def _coding(system: str, code: str, display: str = "") -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _official(type_code: str, system: str, value: str) -> dict[str, Any]:
    return {
        "use": "official",
        "type": {"coding": [_coding(CS_V2_0203, type_code)]},
        "system": system,
        "value": value,
    }


def idnst_of(row: ActivityRow) -> str | None:
    """The national structure identifier of the activity's site, None without a structure."""
    finess = row.get("Numéro FINESS site").strip()
    if finess:
        return "1" + finess
    siret = row.get("Numéro SIRET site").strip()
    if siret:
        return "3" + siret
    tech = row.get("Identifiant technique de la structure").strip()
    if tech:
        return "4" + tech
    return None


def _telecom(row: ActivityRow) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for column, system in (
        ("Téléphone (coord. structure)", "phone"),
        ("Téléphone 2 (coord. structure)", "phone"),
        ("Télécopie (coord. structure)", "fax"),
        ("Adresse e-mail (coord. structure)", "email"),
    ):
        value = row.get(column).strip()
        if value:
            out.append({"system": system, "value": value})
    if out and out[0]["system"] == "phone":
        out[0]["rank"] = 1
    return out


def _address(row: ActivityRow) -> dict[str, Any] | None:
    street = " ".join(
        part
        for part in (
            row.get("Numéro Voie (coord. structure)").strip(),
            row.get("Indice répétition voie (coord. structure)").strip(),
            row.get("Libellé type de voie (coord. structure)").strip(),
            row.get("Libellé Voie (coord. structure)").strip(),
        )
        if part
    )
    lines = [
        part
        for part in (
            row.get("Complément destinataire (coord. structure)").strip(),
            row.get("Complément point géographique (coord. structure)").strip(),
            street,
            row.get("Mention distribution (coord. structure)").strip(),
        )
        if part
    ]
    address: dict[str, Any] = {}
    insee = row.get("Code commune (coord. structure)").strip()
    if insee:
        address["extension"] = [
            {"url": INSEE_CODE_URL, "valueCoding": _coding(COMMUNE_SYSTEM, insee)}
        ]
    if lines:
        address["line"] = lines
    city = row.get("Libellé commune (coord. structure)").strip()
    if city:
        address["city"] = city
    dept = departement_of(row)
    if dept:
        address["district"] = dept
    postal = row.get("Code postal (coord. structure)").strip()
    if postal:
        address["postalCode"] = postal
    country = row.get("Libellé pays (coord. structure)").strip()
    if country:
        address["country"] = country
    return address or None


def _organization(row: ActivityRow, idnst: str) -> Resource:
    identifiers = [_official("IDNST", IDNST_OID, idnst)]
    finess = row.get("Numéro FINESS site").strip()
    if finess:
        identifiers.append(_official("FINEG", FINESS_SYSTEM, finess))
    siret = row.get("Numéro SIRET site").strip()
    if siret:
        identifiers.append(_official("SIRET", SIRET_SYSTEM, siret))
    tech = row.get("Identifiant technique de la structure").strip()
    if tech:
        identifiers.append(_official("RPPSRG", RPPSRG_SYSTEM, tech))
    types: list[dict[str, Any]] = [
        {
            "extension": [{"url": ORG_TYPES_EXT, "valueCode": "organizationType"}],
            "coding": [_coding(CS_V2_3307, "GEOGRAPHICAL-ENTITY")],
        }
    ]
    sector = row.get("Code secteur d'activité").strip()
    if sector:
        types.append(
            {
                "extension": [{"url": ORG_TYPES_EXT, "valueCode": "secteurActiviteRASS"}],
                "coding": [
                    _coding(SECTOR_SYSTEM, sector, row.get("Libellé secteur d'activité").strip())
                ],
            }
        )
    name = row.get("Raison sociale site").strip()
    sign = row.get("Enseigne commerciale site").strip()
    org: Resource = {
        "resourceType": "Organization",
        "id": f"idnst-{idnst}",
        "meta": {"profile": [ORGANIZATION_PROFILE]},
        "identifier": identifiers,
        "active": True,
        "type": types,
        "name": name or sign or f"Structure {idnst}",
    }
    if sign and sign != org["name"]:
        org["alias"] = [sign]
    telecom = _telecom(row)
    if telecom:
        org["telecom"] = telecom
    address = _address(row)
    if address:
        org["address"] = [address]
    return org


def _role_id(idnps: str, idnst: str | None, row: ActivityRow) -> str:
    key = "|".join(
        (
            idnps,
            idnst or "",
            row.get("Code profession").strip(),
            row.get("Code mode exercice").strip(),
            row.get("Code rôle").strip(),
            row.get("Code genre activité").strip(),
        )
    )
    return f"pr-{idnps}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def _specialty(row: ActivityRow) -> dict[str, Any] | None:
    code = row.get("Code savoir-faire").strip()
    label = row.get("Libellé savoir-faire").strip()
    if not code and not label:
        return None
    if code and row.get("Code type savoir-faire").strip() == "S":
        return {"coding": [_coding(SPECIALTY_SYSTEM, code, label)]}
    # Other kinds of savoir-faire (competences, capacities…) use terminologies we do not
    # ship: kept as text so that nothing is lost and nothing is coded wrongly.
    return {"text": label or code}


def _role(group_id: str, row: ActivityRow, idnst: str | None) -> Resource:
    codes: list[dict[str, Any]] = []
    for code_col, label_col, system in (
        ("Code profession", "Libellé profession", PROFESSION_SYSTEM),
        ("Code mode exercice", "Libellé mode exercice", MODE_SYSTEM),
        ("Code rôle", "Libellé rôle", ROLE_SYSTEM),
        ("Code genre activité", "Libellé genre activité", GENRE_SYSTEM),
    ):
        code = row.get(code_col).strip()
        if code:
            codes.append({"coding": [_coding(system, code, row.get(label_col).strip())]})
    role: Resource = {
        "resourceType": "PractitionerRole",
        "id": _role_id(group_id, idnst, row),
        "meta": {"profile": [ROLE_PROFILE]},
        "active": True,
        "practitioner": {"reference": f"Practitioner/idnps-{group_id}"},
    }
    if idnst is not None:
        role["organization"] = {"reference": f"Organization/idnst-{idnst}"}
    if codes:
        role["code"] = codes
    specialty = _specialty(row)
    if specialty is not None:
        role["specialty"] = [specialty]
    telecom = _telecom(row)
    if telecom:
        role["telecom"] = telecom
    return role


def _append_unique(target: list[Any], item: Any) -> None:
    if item not in target:
        target.append(item)


def _practitioner(group: Group) -> Resource:
    first = group.rows[0]
    identifiers = [_official("IDNPS", IDNPS_OID, group.idnps)]
    if first.get("Type d'identifiant PP").strip() == "8" and first.get("Identifiant PP").strip():
        identifiers.append(_official("RPPS", RPPS_SYSTEM, first.get("Identifiant PP").strip()))
    name: dict[str, Any] = {"use": "usual", "family": first.get("Nom d'exercice").strip()}
    given = first.get("Prénom d'exercice").strip()
    if given:
        name["given"] = [given]
    prefix = first.get("Code civilité d'exercice").strip() or first.get("Code civilité").strip()
    if prefix:
        name["prefix"] = [prefix]
    qualifications: list[dict[str, Any]] = []
    for row in group.rows:
        profession = row.get("Code profession").strip()
        if profession:
            coding = [_coding(PROFESSION_SYSTEM, profession, row.get("Libellé profession").strip())]
            category = row.get("Code catégorie professionnelle").strip()
            if category:
                coding.append(
                    _coding(
                        CATEGORY_SYSTEM,
                        category,
                        row.get("Libellé catégorie professionnelle").strip(),
                    )
                )
            _append_unique(qualifications, {"code": {"coding": coding}})
        specialty = _specialty(row)
        if specialty is not None and "coding" in specialty:
            _append_unique(qualifications, {"code": specialty})
    practitioner: Resource = {
        "resourceType": "Practitioner",
        "id": f"idnps-{group.idnps}",
        "meta": {"profile": [PRACTITIONER_PROFILE]},
        "identifier": identifiers,
        "active": True,
        "name": [name],
    }
    if qualifications:
        practitioner["qualification"] = qualifications
    return practitioner


def group_resources(group: Group) -> list[tuple[Resource, Sequence[int]]]:
    """The resources of one professional, each with the file lines it comes from."""
    out: list[tuple[Resource, Sequence[int]]] = [(_practitioner(group), group.lines)]
    seen: set[str] = set()
    for row in group.rows:
        idnst = idnst_of(row)
        if idnst is not None and idnst not in seen:
            seen.add(idnst)
            out.append((_organization(row, idnst), [row.line]))
        if idnst is None and not row.get("Code mode exercice").strip():
            continue  # a registered professional without any activity: no role to describe
        out.append((_role(group.idnps, row, idnst), [row.line]))
    return _merge_roles(out)


def _merge_roles(
    items: Iterable[tuple[Resource, Sequence[int]]],
) -> list[tuple[Resource, Sequence[int]]]:
    """Lines that differ only by savoir-faire describe one activity: one role, all specialties."""
    merged: dict[tuple[str, str], tuple[Resource, list[int]]] = {}
    for res, lines in items:
        key = (res["resourceType"], res["id"])
        if key not in merged:
            merged[key] = (res, list(lines))
            continue
        kept, kept_lines = merged[key]
        kept_lines.extend(lines)
        if res["resourceType"] == "PractitionerRole":
            for specialty in res.get("specialty", []):
                _append_unique(kept.setdefault("specialty", []), specialty)
    return [(res, lines) for res, lines in merged.values()]
