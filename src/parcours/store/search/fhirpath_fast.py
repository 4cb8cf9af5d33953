"""FHIRPath for index extraction: a hand-written fast path, fhirpathpy for everything else.

Why a fast path: index extraction runs on every write, for every parameter of the resource's
type (Observation has about 40), and the bulk-import target is 1,500 resources/s on two cores.
fhirpathpy interprets a parse tree with a type model for each evaluation, which costs tens of
microseconds per expression; about 95 % of the R4 expressions are a handful of simple shapes
(``Patient.name``, ``Observation.value as Quantity``, ``(X as Y)``, ``.where(system='…')``,
``.where(resolve() is Patient)``, ``.ofType(T)``, ``extension('url')``) that compile to a
chain of dictionary look-ups. Anything else (functions, indexers, boolean logic) goes to
fhirpathpy, compiled once with the R4 model.

A compiled expression returns a list of ``Node``: the value and, for choice elements read by
their short name (``value`` found as ``valueQuantity``), the type suffix, which ``as``/``ofType``
filter on and extraction uses to interpret the value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["Extractor", "Node", "check_expression", "compile_expression", "split_union"]


class Node(NamedTuple):
    value: Any
    # Choice suffix ("Quantity", "DateTime") or a type tested by ``as``; None when unknown.
    type: str | None


Extractor = Callable[[dict[str, Any]], list[Node]]
_Step = Callable[[list[Node]], list[Node]]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(
    rf"""\s*(?:
      (?P<where_eq>\.where\(\s*(?P<wf>{_IDENT})\s*=\s*'(?P<wv>[^']*)'\s*\))
    | (?P<where_is>\.where\(\s*resolve\(\)\s+is\s+(?P<wt>{_IDENT})\s*\))
    | (?P<oftype>\.(?:ofType|as)\(\s*(?P<ot>{_IDENT})\s*\))
    | (?P<ext>\.extension\(\s*'(?P<eu>[^']*)'\s*\))
    | (?P<as_kw>\s+as\s+(?P<at>{_IDENT})\b)
    | (?P<field>\.(?P<fn>{_IDENT})(?!\s*\())
    )""",
    re.VERBOSE,
)
_HEAD = re.compile(rf"\s*(?P<name>{_IDENT})(?!\s*\()")
_EXT_HEAD = re.compile(r"\s*extension\(\s*'(?P<eu>[^']*)'\s*\)")


def split_union(expression: str) -> list[str]:
    """The top-level operands of ``a | b | c`` (parentheses and quotes respected)."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, char in enumerate(expression):
        if char == "'" and (i == 0 or expression[i - 1] != "\\"):
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(expression[start:i].strip())
            start = i + 1
    parts.append(expression[start:].strip())
    return [p for p in parts if p]


def _strip_parens(text: str) -> str:
    text = text.strip()
    while text.startswith("(") and _closing(text, 0) == len(text) - 1:
        text = text[1:-1].strip()
    return text


def _closing(text: str, open_at: int) -> int:
    depth = 0
    quoted = False
    for i in range(open_at, len(text)):
        char = text[i]
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _upper_first(name: str) -> str:
    return name[:1].upper() + name[1:]


def _flatten(value: Any, type_: str | None, out: list[Node]) -> None:
    if isinstance(value, list):
        for item in value:
            if item is not None:
                out.append(Node(item, type_))
    elif value is not None:
        out.append(Node(value, type_))


def _field(name: str, choices: frozenset[str] | None) -> _Step:
    prefix_len = len(name)
    # Scanning the keys for valueQuantity & co. is the slow part of a miss: only do it for
    # names that are choice elements somewhere in R4 (all names when the list is unknown).
    is_choice = choices is None or name in choices

    def step(nodes: list[Node]) -> list[Node]:
        out: list[Node] = []
        for node in nodes:
            value = node.value
            if not isinstance(value, dict):
                continue
            if name in value:
                _flatten(value[name], None, out)
                continue
            if not is_choice:
                continue
            # A choice element read by its short name: valueQuantity, effectivePeriod...
            for key, item in value.items():
                if (
                    len(key) > prefix_len
                    and key.startswith(name)
                    and key[prefix_len].isupper()
                    and not key.startswith("_")
                ):
                    _flatten(item, key[prefix_len:], out)
        return out

    return step


def _of_type(type_name: str) -> _Step:
    wanted = _upper_first(type_name)

    def step(nodes: list[Node]) -> list[Node]:
        # Untagged values are kept: without structure definitions the fast path cannot tell
        # a Reference from a CodeableConcept, and the parameter's type decides how it is read.
        return [
            Node(n.value, wanted) for n in nodes if n.type is None or _upper_first(n.type) == wanted
        ]

    return step


def _where_eq(field: str, literal: str) -> _Step:
    def step(nodes: list[Node]) -> list[Node]:
        return [n for n in nodes if isinstance(n.value, dict) and n.value.get(field) == literal]

    return step


def _where_is(type_name: str) -> _Step:
    local = type_name + "/"
    remote = "/" + type_name + "/"

    def step(nodes: list[Node]) -> list[Node]:
        out = []
        for n in nodes:
            ref = n.value.get("reference") if isinstance(n.value, dict) else None
            if (isinstance(ref, str) and (ref.startswith(local) or remote in ref)) or (
                isinstance(n.value, dict) and n.value.get("type") == type_name
            ):
                out.append(n)
        return out

    return step


def _compile_fast(
    part: str, resource_type: str, choices: frozenset[str] | None = None
) -> Extractor | None:
    """The fast path for one union operand, or None if its shape is not one we handle."""
    text = _strip_parens(part)
    steps: list[_Step] = []
    pos = 0
    if text.startswith("("):
        end = _closing(text, 0)
        if end < 0:
            return None
        inner = _compile_fast(text[1:end], resource_type, choices)
        if inner is None:
            return None
        head: Extractor = inner
        pos = end + 1
    else:
        ext = _EXT_HEAD.match(text)
        if ext is not None:
            steps.append(_field("extension", choices))
            steps.append(_where_eq("url", ext.group("eu")))
            pos = ext.end()
        else:
            match = _HEAD.match(text)
            if match is None:
                return None
            name = match.group("name")
            pos = match.end()
            if name not in (resource_type, "Resource", "DomainResource"):
                if name[:1].isupper():
                    return None
                steps.append(_field(name, choices))

        def root(res: dict[str, Any]) -> list[Node]:
            return [Node(res, None)]

        head = root
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            return None
        pos = match.end()
        if match.group("where_eq"):
            steps.append(_where_eq(match.group("wf"), match.group("wv")))
        elif match.group("where_is"):
            steps.append(_where_is(match.group("wt")))
        elif match.group("oftype"):
            steps.append(_of_type(match.group("ot")))
        elif match.group("ext"):
            steps.append(_field("extension", choices))
            steps.append(_where_eq("url", match.group("eu")))
        elif match.group("as_kw"):
            steps.append(_of_type(match.group("at")))
        else:
            steps.append(_field(match.group("fn"), choices))
    if text[pos:].strip():
        return None

    def run(res: dict[str, Any]) -> list[Node]:
        nodes = head(res)
        for step in steps:
            if not nodes:
                return nodes
            nodes = step(nodes)
        return nodes

    return run


def _compile_fhirpathpy(part: str) -> Extractor:
    import fhirpathpy
    from fhirpathpy.models import models

    compiled = fhirpathpy.compile(part, model=models["r4"])

    def run(res: dict[str, Any]) -> list[Node]:
        try:
            values = compiled(res, {})
        except Exception:  # a malformed resource must not make its write fail
            return []
        out: list[Node] = []
        for value in values:
            if isinstance(value, dict | str | bool | int | float):
                out.append(Node(value, None))
            elif value is not None:
                out.append(Node(str(value), None))  # FP_DateTime and friends
        return out

    return run


def compile_expression(
    part: str,
    resource_type: str,
    *,
    fast: bool = True,
    choices: frozenset[str] | None = None,
) -> Extractor:
    """Compile one union operand for resources of ``resource_type``.

    ``choices``: the short names of choice elements (``value`` for ``value[x]``); None means
    any name may be one.
    """
    if fast:
        compiled = _compile_fast(part, resource_type, choices)
        if compiled is not None:
            return compiled
    return _compile_fhirpathpy(part)


def check_expression(part: str, resource_type: str) -> None:
    """Raise if fhirpathpy cannot evaluate ``part`` (its parser recovers from many syntax
    errors, so the check evaluates it once on an empty resource)."""
    import fhirpathpy
    from fhirpathpy.models import models

    compiled = fhirpathpy.compile(part, model=models["r4"])
    compiled({"resourceType": resource_type}, {})
