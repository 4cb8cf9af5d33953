"""Structural validation of every incoming resource against FHIR R4, plus pluggable profiles.

The structure check uses the R4B models of ``fhir.resources`` (R4B differs from R4 4.0.1 only in
a few resources). The model is used to *check* the client's JSON, never to re-serialise it: the
store keeps the JSON as received. Pydantic errors become ``Issue`` values located by a
FHIRPath-like expression; every problem is reported, not only the first.

R4 differences we tolerate (the wire format is R4):

- resource types that exist in R4 but not in R4B (``MedicinalProduct*``, ``Substance*`` of the
  SPL family, ``EffectEvidenceSynthesis``, ``RiskEvidenceSynthesis``) and the two that R4B
  redesigned (``Evidence``, ``EvidenceVariable``) get only the generic checks (a JSON object
  with a valid ``id``), since no R4 model is available.

Empty strings: R4 forbids ``""`` as a value (a string must match ``[ \\r\\n\\t\\S]+`` and an
element with no value must be absent). Published examples still carry them (the ANS Cercle de
soins ones, in translation extensions), and ``""`` says nothing a receiver could use, so the
validator drops such values before the structure check, and the extensions left with neither a
value nor a sub-extension, and logs a warning naming each dropped element (see
:func:`drop_empty_strings`). Every other structural error is still refused.

Profile checks (FR Core Patient INS rules, ...) plug in as callables returning issues;
``make_validator(settings, profile_checks=[...])`` runs them after the structure check.
"""

from __future__ import annotations

import decimal
import logging
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

import pydantic
from fhir.resources.R4B import get_fhir_model_class

from parcours.config import Settings
from parcours.errors import InvalidResource, Issue

__all__ = [
    "R4_ONLY_TYPES",
    "ProfileCheck",
    "drop_empty_strings",
    "make_validator",
    "model_for",
    "structure_issues",
]

log = logging.getLogger(__name__)

Resource = dict[str, Any]
# A profile rule set: the issues it finds in a resource (warnings do not block the write).
ProfileCheck = Callable[[Resource], Iterable[Issue]]

R4_ONLY_TYPES = frozenset(
    {
        "EffectEvidenceSynthesis",
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "RiskEvidenceSynthesis",
        "SubstanceNucleicAcid",
        "SubstancePolymer",
        "SubstanceProtein",
        "SubstanceReferenceInformation",
        "SubstanceSourceMaterial",
        "SubstanceSpecification",
    }
)
# Present in R4B with an incompatible structure.
_R4B_REDESIGNED = frozenset({"Evidence", "EvidenceVariable"})

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_BLOCKING = frozenset({"error", "fatal"})

# pydantic error type -> OperationOutcome issue code.
_CODES = {
    "missing": "required",
    "extra_forbidden": "structure",
    "string_pattern_mismatch": "value",
    "value_error": "value",
}


@cache
def _model(resource_type: str) -> type[pydantic.BaseModel] | None:
    if resource_type in R4_ONLY_TYPES or resource_type in _R4B_REDESIGNED:
        return None
    try:
        model: type[pydantic.BaseModel] = get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError):
        return None
    return model


def model_for(resource_type: str) -> type[pydantic.BaseModel] | None:
    """The R4B model used to check a type (None for the R4-only and redesigned types)."""
    return _model(resource_type)


def is_known_type(resource_type: str) -> bool:
    return _model(resource_type) is not None or resource_type in R4_ONLY_TYPES | _R4B_REDESIGNED


def _location(resource_type: str, loc: Sequence[int | str]) -> str:
    """``('name', 0, '_family', 'extension', 1)`` -> ``Patient.name[0].family.extension[1]``."""
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith("_") and len(part) > 1:
            # JSON "_x" holds the id/extensions of primitive x; in FHIRPath that is x itself.
            path += "." + part[1:]
        elif "[" in part or " " in part:
            # pydantic's internal validator names (unions, functions): not an element.
            continue
        else:
            path += "." + part
    return path


def _message(error: Any) -> str:
    msg = str(error["msg"])
    msg = msg.removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown element (not in the R4 definition of this type)"
    if error["type"] == "missing":
        return "required element is missing"
    if error["type"] == "string_pattern_mismatch":
        # The R4 string regex rejects empty strings; say so rather than print the regex.
        return "value does not match the R4 format of this element (strings may not be empty)"
    return msg


