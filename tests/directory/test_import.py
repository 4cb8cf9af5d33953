"""`parcours directory import`: the Annuaire Santé extract and FHIR export, on both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from parcours.cli import main
from parcours.directory import CsvFormatError, import_directory
from parcours.platform import Platform
from parcours.store.schema import resource_version
from parcours.store.search import parse_search

DATA = Path(__file__).parent / "data" / "PS_LibreAcces_Personne_activite_synthetique.txt"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
IDNST = "urn:oid:1.2.250.1.71.4.2.2"
GP = "810990000001"  # MARTIN Claire: two activities, one of them on two savoir-faire lines
# (line, start of the reason) of every bad line of the synthetic extract.
REJECTED = [
    (26, "54 fields, the header has 56"),
    (27, "no Identification nationale PP"),
    (28, "Identification nationale PP 810990000099 is not type 8"),
    (29, "no Nom d'exercice"),
    (30, "Numéro FINESS site '12345'"),
    (31, "Adresse e-mail 'pas-un-mail'"),
    (32, "Numéro SIRET site 'ABC'"),
]


def _search(platform: Platform, res_type: str, **params: str) -> list[dict[str, Any]]:
    with platform.store.begin(readonly=True) as tx:
        request = parse_search(res_type, list(params.items()), platform.registry)
        matches: list[dict[str, Any]] = tx.search(request).matches
        return matches


def _versions(platform: Platform) -> int:
    with platform.store.begin(readonly=True) as tx:
        count = tx.conn.execute(select(func.count()).select_from(resource_version)).scalar_one()
        return int(count)


def test_import_maps_the_extract(platform: Platform) -> None:
    report = import_directory(platform.store, DATA)
    assert report.format == "csv"
    assert report.rows == 32
    assert dict(report.created) == {"Organization": 13, "Practitioner": 22, "PractitionerRole": 23}
    assert not report.updated and not report.unchanged
    assert [
        (r.line, r.reason[: len(reason)])
        for r, (_, reason) in zip(report.rejected, REJECTED, strict=True)
    ] == REJECTED

    (gp,) = _search(platform, "Practitioner", identifier=f"{IDNPS}|{GP}")
    assert gp["id"] == f"idnps-{GP}"
    assert {(i["system"], i["value"]) for i in gp["identifier"]} == {
        (IDNPS, GP),
        ("https://rpps.esante.gouv.fr", GP[1:]),
    }
    assert gp["identifier"][0]["type"]["coding"][0]["code"] == "IDNPS"
    assert gp["name"] == [
        {"use": "usual", "family": "MARTIN", "given": ["Claire"], "prefix": ["DR"]}
    ]
    codes = {c["code"] for q in gp["qualification"] for c in q["code"]["coding"]}
    assert codes == {"10", "C", "SM54"}

    roles = _search(platform, "PractitionerRole", practitioner=f"Practitioner/idnps-{GP}")
    assert len(roles) == 2  # MSP (two savoir-faire lines merged) and CPTS
    msp = next(
        r for r in roles if r["organization"]["reference"] == "Organization/idnst-1219000017"
    )
    assert [s.get("coding", [{}])[0].get("code") or s["text"] for s in msp["specialty"]] == [
        "SM54",
        "Compétence fictive",
    ]
    assert msp["telecom"][0] == {"system": "phone", "value": "0380000001", "rank": 1}
    assert msp["code"][0]["coding"][0]["code"] == "10"

    (org,) = _search(platform, "Organization", identifier=f"{IDNST}|1219000017")
    assert org["name"] == "MAISON DE SANTE DES TILLEULS"
    assert {(i["system"], i["value"]) for i in org["identifier"]} == {
        (IDNST, "1219000017"),
        ("https://finess.esante.gouv.fr", "219000017"),
    }
    (cpts,) = _search(platform, "Organization", identifier="https://sirene.fr|92100000100011")
    assert cpts["identifier"][0]["value"] == "392100000100011"
    (jura,) = _search(platform, "Organization", identifier=f"{IDNST}|4R10000000000391")
    # An ADELI professional: IDNPS = 0 + ADELI, and no RPPS identifier.
    (adeli,) = _search(platform, "Practitioner", identifier=f"{IDNPS}|0999000018")
    assert len(adeli["identifier"]) == 1
    # Registered without activity: a Practitioner and no role.
    assert _search(platform, "Practitioner", identifier=f"{IDNPS}|810990000009")
    assert not _search(platform, "PractitionerRole", practitioner="Practitioner/idnps-810990000009")
    assert jura["address"][0]["postalCode"] == "39000"


def test_reimport_is_idempotent_and_a_changed_line_updates_only_its_resources(
    platform: Platform, tmp_path: Path
) -> None:
    import_directory(platform.store, DATA)
    versions = _versions(platform)
    again = import_directory(platform.store, DATA)
    assert again.written == 0
    assert sum(again.unchanged.values()) == 13 + 22 + 23
    assert _versions(platform) == versions

    # A changed line (the nurse's exercise name) rewrites her Practitioner and nothing else.
    text = DATA.read_text(encoding="utf-8").splitlines(keepends=True)
    nurse = next(i for i, line in enumerate(text) if "|BERNARD|Louis|" in line)
    text[nurse] = text[nurse].replace("|BERNARD|Louis|", "|BERNARD-DURAND|Louis|")
    changed = tmp_path / "changed.txt"
    changed.write_text("".join(text), encoding="utf-8")
    report = import_directory(platform.store, changed)
    assert dict(report.updated) == {"Practitioner": 1}
    assert report.written == 1
    assert _versions(platform) == versions + 1
    (nurse_res,) = _search(platform, "Practitioner", identifier=f"{IDNPS}|810990000002")
    assert nurse_res["name"][0]["family"] == "BERNARD-DURAND"
    assert nurse_res["meta"]["versionId"] == "2"


def test_departement_filter(platform: Platform) -> None:
    report = import_directory(platform.store, DATA, departements=["21", "25"])
    # Lines in 75, 69, 71, 39 and the line without a structure are left out.
    assert report.filtered == 10
    assert not _search(platform, "Practitioner", identifier=f"{IDNPS}|810990000007")  # Paris
    assert not _search(platform, "Organization", identifier=f"{IDNST}|1759000031")
    # Working in 25 and 75: imported with the 25 activity only.
    roles = _search(platform, "PractitionerRole", practitioner="Practitioner/idnps-810990000006")
    assert [r["organization"]["reference"] for r in roles] == ["Organization/idnst-1259000025"]
    depts = {
        org["address"][0]["district"] for org in _search(platform, "Organization", _count="100")
    }
    assert depts == {"21", "25"}


def test_not_an_extract(platform: Platform, tmp_path: Path) -> None:
    bad = tmp_path / "other.txt"
    bad.write_text("a|b|c\n1|2|3\n", encoding="utf-8")
    with pytest.raises(CsvFormatError, match="Identification nationale PP"):
        import_directory(platform.store, bad)


def test_fhir_export_of_the_corpus(platform: Platform, corpus: Path, tmp_path: Path) -> None:
    folder = corpus / "fhir" / "annuaire"
    resources = [
        json.loads(p.read_text(encoding="utf-8-sig")) for p in sorted(folder.glob("*.json"))
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }
    path = tmp_path / "annuaire.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    report = import_directory(platform.store, path)
    assert report.format == "fhir"
    directory = [r for r in resources if r["resourceType"] != "Person"]
    assert sum(report.created.values()) == len(directory) == 18
    # The two Person examples are not directory resources: reported, not imported.
    assert [r.reason.split()[0] for r in report.rejected] == ["Person", "Person"]
    again = import_directory(platform.store, path)
    assert again.written == 0 and sum(again.unchanged.values()) == 18

    by_rpps = _search(platform, "Practitioner", identifier=f"{IDNPS}|810003461033")
    assert {p["id"] for p in by_rpps} == {"334081", "334081DP"}
    roles = _search(platform, "PractitionerRole", practitioner="Practitioner/334081")
    assert {r["id"] for r in roles} == {"1578230", "1578230DP", "1738459", "1738459DP"}
    stored = platform.store.read("Organization", "158480")
    original = next(r for r in resources if r["id"] == "158480")
    assert {k: v for k, v in stored.items() if k != "meta"} == {
        k: v for k, v in original.items() if k != "meta"
    }

    # NDJSON with a département filter: only the Bourges (18) structure is kept.
    ndjson = tmp_path / "annuaire.ndjson"
    ndjson.write_text(
        "\n".join(json.dumps(r) for r in resources if r["resourceType"] == "Organization"),
        encoding="utf-8",
    )
    filtered = import_directory(platform.store, ndjson, departements=["18"])
    assert filtered.rows == 8
    assert filtered.filtered == 7
    assert sum(filtered.unchanged.values()) == 1


def test_cli(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PARCOURS_DATABASE_URL", database_url)
    assert main(["directory", "import", str(DATA), "--departement", "21"]) == 0
    out = capsys.readouterr().out
    assert "32 rows read" in out
    assert "line 26: 54 fields" in out
    assert main(["directory", "import", str(DATA), "--departement", "21"]) == 0
    assert "created:   none" in capsys.readouterr().out
