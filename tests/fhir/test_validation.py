"""The structure validator on its own: located issues, R4-only types, profile-check hooks."""

from __future__ import annotations

from typing import Any

import pytest

from parcours.config import Settings
from parcours.errors import InvalidResource, Issue
from parcours.fhir.validation import make_validator, structure_issues


def test_valid_resource_has_no_issue() -> None:
    assert structure_issues({"resourceType": "Patient", "id": "p1", "gender": "female"}) == []


def test_every_problem_is_located() -> None:
    issues = structure_issues(
        {
            "resourceType": "Patient",
            "bogus": 1,
            "name": [{"family": 1}],
            "_birthDate": {"extension": [{"url": "u", "valueString": ""}]},
        }
    )
    where = {issue.location for issue in issues}
    assert where == {
        "Patient.bogus",
        "Patient.name[0].family",
        "Patient.birthDate.extension[0].valueString",
    }
    assert {issue.code for issue in issues} <= {"structure", "value", "required"}


def test_choice_and_required_errors() -> None:
    issues = structure_issues({"resourceType": "Observation", "status": "final"})
    assert [(i.location, i.code) for i in issues] == [("Observation.code", "required")]
    both = structure_issues(
        {"resourceType": "Patient", "deceasedBoolean": True, "deceasedDateTime": "2020"}
    )
    assert len(both) == 1


@pytest.mark.parametrize(
    "resource",
    [None, [], "Patient", {}, {"resourceType": "patient"}, {"resourceType": "NoSuchType"}],
)
def test_not_a_resource(resource: Any) -> None:
    assert structure_issues(resource)


def test_r4_only_types_get_generic_checks() -> None:
    assert structure_issues({"resourceType": "MedicinalProduct", "id": "m1"}) == []
    assert structure_issues({"resourceType": "MedicinalProduct", "id": "bad id"})


def test_profile_checks_plug_in() -> None:
    def ins_rule(resource: dict[str, Any]) -> list[Issue]:
        if resource["resourceType"] == "Patient" and not resource.get("identifier"):
            return [Issue("an INS patient needs an identifier", "Patient.identifier", "required")]
        return []

    def warn(resource: dict[str, Any]) -> list[Issue]:
        return [Issue("just so you know", severity="warning")]

    validate = make_validator(Settings(), profile_checks=[ins_rule, warn])
    validate({"resourceType": "Patient", "identifier": [{"value": "1"}]})
    validate({"resourceType": "Organization"})
    with pytest.raises(InvalidResource) as caught:
        validate({"resourceType": "Patient"})
    assert caught.value.status == 422
    assert caught.value.issues[0].location == "Patient.identifier"
    assert "Patient.identifier" in caught.value.message


def test_primitive_json_types_are_strict() -> None:
    issues = structure_issues(
        {
            "resourceType": "Patient",
            "active": "yes",
            "multipleBirthInteger": "3",
            "contact": [
                {"gender": "male", "_gender": {"extension": [{"url": "u", "valueBoolean": 1}]}}
            ],
            "contained": [
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {},
                    "valueQuantity": {"value": "1.5"},
                }
            ],
        }
    )
    assert {i.location for i in issues} == {
        "Patient.active",
        "Patient.multipleBirthInteger",
        "Patient.contact[0].gender.extension[0].valueBoolean",
        "Patient.contained[0].valueQuantity.value",
    }