def structure_issues(resource: Any) -> list[Issue]:
    """Every structural problem of a resource, as located issues (empty when valid)."""
    if not isinstance(resource, dict):
        return [Issue("a resource must be a JSON object", code="structure")]
    res_type = resource.get("resourceType")
    if not isinstance(res_type, str) or not _TYPE.match(res_type):
        return [Issue("resourceType is missing or not a resource type name", code="required")]
    if not is_known_type(res_type):
        return [Issue(f"{res_type} is not an R4 resource type", res_type, code="not-supported")]
    issues: list[Issue] = []
    res_id = resource.get("id")
    if res_id is not None and (not isinstance(res_id, str) or not _ID.match(res_id)):
        issues.append(
            Issue(
                "id must be 1 to 64 characters among A-Z a-z 0-9 - .",
                f"{res_type}.id",
                code="value",
            )
        )
    model = _model(res_type)
    if model is None:
        return issues
    try:
        model.model_validate(resource)
        # pydantic coerces "true"/"1" into booleans and numbers; the R4 JSON format does not.
        _json_types(resource, model, res_type, issues)
    except pydantic.ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            location = _location(res_type, error["loc"])
            if location == f"{res_type}.id" and issues:
                continue  # already reported above with a clearer message
            issues.append(
                Issue(_message(error), location, code=_CODES.get(error["type"], "structure"))
            )
    except Exception as exc:
        # fhir.resources raises plain errors (KeyError, TypeError...) on some odd inputs, such
        # as an unknown contained resource type: still the client's fault, never a 500.
        issues.append(
            Issue(f"cannot be read as {res_type} ({type(exc).__name__})", res_type, "structure")
        )
    return issues


# ---- JSON types of primitives ------------------------------------------------------------------

