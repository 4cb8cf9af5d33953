"""YAML in and out: every problem of a definition reported with its line and field.

Loading runs three checks and reports every problem of each, never only the first:
the shipped JSON Schema (``schema.json``), then the Pydantic model, then the rules a schema
cannot say (ids that must exist or be unique, FHIRPath syntax and variables).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from parcours.errors import InvalidInput, Issue
from parcours.pathways.conditions import problems, sample_environment
from parcours.pathways.model import (
    CODE_PATTERN,
    DURATION_PATTERN,
    NAME_PATTERN,
    PathwayDefinition,
)

__all__ = [
    "DefinitionError",
    "definition_problems",
    "dump_yaml",
    "load_yaml",
    "load_yaml_file",
    "shipped_schema",
]

FieldPath = tuple[str | int, ...]


class DefinitionError(InvalidInput):
    """A pathway definition that cannot be used; ``issues`` locate each problem."""


@cache
def shipped_schema() -> dict[str, Any]:
    text = resources.files("parcours.pathways").joinpath("schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def format_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


class _Lines:
    """The line (1-based) where each field of the document starts."""

    def __init__(self, root: yaml.Node | None) -> None:
        self._lines: dict[FieldPath, int] = {}
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: FieldPath) -> None:
        self._lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else str(key)
                self._lines[(*path, name)] = key.start_mark.line + 1
                self._walk(value, (*path, name))
                # A key's own line is more telling than its value's (a nested block).
                self._lines[(*path, name)] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, index))

    def line(self, path: FieldPath) -> int | None:
        while True:
            if path in self._lines:
                return self._lines[path]
            if not path:
                return None
            path = path[:-1]


def _issue(source: str, lines: _Lines, path: FieldPath, message: str) -> Issue:
    line = lines.line(path)
    where = f"{source}:{line}" if line is not None else source
    return Issue(f"{where}: {format_path(path)}: {message}", location=format_path(path))


def load_yaml(text: str, source: str = "<pathway>") -> PathwayDefinition:
    """Parse, validate and build a definition; ``DefinitionError`` lists every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError(f"{where}: not valid YAML: {problem}") from None
    lines = _Lines(root)
    if not isinstance(data, dict):
        raise DefinitionError(f"{source}: a pathway definition is a YAML mapping (id, steps…)")
    return build(data, source, lines)


def load_yaml_file(path: Path) -> PathwayDefinition:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot be read: {exc.strerror}") from None
    return load_yaml(text, str(path))


def build(data: dict[str, Any], source: str, lines: _Lines | None = None) -> PathwayDefinition:
    lines = lines or _Lines(None)
    validator = Draft202012Validator(shipped_schema())
    schema_errors = sorted(validator.iter_errors(data), key=lambda e: lines.line(_where(e)) or 0)
    if schema_errors:
        issues = [_issue(source, lines, _where(e), _say(e)) for e in schema_errors]
        raise _error(source, issues)
    try:
        definition = PathwayDefinition.model_validate(data)
    except ValidationError as exc:
        issues = [_issue(source, lines, tuple(e["loc"]), e["msg"]) for e in exc.errors()]
        raise _error(source, issues) from None
    found = definition_problems(definition)
    if found:
        raise _error(source, [_issue(source, lines, path, msg) for path, msg in found])
    return definition


def _where(error: Any) -> FieldPath:
    path: FieldPath = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        # Point at the unexpected key itself, not at the mapping that holds it.
        known = error.schema.get("properties", {})
        extra = sorted(k for k in error.instance if k not in known)
        if extra:
            path = (*path, extra[0])
    return path


def _say(error: Any) -> str:
    if error.validator == "pattern" and error.validator_value == DURATION_PATTERN:
        return (
            f"{error.instance!r} is not a one-unit ISO 8601 duration: write P10D, P2W, PT4H or "
            "PT30M (months and years vary in length: write P30D, P365D)"
        )
    if error.validator == "pattern" and error.validator_value in (CODE_PATTERN, NAME_PATTERN):
        kind = (
            "lower-case letters, digits and -"
            if error.validator_value == CODE_PATTERN
            else ("letters, digits and _ (it is a FHIRPath name)")
        )
        return f"{error.instance!r} is not a valid id: up to 40 {kind}, starting with a letter"
    return str(error.message)


