"""A pathway definition as data: frozen Pydantic models, the source of the shipped JSON Schema.

The YAML a coordinator writes loads into ``PathwayDefinition`` (see ``yaml_io``); the same value
compiles to FHIR (``fhir_mapping``) and back. ``schema.json`` in this package is generated from
these models (``json_schema()``) and a test keeps the shipped file current.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Consent",
    "Criterion",
    "DueRule",
    "Duration",
    "Escalation",
    "ExitCriterion",
    "ExitOutcome",
    "Form",
    "FormItem",
    "Inclusion",
    "Indicator",
    "ItemType",
    "PathwayDefinition",
    "Reentry",
    "Reminder",
    "Repeat",
    "Role",
    "Step",
    "TaskDefinition",
    "Transition",
    "duration_ms",
    "json_schema",
]

# One unit per duration, so that YAML -> FHIR Duration -> YAML gives back the same text:
# weeks, days, hours or minutes (months and years have no fixed length: write P30D, P365D).
DURATION_PATTERN = r"^-?P(\d+[WD]|T\d+[HM])$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_MS = {"W": 7 * 86_400_000, "D": 86_400_000, "H": 3_600_000, "M": 60_000}
# Step, task and role ids travel in FHIR codes and ids; form and item ids are also FHIRPath
# identifiers (``%answers.recontactCall.reached``), so they cannot hold hyphens.
CODE_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
NAME_PATTERN = r"^[a-zA-Z][a-zA-Z0-9_]{0,39}$"

Duration = Annotated[
    str,
    Field(
        pattern=DURATION_PATTERN,
        description="ISO 8601 duration with one unit: P3W, P10D, PT4H, PT30M (a leading - "
        "means before)",
    ),
]
Code = Annotated[str, Field(pattern=CODE_PATTERN)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Expression = Annotated[str, Field(min_length=1, description="a FHIRPath expression")]


def duration_ms(value: str) -> int:
    """Milliseconds of a one-unit duration (``P10D``, ``-PT4H``)."""
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a one-unit ISO 8601 duration (P10D, PT4H, P2W)")
    sign = -1 if value.startswith("-") else 1
    return sign * int(value.strip("-PT")[:-1]) * _UNIT_MS[value[-1]]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Criterion(_Model):
    """One inclusion criterion, evaluated on the Patient (true = met)."""

    id: Code
    description: str | None = None
    expression: Expression


class Inclusion(_Model):
    description: str | None = None
    criteria: tuple[Criterion, ...] = ()


class Consent(_Model):
    """Whether enrolment needs the patient's recorded consent (a Consent resource is written)."""

    required: bool = False
    description: str | None = None


class Role(_Model):
    id: Code
    title: str


class DueRule(_Model):
    """A moment relative to the enrolment, to the entry in the current step or in another one."""

    after: Duration
    from_: Annotated[
        str,
        Field(
            alias="from",
            pattern=r"^(enrolment|step|step:[a-z][a-z0-9-]{0,39})$",
            description="enrolment (default), step (entry in this step) or step:<id>",
        ),
    ] = "enrolment"


class Repeat(_Model):
    """Recurrence: the next occurrence is created when one is done, due ``every`` later."""

    every: Duration
    count: Annotated[int, Field(ge=2, le=1000)]


class Reminder(_Model):
    """A reminder to the task's owner, ``after`` the due date (negative: before it)."""

    after: Duration


class Escalation(_Model):
    """A task for another role when the task is still open ``after`` its due date."""

    after: Duration
    to: Code


class TaskDefinition(_Model):
    id: Code
    title: str
    description: str | None = None
    owner: Code
    not_before: DueRule | None = None
    due: DueRule
    repeat: Repeat | None = None
    form: Name | None = None
    reminders: tuple[Reminder, ...] = ()
    escalations: tuple[Escalation, ...] = ()


class Transition(_Model):
    """Taken once every task of the step is done, if ``when`` holds (first match wins)."""

    to: Code
    when: Expression | None = None
    description: str | None = None


class Step(_Model):
    id: Code
    title: str
    description: str | None = None
    tasks: tuple[TaskDefinition, ...] = ()
    transitions: tuple[Transition, ...] = ()


class ExitOutcome(StrEnum):
    """How an exit ends the CarePlan: ``completed`` (pathway done) or ``revoked`` (left early)."""

    COMPLETED = "completed"
    REVOKED = "revoked"


class ExitCriterion(_Model):
    """Checked after every change, in any step: the first that holds ends the enrolment."""

    id: Code
    when: Expression
    outcome: ExitOutcome = ExitOutcome.COMPLETED
    description: str | None = None


class Reentry(_Model):
    allowed: bool = True
    step: Code | None = None


class ItemType(StrEnum):
    BOOLEAN = "boolean"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    STRING = "string"
    TEXT = "text"
    CHOICE = "choice"


class FormItem(_Model):
    link_id: Name
    text: str
    type: ItemType
    required: bool = False
    options: tuple[str, ...] = ()


class Form(_Model):
    """A FHIR Questionnaire; answers are ``%answers.<form>.<item>`` in conditions."""

    id: Name
    title: str
    items: Annotated[tuple[FormItem, ...], Field(min_length=1)]


class Indicator(_Model):
    """What the pathway feeds into the regional indicators (evaluated by analytics)."""

    id: Code
    title: str
    description: str | None = None


class PathwayDefinition(_Model):
    """One version of one pathway. A new pathway is a new YAML file, never new code."""

    id: Code
    version: Annotated[str, Field(pattern=r"^\d+(\.\d+){0,2}$")]
    title: str
    status: Annotated[str, Field(pattern="^(draft|active|retired)$")] = "active"
    description: str | None = None
    publisher: str | None = None
    url: Annotated[str | None, Field(description="canonical URL; a default is derived")] = None
    inclusion: Inclusion = Inclusion()
    consent: Consent = Consent()
    roles: Annotated[tuple[Role, ...], Field(min_length=1)]
    start: Code
    steps: Annotated[tuple[Step, ...], Field(min_length=1)]
    exits: tuple[ExitCriterion, ...] = ()
    reentry: Reentry = Reentry()
    forms: tuple[Form, ...] = ()
    indicators: tuple[Indicator, ...] = ()

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def form(self, form_id: str) -> Form:
        for form in self.forms:
            if form.id == form_id:
                return form
        raise KeyError(form_id)

    def role(self, role_id: str) -> Role:
        for role in self.roles:
            if role.id == role_id:
                return role
        raise KeyError(role_id)

    def as_data(self) -> dict[str, Any]:
        """Plain data in YAML key order, without the values left at their defaults."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        return data


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the YAML format (what ``schema.json`` ships)."""
    schema = PathwayDefinition.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://parcours.sante.fr/schemas/pathway.schema.json",
        **schema,
    }
