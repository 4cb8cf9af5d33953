"""The intake form: the shipped Questionnaire, and the check of a response against it.

The form is data (``Questionnaire-demande-appui-coordination.json``); the check reads its items,
so adding a question is an edit of the JSON. It reports every problem at once, each located by
the item's ``linkId``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from parcours.errors import InvalidResource, Issue

from .model import QUESTIONNAIRE_URL

__all__ = ["answers", "check_response", "conformance_resources", "option_label", "questionnaire"]

_FILES = (
    "Questionnaire-demande-appui-coordination.json",
    "CodeSystem-statut-demande-coordination.json",
    "CodeSystem-tache-coordination.json",
)
_VALUE_KEY = {
    "choice": "valueCoding",
    "text": "valueString",
    "string": "valueString",
    "boolean": "valueBoolean",
}


@cache
def _load(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def conformance_resources() -> list[dict[str, Any]]:
    """The Questionnaire and CodeSystems this package defines (fresh copies)."""
    return [json.loads(_load(name)) for name in _FILES]


def questionnaire() -> dict[str, Any]:
    return dict(json.loads(_load(_FILES[0])))


def _items(response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = response.get("item") or []
    if not isinstance(items, list):
        raise InvalidResource("QuestionnaireResponse.item must be a list")
    return [i for i in items if isinstance(i, Mapping)]


def check_response(response: Mapping[str, Any]) -> None:
    """Refuse (422) a response that does not fill the intake form correctly."""
    if response.get("resourceType") != "QuestionnaireResponse":
        raise InvalidResource("the intake form answers must be a QuestionnaireResponse")
    canonical = response.get("questionnaire")
    if canonical is not None and str(canonical).split("|", 1)[0] != QUESTIONNAIRE_URL:
        raise InvalidResource(
            f"QuestionnaireResponse.questionnaire must be {QUESTIONNAIRE_URL}",
            [Issue("another form", "QuestionnaireResponse.questionnaire", code="value")],
        )
    form = {str(item["linkId"]): item for item in questionnaire()["item"]}
    issues: list[Issue] = []
    given: dict[str, Mapping[str, Any]] = {}
    for item in _items(response):
        link = str(item.get("linkId"))
        if link not in form:
            issues.append(Issue(f"unknown question {link[:40]!r}", f"item[{link[:40]}]", "value"))
        elif link in given:
            issues.append(Issue(f"question {link} answered twice", f"item[{link}]", "value"))
        else:
            given[link] = item
    for link, question in form.items():
        where = f"item[{link}]"
        found = given.get(link)
        answered = (found.get("answer") or []) if found is not None else []
        values = [a for a in answered if isinstance(a, Mapping)]
        if not values:
            if question.get("required"):
                issues.append(
                    Issue(f"question {link} ({question['text']}) is required", where, "required")
                )
            continue
        if len(values) > 1 and not question.get("repeats"):
            issues.append(Issue(f"question {link} takes one answer", where, "value"))
        key = _VALUE_KEY[question["type"]]
        options = {o["valueCoding"]["code"] for o in question.get("answerOption") or ()}
        for value in values:
            got = value.get(key)
            if got is None:
                issues.append(Issue(f"question {link} is answered with {key}", where, "value"))
            elif key == "valueCoding" and (
                not isinstance(got, Mapping) or got.get("code") not in options
            ):
                issues.append(
                    Issue(
                        f"question {link}: the answer must be one of {', '.join(sorted(options))}",
                        where,
                        "value",
                    )
                )
            elif key == "valueString" and not (isinstance(got, str) and got.strip()):
                issues.append(
                    Issue(f"question {link}: the answer must be some text", where, "value")
                )
            elif key == "valueBoolean" and not isinstance(got, bool):
                issues.append(
                    Issue(f"question {link}: the answer must be true or false", where, "value")
                )
    informed = answers(response).get("patient-informe")
    if informed == [False]:
        issues.append(
            Issue(
                "the patient (or their legal representative) must be informed of the request "
                "and not object to it before it is sent",
                "item[patient-informe]",
                "business-rule",
            )
        )
    if issues:
        raise InvalidResource(
            f"the intake form is not filled correctly ({len(issues)} problem"
            f"{'s' if len(issues) > 1 else ''})",
            issues,
        )


def answers(response: Mapping[str, Any]) -> dict[str, list[Any]]:
    """linkId -> its answer values (codes for choices), as given."""
    out: dict[str, list[Any]] = {}
    for item in _items(response):
        values: list[Any] = []
        for answer in item.get("answer") or ():
            if not isinstance(answer, Mapping):
                continue
            for key, value in answer.items():
                if key.startswith("value"):
                    values.append(value.get("code") if isinstance(value, Mapping) else value)
        out[str(item.get("linkId"))] = values
    return out


def option_label(link_id: str, code: str) -> str:
    """The French label of an answer option of the intake form ("" if unknown)."""
    for item in questionnaire()["item"]:
        if item["linkId"] == link_id:
            for option in item.get("answerOption") or ():
                if option["valueCoding"]["code"] == code:
                    return str(option["valueCoding"]["display"])
    return ""
