"""PATCH: FHIRPath Patch (a ``Parameters`` body) and JSON Patch (RFC 6902), applied to a copy.

FHIRPath Patch is supported for simple paths: dotted element names from the resource type,
each optionally indexed (``Patient.identifier[0].value``), with the operations ``add``,
``replace`` and ``delete`` (``insert`` and ``move`` answer 422). That covers what IHE MHD / ANS
PDSm send (``DocumentReference.status`` replaced by ``superseded``). JSON Patch supports
``add``, ``remove``, ``replace``, ``move``, ``copy`` and ``test``. The patched resource is then
stored as an update, so it is validated like any write.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from typing import Any

import orjson

from parcours.errors import InvalidInput, InvalidResource, Issue, VersionConflict

__all__ = ["apply_fhirpath_patch", "apply_json_patch", "patch_document"]

_SEGMENT = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)(?:\[(\d{1,6})\])?$")


def patch_document(body: Any) -> list[Any] | dict[str, Any]:
    """The patch carried by a request or Bundle entry: Parameters, JSON Patch list, or Binary."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        return body
    if isinstance(body, dict) and body.get("resourceType") == "Binary":
        # In a Bundle, a JSON Patch travels as a Binary (FHIR R4 3.1.0.11.3).
        try:
            decoded = orjson.loads(base64.b64decode(str(body.get("data", "")), validate=True))
        except (binascii.Error, orjson.JSONDecodeError):
            raise InvalidInput("the Binary does not hold a base64 JSON Patch") from None
        if isinstance(decoded, list):
            return decoded
    raise InvalidInput(
        "a PATCH body must be a FHIRPath Patch (Parameters) or a JSON Patch (a JSON array)"
    )


def _bad(message: str, where: str) -> InvalidResource:
    return InvalidResource(f"cannot apply the patch: {message}", [Issue(message, where)])


# ---- FHIRPath Patch -----------------------------------------------------------------------


def _part_value(part: dict[str, Any], where: str) -> Any:
    for key, value in part.items():
        if key.startswith("value"):
            return copy.deepcopy(value)
    if isinstance(part.get("part"), list):
        # A complex value is written as named parts (e.g. an Identifier's system and value).
        return {
            str(p.get("name")): _part_value(p, where) for p in part["part"] if isinstance(p, dict)
        }
    raise _bad("the value part carries no value", where)


def _walk(resource: dict[str, Any], path: str, where: str) -> tuple[Any, str | None, int | None]:
    """(container, last name, last index) of a simple FHIRPath, from the resource."""
    segments = path.split(".")
    if segments[0] != resource.get("resourceType"):
        raise _bad(f"the path must start with {resource.get('resourceType')}", where)
    if len(segments) == 1:
        return None, None, None
    node: Any = resource
    for i, segment in enumerate(segments[1:], start=1):
        match = _SEGMENT.match(segment)
        if match is None:
            raise _bad(f"only simple paths are supported, not {segment[:40]!r}", where)
        name, index = match.group(1), match.group(2)
        last = i == len(segments) - 1
        if last:
            return node, name, int(index) if index is not None else None
        if not isinstance(node, dict) or name not in node:
            raise _bad(f"{'.'.join(segments[: i + 1])} does not exist", where)
        node = node[name]
        if index is not None:
            if not isinstance(node, list) or int(index) >= len(node):
                raise _bad(f"{'.'.join(segments[: i + 1])} has no such index", where)
            node = node[int(index)]
        elif isinstance(node, list):
            if len(node) != 1:
                raise _bad(f"{name} repeats: give an index", where)
            node = node[0]
    raise AssertionError("unreachable")


