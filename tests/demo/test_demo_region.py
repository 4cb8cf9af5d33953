"""The generated demo region: deterministic, valid R4, key-valid test INS, closed references."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from parcours.demo import build_region, generate_region, ins_key
from parcours.demo.data import DEPARTEMENTS
from parcours.demo.generator import (
    CS_IDENTITY_STATUS,
    CS_V2_0203_FR,
    DUPLICATE_KINDS,
    IDENTITY_RELIABILITY_URL,
    INS_TEST_OID,
)

Resource = dict[str, Any]


@pytest.fixture(scope="module")
def region() -> list[Resource]:
    return generate_region()


def _by_type(resources: list[Resource], res_type: str) -> list[Resource]:
    return [r for r in resources if r["resourceType"] == res_type]


def _status(patient: Resource) -> str:
    ext = next(e for e in patient["extension"] if e["url"] == IDENTITY_RELIABILITY_URL)
    coding = next(s for s in ext["extension"] if s["url"] == "identityStatus")["valueCoding"]
    assert coding["system"] == CS_IDENTITY_STATUS
    code: str = coding["code"]
    return code


def _ins(patient: Resource) -> list[Resource]:
    return [
        i for i in patient["identifier"] if i.get("system", "").startswith("urn:oid:1.2.250.1.213")
    ]


def test_same_seed_same_region() -> None:
    assert generate_region(2024, 300) == generate_region(2024, 300)
    assert generate_region(7, 40) == generate_region(7, 40)


def test_other_seed_other_region() -> None:
    assert generate_region(1, 100) != generate_region(2, 100)


def test_counts(region: list[Resource]) -> None:
    counts = Counter(r["resourceType"] for r in region)
    assert counts["Patient"] == 300
    assert counts["Organization"] >= 8 * 5
    assert counts["Practitioner"] >= 100
    assert counts["PractitionerRole"] >= counts["Practitioner"]
    assert set(counts) == {
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Patient",
        "CareTeam",
        "RelatedPerson",
    }
    assert counts["CareTeam"] == 300
    assert 0 < counts["RelatedPerson"] < 300
    assert Counter(r["resourceType"] for r in generate_region(5, 37))["Patient"] == 37
    assert Counter(r["resourceType"] for r in generate_region(5, 0))["Patient"] == 0


def test_ids_unique_and_readable(region: list[Resource]) -> None:
    keys = [(r["resourceType"], r["id"]) for r in region]
    assert len(keys) == len(set(keys))
    pattern = re.compile(
        r"^demo-(org|practitioner|role|patient|careteam|relatedperson)-\d{3,4}$"
        r"|^demo-user-[a-z]+(-role)?$"
    )
    assert all(pattern.match(r["id"]) for r in region)
    assert {r["id"] for r in _by_type(region, "Patient")} >= {
        "demo-patient-0001",
        "demo-patient-0300",
    }


def test_every_resource_is_valid_r4(region: list[Resource]) -> None:
    for res in region:
        get_fhir_model_class(res["resourceType"]).model_validate(res)


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [ref for value in node.values() for ref in _references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    return []


def test_references_resolve_inside_the_region(region: list[Resource]) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in region}
    references = [ref for r in region for ref in _references(r)]
    assert references
    assert set(references) <= known
    for patient in _by_type(region, "Patient"):
        (gp,) = patient["generalPractitioner"]
        assert gp["reference"].startswith("Practitioner/")


def test_every_ins_is_a_key_valid_test_ins(region: list[Resource]) -> None:
    seen: set[str] = set()
    for patient in _by_type(region, "Patient"):
        for identifier in _ins(patient):
            assert identifier["system"] == INS_TEST_OID
            assert identifier["use"] == "official"
            assert identifier["type"]["coding"][0]["system"] == CS_V2_0203_FR
            assert identifier["type"]["coding"][0]["code"] == "INS-NIR-TEST"
            value = identifier["value"]
            assert re.fullmatch(r"[12]\d{4}(\d{2}|2A|2B)\d{8}", value), value
            assert ins_key(value[:13]) == value[13:]
            # independent check of the key, Corsica included
            digits = value[:13].replace("2A", "19", 1) if value[5:7] == "2A" else value[:13]
            digits = digits.replace("2B", "18", 1) if value[5:7] == "2B" else digits
            assert 97 - int(digits) % 97 == int(value[13:])
            # the NIR agrees with the traits it encodes
            assert value[0] == ("2" if patient["gender"] == "female" else "1")
            assert value[1:5] == patient["birthDate"][2:4] + patient["birthDate"][5:7]
            birth_cog = patient["extension"][0]["valueAddress"]["extension"][0]["valueCoding"]
            assert value[5:10] == birth_cog["code"]
            assert value not in seen
            seen.add(value)
    assert len(seen) > 150
    # the default region exercises the Corsica rule (2A/2B -> 19/18) and births abroad (99)
    assert any(v[5:7] in ("2A", "2B") for v in seen)
    assert any(v[5:7] == "99" for v in seen)


def test_ins_key_reference_vectors() -> None:
    # RNIV example and ANS example (identity sheet §1.1)
    assert ins_key("2600588154002") == "33"
    assert ins_key("2790351215189") == "89"
    assert ins_key("1721169123045") == "21"


def test_identity_statuses(region: list[Resource]) -> None:
    patients = _by_type(region, "Patient")
    statuses = Counter(_status(p) for p in patients)
    assert set(statuses) <= {"PROV", "RECUP", "VALI", "QUAL"}
    assert statuses["QUAL"] + statuses["VALI"] > len(patients) * 0.75
    assert statuses["PROV"] >= 8
    for patient in patients:
        status = _status(patient)
        has_ins = bool(_ins(patient))
        # RNIV: only an identity whose INS came from INSi (RECUP, QUAL) carries one
        assert has_ins == (status in ("QUAL", "RECUP")), patient["id"]
        profile = patient["meta"]["profile"][0]
        assert profile.endswith("fr-core-patient-ins" if has_ins else "fr-core-patient")
        official = [n for n in patient["name"] if n["use"] == "official"]
        assert len(official) == 1
        birth_list = official[0]["extension"][0]["valueString"]
        assert birth_list.startswith(official[0]["given"][0])
        if status != "PROV":
            # strict traits stored in RNIV form: uppercase, no diacritics
            assert re.fullmatch(r"[A-Z' -]+", official[0]["family"])
            assert re.fullmatch(r"[A-Z' -]+", birth_list)


def test_name_variety(region: list[Resource]) -> None:
    patients = _by_type(region, "Patient")
    families = {n["family"] for p in patients for n in p["name"]}
    lists = [
        n["extension"][0]["valueString"]
        for p in patients
        for n in p["name"]
        if n["use"] == "official"
    ]
    assert any("'" in f for f in families)
    assert any("-" in g.split()[0] or len(g.split()) > 1 for g in lists)
    married = [p for p in patients if any(n["use"] == "usual" for n in p["name"])]
    assert married and all(p["gender"] == "female" for p in married)
    texts = " ".join(n.get("text", "") for p in patients for n in p["name"])
    assert re.search(r"[éèêëàâçîïôûüÉ]", texts)


def test_near_duplicates() -> None:
    built = build_region()
    assert [d.kind for d in built.near_duplicates] == list(DUPLICATE_KINDS)
    patients = {r["id"]: r for r in _by_type(built.resources, "Patient")}
    for dup in built.near_duplicates:
        original, copy = patients[dup.original], patients[dup.duplicate]
        assert _status(copy) == "PROV" and not _ins(copy)
        assert _status(original) in ("QUAL", "VALI")
        assert original["birthDate"][:4] == copy["birthDate"][:4]
        assert original["generalPractitioner"] == copy["generalPractitioner"]
        assert original != copy


def test_organisations_cover_the_region(region: list[Resource]) -> None:
    orgs = _by_type(region, "Organization")
    departements = {o["address"][0]["district"] for o in orgs}
    assert departements == set(DEPARTEMENTS)
    names = " ".join(o["name"] for o in orgs)
    for word in (
        "CHU",
        "Centre hospitalier",
        "Dispositif d'appui",
        "CPTS",
        "EHPAD",
        "Maison de santé",
        "SSIAD",
    ):
        assert word in names
    for org in orgs:
        idnst, fineg = org["identifier"]
        assert idnst["system"] == "urn:oid:1.2.250.1.71.4.2.2"
        assert idnst["type"]["coding"][0]["code"] == "IDNST"
        assert fineg["system"] == "https://finess.esante.gouv.fr"
        assert re.fullmatch(r"\d{9}", fineg["value"]) and idnst["value"] == "1" + fineg["value"]
        assert fineg["value"][:2] == org["address"][0]["district"]


def test_practitioners_have_fictitious_rpps(region: list[Resource]) -> None:
    rpps_seen: set[str] = set()
    for practitioner in _by_type(region, "Practitioner"):
        idnps, rpps = practitioner["identifier"]
        assert idnps["system"] == "urn:oid:1.2.250.1.71.4.2.1"
        assert idnps["type"]["coding"][0]["code"] == "IDNPS"
        assert rpps["system"] == "https://rpps.esante.gouv.fr"
        assert re.fullmatch(r"10\d{9}", rpps["value"])
        assert idnps["value"] == "8" + rpps["value"]
        rpps_seen.add(rpps["value"])
    assert len(rpps_seen) == len(_by_type(region, "Practitioner"))
    professions = Counter(
        p["qualification"][0]["code"]["coding"][0]["code"] for p in _by_type(region, "Practitioner")
    )
    assert set(professions) == {"10", "21", "60"}


def test_identity_module_reads_the_demo_patients(region: list[Resource]) -> None:
    """Cross-check with parcours.identity, when that module is importable."""
    reliability = pytest.importorskip("parcours.identity.reliability")
    ins = pytest.importorskip("parcours.identity.ins")
    for patient in _by_type(region, "Patient"):
        state = reliability.read_reliability(patient)
        assert state.status.value == _status(patient)
        for identifier in _ins(patient):
            assert ins.is_valid_matricule(identifier["value"])