_Kind = str | type[pydantic.BaseModel] | None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``Optional[List[Annotated[int, ...]]]`` -> (int, True)."""
    many = False
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Union or origin is types.UnionType:
            annotation = next(a for a in args if a is not type(None))
        elif origin is list:
            many, annotation = True, args[0]
        elif origin is typing.Annotated:
            annotation = args[0]
        else:
            return annotation, many


def _kind(inner: Any) -> _Kind:
    if inner is bool:
        return "boolean"
    if inner is int:
        return "integer"
    if inner is decimal.Decimal:
        return "decimal"
    getter = getattr(inner, "get_model_klass", None)
    if getter is not None:
        klass: type[pydantic.BaseModel] = getter()
        return "resource" if klass.__name__ == "Resource" else klass
    return None


@cache
def _fields(model: type[pydantic.BaseModel]) -> dict[str, tuple[_Kind, bool]]:
    out: dict[str, tuple[_Kind, bool]] = {}
    for name, info in model.model_fields.items():
        inner, many = _unwrap(info.annotation)
        kind = _kind(inner)
        if kind is not None:
            out[info.alias or name] = (kind, many)
    return out


def _wrong_type(kind: str, value: Any) -> bool:
    if kind == "boolean":
        return not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, bool) or not isinstance(value, int)
    return isinstance(value, bool) or not isinstance(value, int | float)


def _json_types(
    value: dict[str, Any], model: type[pydantic.BaseModel], path: str, issues: list[Issue]
) -> None:
    fields = _fields(model)
    for key, item in value.items():
        spec = fields.get(key)
        if spec is None:
            continue
        kind, many = spec
        items = item if many and isinstance(item, list) else [item]
        name = key[1:] if key.startswith("_") else key
        for i, element in enumerate(items):
            where = f"{path}.{name}[{i}]" if many else f"{path}.{name}"
            if isinstance(kind, str) and kind != "resource":
                if element is not None and _wrong_type(kind, element):
                    issues.append(Issue(f"must be a JSON {kind}", where, code="value"))
            elif isinstance(element, dict):
                if kind == "resource":
                    inner = _model(str(element.get("resourceType")))
                    if inner is not None:
                        _json_types(element, inner, where, issues)
                elif kind is not None and not isinstance(kind, str):
                    _json_types(element, kind, where, issues)


# ---- empty strings ---------------------------------------------------------------------------

_DROPPED = object()
_EXTENSION_KEYS = frozenset({"extension", "modifierExtension"})


def _has_empty(node: Any) -> bool:
    if node == "":
        return True
    if isinstance(node, dict):
        return any(_has_empty(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_empty(v) for v in node)
    return False


def _is_void_extension(node: Any) -> bool:
    """An extension with only its url (and maybe an id) left: it says nothing."""
    return isinstance(node, dict) and not (set(node) - {"url", "id"})


def _clean(node: Any, path: str, dropped: list[str]) -> Any:
    """``node`` without its empty strings (new containers only where something changed)."""
    if node == "":
        dropped.append(path)
        return _DROPPED
    if isinstance(node, list):
        return _clean_list(node, None, path, dropped)[0]
    if not isinstance(node, dict) or not _has_empty(node):
        return node
    out: dict[str, Any] = {}
    keys = list(node)
    for key in keys:
        if key.startswith("_") and key[1:] in node:
            continue  # handled with its primitive, so that both stay aligned
        value, shadow = node[key], node.get("_" + key)
        name = path + "." + (key[1:] if key.startswith("_") else key)
        if isinstance(value, list) and not key.startswith("_"):
            items, shadows = _clean_list(value, shadow, name, dropped, key in _EXTENSION_KEYS)
            if items is not _DROPPED:
                out[key] = items
            if shadows is not _DROPPED and shadows is not None:
                out["_" + key] = shadows
            continue
        cleaned = _clean(value, name, dropped)
        if cleaned is not _DROPPED and cleaned != {}:
            out[key] = cleaned
        if shadow is not None:
            extra = _clean(shadow, name, dropped)
            if extra is not _DROPPED and extra != {}:
                out["_" + key] = extra
    return out


def _clean_list(
    items: list[Any], shadows: Any, path: str, dropped: list[str], extensions: bool = False
) -> tuple[Any, Any]:
    """A list (and its ``_x`` twin for primitives) without empty strings, kept aligned: an
    item whose value is dropped but whose twin still has extensions becomes ``null``."""
    twins = shadows if isinstance(shadows, list) and len(shadows) == len(items) else None
    kept: list[Any] = []
    kept_twins: list[Any] = []
    for i, item in enumerate(items):
        value = _clean(item, f"{path}[{i}]", dropped)
        # Only an extension emptied here goes: one that came with just its url is left as sent.
        emptied = extensions and value != item and _is_void_extension(value)
        if value == {} or emptied:
            if value != item:
                dropped.append(f"{path}[{i}]")
            value = _DROPPED
        twin = None if twins is None else _clean(twins[i], f"{path}[{i}]", dropped)
        if twin is _DROPPED or twin == {}:
            twin = None
        if value is _DROPPED and twin is None:
            continue
        kept.append(None if value is _DROPPED else value)
        kept_twins.append(twin)
    if twins is None and shadows is not None:
        # A twin list of another length is the sender's error: leave it to the structure check.
        other = _clean(shadows, path, dropped)
        return (kept or _DROPPED), other
    has_twins = any(t is not None for t in kept_twins)
    return (kept or _DROPPED), (kept_twins if has_twins else _DROPPED)


def drop_empty_strings(resource: Resource) -> tuple[Resource, list[str]]:
    """The resource without its empty-string values, and the location of each dropped element.

    Extensions left with no value and no sub-extension go too (an extension must have one or
    the other), and so do objects and lists left empty. The input is never modified; untouched
    subtrees are shared with it. Returns the input itself when it has no empty string.
    """
    if not _has_empty(resource):
        return resource, []
    dropped: list[str] = []
    res_type = str(resource.get("resourceType", "Resource"))
    cleaned = _clean(resource, res_type, dropped)
    return (cleaned if isinstance(cleaned, dict) else {}), dropped


def make_validator(
    settings: Settings, profile_checks: Sequence[ProfileCheck] = ()
) -> Callable[[Resource], None]:
    """The validator the store calls on every write: raises ``InvalidResource`` with every issue."""
    checks = tuple(profile_checks)
    del settings  # reserved for strictness options; the structure check is always on

    def validate(resource: Resource) -> None:
        if isinstance(resource, dict):
            cleaned, dropped = drop_empty_strings(resource)
            if dropped:
                # The store calls us on the dict it is about to write (its own top-level copy):
                # replacing its keys stores the cleaned resource without touching the caller's.
                resource.clear()
                resource.update(cleaned)
                log.warning(
                    "%s/%s: dropped %d element(s) whose value was an empty string: %s",
                    resource.get("resourceType"),
                    resource.get("id"),
                    len(dropped),
                    ", ".join(dropped[:20]),
                )
        issues = structure_issues(resource)
        if not issues:
            for check in checks:
                issues.extend(check(resource))
        errors = [issue for issue in issues if issue.severity in _BLOCKING]
        if errors:
            res_type = resource.get("resourceType") if isinstance(resource, dict) else None
            first = errors[0]
            where = f" at {first.location}" if first.location else ""
            raise InvalidResource(
                f"{res_type or 'the resource'} is not valid R4: {len(errors)} problem(s), "
                f"first{where}: {first.message}",
                issues,
            )

    return validate