def apply_fhirpath_patch(resource: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    for n, operation in enumerate(parameters.get("parameter") or []):
        where = f"Parameters.parameter[{n}]"
        if not isinstance(operation, dict) or operation.get("name") != "operation":
            raise _bad("each parameter must be an 'operation'", where)
        parts = {str(p.get("name")): p for p in operation.get("part") or [] if isinstance(p, dict)}
        op = next((v for k, v in parts.get("type", {}).items() if k.startswith("value")), None)
        path = next((v for k, v in parts.get("path", {}).items() if k.startswith("value")), None)
        if not isinstance(path, str):
            raise _bad("the operation has no path", where)
        if op not in ("add", "replace", "delete"):
            raise _bad(f"operation type {str(op)[:20]!r} is not supported", where)
        if op == "add":
            name = next(
                (v for k, v in parts.get("name", {}).items() if k.startswith("value")), None
            )
            if not isinstance(name, str) or "value" not in parts:
                raise _bad("add needs a name and a value", where)
            container, last, index = _walk(out, path, where)
            target = (
                out
                if last is None
                else container.get(last)
                if isinstance(container, dict)
                else None
            )
            if index is not None and isinstance(target, list):
                target = target[index] if index < len(target) else None
            if not isinstance(target, dict):
                raise _bad(f"{path} is not an element that can take children", where)
            value = _part_value(parts["value"], where)
            existing = target.get(name)
            target[name] = [*existing, value] if isinstance(existing, list) else value
            continue
        container, last, index = _walk(out, path, where)
        if last is None or not isinstance(container, dict):
            raise _bad(f"{path} cannot be {op}d", where)
        if last in ("id", "resourceType") and container is out:
            raise _bad(f"{last} cannot be patched", where)
        if op == "replace":
            if "value" not in parts:
                raise _bad("replace needs a value", where)
            value = _part_value(parts["value"], where)
            if last not in container:
                raise _bad(f"{path} does not exist (use add)", where)
            if index is None:
                container[last] = value
            elif isinstance(container[last], list) and index < len(container[last]):
                container[last][index] = value
            else:
                raise _bad(f"{path} does not exist", where)
        else:  # delete: deleting what is not there is not an error (FHIRPath Patch rules)
            if last in container:
                if index is None:
                    del container[last]
                elif isinstance(container[last], list) and index < len(container[last]):
                    del container[last][index]
                    if not container[last]:
                        del container[last]
    return out


# ---- JSON Patch ---------------------------------------------------------------------------


def _pointer(path: Any, where: str) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise _bad("a JSON Patch path is a JSON Pointer such as /name/0/family", where)
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _parent(doc: Any, tokens: list[str], where: str) -> tuple[Any, str]:
    if not tokens:
        raise _bad("the whole resource cannot be replaced by a patch", where)
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, where)
    return node, tokens[-1]


def _child(node: Any, token: str, where: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise _bad(f"path element {token[:40]!r} does not exist", where)


def _get(doc: Any, path: Any, where: str) -> Any:
    node = doc
    for token in _pointer(path, where):
        node = _child(node, token, where)
    return node


def _remove(doc: Any, path: Any, where: str) -> Any:
    parent, token = _parent(doc, _pointer(path, where), where)
    value = _child(parent, token, where)
    if isinstance(parent, list):
        del parent[int(token)]
    else:
        del parent[token]
    return value


def _add(doc: Any, path: Any, value: Any, where: str) -> None:
    parent, token = _parent(doc, _pointer(path, where), where)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list) and token == "-":
        parent.append(value)
    elif isinstance(parent, list) and token.isdigit() and int(token) <= len(parent):
        parent.insert(int(token), value)
    else:
        raise _bad(f"cannot add at {str(path)[:80]}", where)


def apply_json_patch(resource: dict[str, Any], operations: list[Any]) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    for n, operation in enumerate(operations):
        where = f"[{n}]"
        if not isinstance(operation, dict):
            raise _bad("each JSON Patch operation is an object", where)
        op, path = operation.get("op"), operation.get("path")
        if op in ("add", "replace", "test") and "value" not in operation:
            raise _bad(f"{op} needs a value", where)
        if path in ("/id", "/resourceType"):
            raise _bad(f"{path} cannot be patched", where)
        if op == "add":
            _add(out, path, copy.deepcopy(operation["value"]), where)
        elif op == "remove":
            _remove(out, path, where)
        elif op == "replace":
            _remove(out, path, where)
            _add(out, path, copy.deepcopy(operation["value"]), where)
        elif op == "move":
            _add(out, path, _remove(out, operation.get("from"), where), where)
        elif op == "copy":
            _add(out, path, copy.deepcopy(_get(out, operation.get("from"), where)), where)
        elif op == "test":
            if _get(out, path, where) != operation["value"]:
                raise VersionConflict(f"JSON Patch test failed at {str(path)[:80]}")
        else:
            raise _bad(f"op {str(op)[:20]!r} is not a JSON Patch operation", where)
    return out
