"""Shared helpers for the identity tests: the external FHIR corpus and Patient builders."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from parcours.identity.frcore import (
    BIRTH_LIST_GIVEN_NAME_URL,
    BIRTH_PLACE_URL,
    CS_IDENTITY_STATUS_2_2,
    CS_V2_0203_FR,
    IDENTITY_RELIABILITY_URL,
    INSEE_CODE_URL,
    INSEE_COMMUNE_SYSTEM,
)

CorpusLoader = Callable[[str], dict[str, Any]]


def corpus_root() -> Path:
    """``$PARCOURS_CORPUS`` or ``shared/corpus`` beside the repository."""
    configured = os.environ.get("PARCOURS_CORPUS")
    if configured:
        return Path(configured)
    return (Path(__file__).resolve().parents[2] / "../shared/corpus").resolve()


@pytest.fixture(scope="session")
def fhir_corpus() -> Path:
    root = corpus_root()
    if not (root / "fhir").is_dir():
        message = (
            f"external corpus not found at {root}; set PARCOURS_CORPUS to the shared/corpus "
            "folder (it holds the ANS and Interop'Santé FHIR examples)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def load_fhir(fhir_corpus: Path) -> CorpusLoader:
    def load(relative: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((fhir_corpus / "fhir" / relative).read_text("utf-8"))
        return data

    return load


def make_patient(
    *,
    family: str = "DARK",
    given: str = "JEANNE",
    given_list: str | None = "JEANNE MARIE CECILE",
    gender: str | None = "female",
    birth_date: str | None = "1960-05-30",
    birthplace: str | None = "88154",
    status: str | None = "QUAL",
    status_system: str = CS_IDENTITY_STATUS_2_2,
    ins: str | None = "260058815400233",
    ins_type: str = "INS-NIR",
    ins_system: str = "urn:oid:1.2.250.1.213.1.4.8",
    ins_use: str = "official",
    used_name: str | None = None,
    ipp: tuple[str, str] | None = None,
    patient_id: str = "p1",
) -> dict[str, Any]:
    """An FR Core Patient dict; defaults are the RNIV 1 §2.2 example (DARK Jeanne, QUAL)."""
    name: dict[str, Any] = {"use": "official", "family": family, "given": [given]}
    if given_list is not None:
        name["extension"] = [{"url": BIRTH_LIST_GIVEN_NAME_URL, "valueString": given_list}]
    names = [name]
    if used_name:
        names.append({"use": "usual", "family": used_name})
    extensions: list[dict[str, Any]] = []
    if status:
        extensions.append(
            {
                "url": IDENTITY_RELIABILITY_URL,
                "extension": [
                    {
                        "url": "identityStatus",
                        "valueCoding": {"system": status_system, "code": status},
                    }
                ],
            }
        )
    if birthplace:
        extensions.append(
            {
                "url": BIRTH_PLACE_URL,
                "valueAddress": {
                    "extension": [
                        {
                            "url": INSEE_CODE_URL,
                            "valueCoding": {"system": INSEE_COMMUNE_SYSTEM, "code": birthplace},
                        }
                    ]
                },
            }
        )
    identifiers: list[dict[str, Any]] = []
    if ipp:
        identifiers.append(
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PI"}
                    ]
                },
                "system": ipp[0],
                "value": ipp[1],
            }
        )
    if ins:
        identifiers.append(
            {
                "use": ins_use,
                "type": {"coding": [{"system": CS_V2_0203_FR, "code": ins_type}]},
                "system": ins_system,
                "value": ins,
            }
        )
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "extension": extensions,
        "identifier": identifiers,
        "name": names,
    }
    if gender:
        patient["gender"] = gender
    if birth_date:
        patient["birthDate"] = birth_date
    return patient
