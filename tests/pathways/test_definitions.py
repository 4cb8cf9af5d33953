"""The YAML format: YAML -> FHIR -> YAML round trips, the shipped schema, located errors."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from parcours.config import Settings
from parcours.fhir.validation import make_validator
from parcours.pathways import (
    DefinitionError,
    dump_yaml,
    from_fhir,
    json_schema,
    load_yaml,
    load_yaml_file,
    questionnaires,
    to_fhir,
)
from parcours.pathways.yaml_io import iter_library

from .test_engine import NEW_PATHWAY

LIBRARY = sorted(iter_library())


def test_the_library_has_the_seven_regional_pathways() -> None:
    names = {load_yaml_file(p).id for p in LIBRARY}
    assert names == {
        "dac-coordination",
        "vigilans",
        "reppop",
        "heart-failure",
        "rp-diabetes",
        "sport-sante",
        "carers-respite",
    }
    for path in LIBRARY:
        # Each says what it is: an organisation model, not clinical guidance.
        assert "pas une recommandation clinique" in (load_yaml_file(path).description or "")


@pytest.mark.parametrize("path", LIBRARY, ids=[p.stem for p in LIBRARY])
def test_yaml_fhir_yaml_round_trip(path: Path) -> None:
    definition = load_yaml_file(path)
    plan = to_fhir(definition)
    # Through JSON, as a client would send it back.
    again = from_fhir(json.loads(json.dumps(plan)))
    assert again == definition
    text = dump_yaml(again)
    assert load_yaml(text) == definition
    assert dump_yaml(load_yaml(text)) == text
    validate = make_validator(Settings(database_url="sqlite://"))
    validate(plan)
    for questionnaire in questionnaires(definition):
        validate(questionnaire)


def test_shipped_schema_is_the_models_schema() -> None:
    shipped = json.loads(
        resources.files("parcours.pathways").joinpath("schema.json").read_text("utf-8")
    )
    assert shipped == json_schema(), "regenerate schema.json: parcours pathways schema"


def _problems(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load_yaml(text, "test.yaml")
    return [issue.message for issue in caught.value.issues]


def test_schema_errors_name_line_and_field() -> None:
    text = NEW_PATHWAY.replace("due: {after: P7D}\n        form", "due: {after: P1M}\n        form")
    text = text.replace("title: Kinésithérapeute\n", "title: Kinésithérapeute\n    colour: blue\n")
    problems = _problems(text)
    lines = text.splitlines()
    due_line = next(i for i, line in enumerate(lines, 1) if "P1M" in line)
    colour_line = next(i for i, line in enumerate(lines, 1) if "colour" in line)
    assert any(
        p.startswith(f"test.yaml:{due_line}: steps[0].tasks[0].due.after: 'P1M'") and "P30D" in p
        for p in problems
    ), problems
    assert any(
        p.startswith(f"test.yaml:{colour_line}: roles[1].colour:") and "colour" in p
        for p in problems
    ), problems


def test_reference_and_fhirpath_errors_are_all_reported() -> None:
    text = (
        NEW_PATHWAY.replace("owner: physio", "owner: surgeon")
        .replace("- to: exercise", "- to: surgery")
        .replace("%answers.screening.timedUpAndGoS > 14", "%answers.screening.timedUpAndGoS > > 14")
        .replace("start: screening", "start: screening\nreentry: {step: nowhere}")
    )
    problems = _problems(text)
    lines = text.splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if fragment in line)

    expected = [
        f"test.yaml:{line_of('reentry')}: reentry.step: no step has the id 'nowhere'",
        f"test.yaml:{line_of('to: surgery')}: steps[0].transitions[0].to: no step has the id",
        f"test.yaml:{line_of('> > 14')}: steps[0].transitions[0].when: FHIRPath syntax error",
        f"test.yaml:{line_of('owner: surgeon')}: steps[1].tasks[0].owner: no role has the id",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == 4


def test_unknown_fhirpath_variable_and_yaml_syntax() -> None:
    text = NEW_PATHWAY.replace("%answers.screening", "%answer.screening")
    (problem,) = _problems(text)
    assert "steps[0].transitions[0].when" in problem and "answer" in problem
    (broken,) = _problems("id: x\nsteps: [unclosed\n")
    assert broken.startswith("test.yaml:") and "not valid YAML" in broken
