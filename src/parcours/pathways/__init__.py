"""Pathways: definitions as data (YAML <-> FHIR) and the engine that runs patients through them.

A pathway is a YAML file (format in docs/pathways.md, JSON Schema in ``schema.json``) compiled
to one PlanDefinition per version. The engine enrols patients (a CarePlan and its Tasks),
moves them on as tasks are completed and forms answered, sends reminders and escalations
(``sweep_overdue``) and handles exit and re-entry, all through the repository.

Other modules call::

    with store.begin() as tx:
        enrolment = enrol(tx, "vigilans", patient_id, clock, consent=True)
        for task in tasks_of(tx, careplan_id=enrolment.careplan_id, open_only=True): ...
        answer_form(tx, task_id, {"reached": True}, clock)
    sweep_overdue(store, now_ms())
"""

from parcours.pathways.catalogue import (
    PlanSummary,
    check_plan,
    definition_of,
    list_plans,
    load_library,
    resolve_plan,
    save_definition,
)
from parcours.pathways.engine import (
    Clock,
    Enrolment,
    PathwayTask,
    advance,
    answer_form,
    attach_response,
    complete_task,
    enrol,
    enrolments_of,
    leave,
    tasks_of,
)
from parcours.pathways.fhir_mapping import from_fhir, questionnaires, to_fhir
from parcours.pathways.index import on_write as index_tasks
from parcours.pathways.model import PathwayDefinition, json_schema
from parcours.pathways.reactors import PathwayReactor
from parcours.pathways.sweep import SweepReport, sweep_overdue
from parcours.pathways.yaml_io import DefinitionError, dump_yaml, load_yaml, load_yaml_file

__all__ = [
    "Clock",
    "DefinitionError",
    "Enrolment",
    "PathwayDefinition",
    "PathwayReactor",
    "PathwayTask",
    "PlanSummary",
    "SweepReport",
    "advance",
    "answer_form",
    "attach_response",
    "check_plan",
    "complete_task",
    "definition_of",
    "dump_yaml",
    "enrol",
    "enrolments_of",
    "from_fhir",
    "index_tasks",
    "json_schema",
    "leave",
    "list_plans",
    "load_library",
    "load_yaml",
    "load_yaml_file",
    "questionnaires",
    "resolve_plan",
    "save_definition",
    "sweep_overdue",
    "tasks_of",
    "to_fhir",
]