def _error(source: str, issues: list[Issue]) -> DefinitionError:
    count = len(issues)
    head = f"{source}: {count} problem{'s' if count > 1 else ''} in the pathway definition"
    return DefinitionError(head + "\n" + "\n".join(i.message for i in issues), issues)


def definition_problems(d: PathwayDefinition) -> list[tuple[FieldPath, str]]:
    """What the schema cannot check: references between parts, unique ids, FHIRPath."""
    found: list[tuple[FieldPath, str]] = []
    roles = {r.id for r in d.roles}
    steps = {s.id for s in d.steps}
    forms = {f.id: tuple(i.link_id for i in f.items) for f in d.forms}
    env = sample_environment(forms)

    def unique(kind: str, ids: Sequence[tuple[FieldPath, str]]) -> None:
        seen: set[str] = set()
        for path, value in ids:
            if value in seen:
                found.append((path, f"{kind} id {value!r} is used twice"))
            seen.add(value)

    def condition(path: FieldPath, expression: str) -> None:
        found.extend((path, p) for p in problems(expression, env))

    unique("role", [(("roles", i, "id"), r.id) for i, r in enumerate(d.roles)])
    unique("step", [(("steps", i, "id"), s.id) for i, s in enumerate(d.steps)])
    unique("form", [(("forms", i, "id"), f.id) for i, f in enumerate(d.forms)])
    unique("exit", [(("exits", i, "id"), e.id) for i, e in enumerate(d.exits)])
    unique("indicator", [(("indicators", i, "id"), x.id) for i, x in enumerate(d.indicators)])
    unique(
        "task",
        [
            (("steps", si, "tasks", ti, "id"), t.id)
            for si, s in enumerate(d.steps)
            for ti, t in enumerate(s.tasks)
        ],
    )
    if d.start not in steps:
        found.append((("start",), f"no step has the id {d.start!r}"))
    if d.reentry.step is not None and d.reentry.step not in steps:
        found.append((("reentry", "step"), f"no step has the id {d.reentry.step!r}"))
    for i, criterion in enumerate(d.inclusion.criteria):
        condition(("inclusion", "criteria", i, "expression"), criterion.expression)
    for i, exit_ in enumerate(d.exits):
        condition(("exits", i, "when"), exit_.when)
    for fi, form in enumerate(d.forms):
        unique(
            "item",
            [(("forms", fi, "items", i, "link_id"), x.link_id) for i, x in enumerate(form.items)],
        )
        for ii, item in enumerate(form.items):
            if (item.type == "choice") != bool(item.options):
                found.append(
                    (
                        ("forms", fi, "items", ii, "options"),
                        "options are for choice items only, and a choice item needs them",
                    )
                )
    for si, step in enumerate(d.steps):
        for ti, task in enumerate(step.tasks):
            here: FieldPath = ("steps", si, "tasks", ti)
            if task.owner not in roles:
                found.append(((*here, "owner"), f"no role has the id {task.owner!r}"))
            if task.form is not None and task.form not in forms:
                found.append(((*here, "form"), f"no form has the id {task.form!r}"))
            for key, rule in (("due", task.due), ("not_before", task.not_before)):
                wanted = rule.from_[5:] if rule is not None else ""
                if rule is not None and rule.from_.startswith("step:") and wanted not in steps:
                    found.append(((*here, key, "from"), f"no step {wanted!r}"))
            for ei, escalation in enumerate(task.escalations):
                if escalation.to not in roles:
                    found.append(
                        ((*here, "escalations", ei, "to"), f"no role has the id {escalation.to!r}")
                    )
        for ti, transition in enumerate(step.transitions):
            here = ("steps", si, "transitions", ti)
            if transition.to not in steps:
                found.append(((*here, "to"), f"no step has the id {transition.to!r}"))
            if transition.when is not None:
                condition((*here, "when"), transition.when)
    return found


def dump_yaml(definition: PathwayDefinition) -> str:
    """The definition as YAML, in the order of the format reference, defaults left out."""
    return str(
        yaml.dump(
            definition.as_data(),
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            width=100,
        )
    )


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def iter_library() -> Iterator[Path]:
    """The YAML files of the shipped library, in name order."""
    folder = Path(str(resources.files("parcours.pathways").joinpath("library")))
    yield from sorted(folder.glob("*.yaml"))
