"""A search, parsed once into a frozen value: ``parse_search`` and its inverse ``format_search``.

Values are kept as written (one ``SearchValue`` per comma-separated alternative, FHIR escapes
``\\,`` ``\\|`` ``\\$`` ``\\\\`` preserved) so formatting gives back an equivalent query; they
are checked against their parameter's type here, so the SQL builder never sees bad input.
Comma-separated values are OR, repeated parameters are AND.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from parcours.errors import InvalidInput
from parcours.store.search.registry import SearchParam, SearchParameterRegistry
from parcours.store.search.values import date_range, parse_decimal

__all__ = [
    "Filter",
    "Include",
    "Prefix",
    "SearchRequest",
    "SearchValue",
    "SortRule",
    "Summary",
    "TotalMode",
    "decode_cursor",
    "encode_cursor",
    "format_search",
    "parse_search",
    "split_escaped",
    "unescape",
]

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]
PREFIXES: frozenset[str] = frozenset(get_args(Prefix))
TotalMode = Literal["none", "estimate", "accurate"]
Summary = Literal["count", "true", "text", "data", "false"]
_IGNORED = frozenset({"_format", "_pretty"})
_SINGLE = ("_count", "_offset", "_cursor", "_sort", "_total", "_summary", "_elements")
_MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"exact", "contains", "missing"}),
    "token": frozenset({"missing", "not", "text", "of-type"}),
    "reference": frozenset({"missing", "identifier"}),
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
    "uri": frozenset({"missing", "below", "above"}),
}
_PREFIXED = frozenset({"date", "number", "quantity"})
_SORTABLE = frozenset({"string", "token", "date", "number", "quantity", "reference", "uri"})
MAX_CHAIN = 4


@dataclass(frozen=True, slots=True)
class SearchValue:
    """One alternative of a parameter's value, as written (escapes kept), prefix apart."""

    value: str
    prefix: Prefix | None = None

    def __str__(self) -> str:
        return (self.prefix or "") + self.value


@dataclass(frozen=True, slots=True)
class Filter:
    """One query parameter: ``code[:modifier]=v1,v2`` or a chain or a ``_has``.

    A chain ``subject:Patient.name=x`` is ``Filter("subject", "Patient", chain=Filter("name"))``;
    ``_has:Observation:patient:code=x`` is
    ``Filter("_has", has_type="Observation", has_param="patient", chain=Filter("code"))``.
    """

    code: str
    modifier: str | None = None
    values: tuple[SearchValue, ...] = ()
    chain: Filter | None = None
    has_type: str | None = None
    has_param: str | None = None

    def key(self) -> str:
        if self.code == "_has":
            assert self.chain is not None
            return f"_has:{self.has_type}:{self.has_param}:{self.chain.key()}"
        key = self.code + (f":{self.modifier}" if self.modifier else "")
        if self.chain is not None:
            key += "." + self.chain.key()
        return key

    def leaf(self) -> Filter:
        return self.chain.leaf() if self.chain is not None else self


@dataclass(frozen=True, slots=True)
class SortRule:
    code: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Include:
    """``_include`` / ``_revinclude`` = ``source_type:param[:target_type]``, or ``*``."""

    source_type: str
    param: str
    target_type: str | None = None
    iterate: bool = False

    def value(self) -> str:
        if self.source_type == "*":
            return "*"
        return ":".join(p for p in (self.source_type, self.param, self.target_type) if p)


@dataclass(frozen=True, slots=True)
class SearchRequest:
    resource_type: str
    filters: tuple[Filter, ...] = ()
    sort: tuple[SortRule, ...] = ()
    count: int = 20
    offset: int | None = None
    # Opaque keyset position from ``next_params`` (see ``paging``); excludes ``offset``.
    cursor: str | None = None
    total: TotalMode | None = None
    summary: Summary | None = None
    elements: tuple[str, ...] = ()
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    # Query parameters kept verbatim for the REST layer (``_format``, ``_pretty``).
    passthrough: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def with_cursor(self, cursor: str) -> SearchRequest:
        return replace(self, cursor=cursor, offset=None)


# ---- escapes ----------------------------------------------------------------------------------


def split_escaped(text: str, separator: str) -> list[str]:
    """Split on ``separator`` not preceded by a backslash; the parts keep their escapes."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ",|$\\":
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# ---- cursor -----------------------------------------------------------------------------------


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("_cursor is not a cursor this server issued") from exc
    if not isinstance(values, list) or not values:
        raise InvalidInput("_cursor is not a cursor this server issued")
    return values


# ---- parsing ----------------------------------------------------------------------------------


def _bad(name: str, message: str) -> InvalidInput:
    return InvalidInput(f"search parameter {name!r}: {message}")


def _int(name: str, text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _bad(name, f"{text[:40]!r} is not an integer") from None
    if value < minimum:
        raise _bad(name, f"must be at least {minimum}")
    return value


def parse_search(
    resource_type: str,
    params: Sequence[tuple[str, str]],
    registry: SearchParameterRegistry,
    *,
    default_count: int = 20,
    max_count: int = 1000,
) -> SearchRequest:
    """Parse query parameters into a SearchRequest; InvalidInput names the faulty parameter."""
    if not registry.is_resource_type(resource_type):
        raise InvalidInput(f"{resource_type[:64]!r} is not a FHIR R4 resource type")
    seen_single: set[str] = set()
    filters: list[Filter] = []
    includes: list[Include] = []
    revincludes: list[Include] = []
    passthrough: list[tuple[str, str]] = []
    count = default_count
    offset: int | None = None
    cursor: str | None = None
    sort: tuple[SortRule, ...] = ()
    total: TotalMode | None = None
    summary: Summary | None = None
    elements: tuple[str, ...] = ()
    for name, value in params:
        if name in _IGNORED:
            passthrough.append((name, value))
            continue
        if name in _SINGLE:
            if name in seen_single:
                raise _bad(name, "may appear only once")
            seen_single.add(name)
        if name == "_count":
            count = min(_int(name, value, 0), max_count)
        elif name == "_offset":
            offset = _int(name, value, 0)
        elif name == "_cursor":
            decode_cursor(value)
            cursor = value
        elif name == "_sort":
            sort = _parse_sort(resource_type, value, registry)
        elif name == "_total":
            if value not in ("none", "estimate", "accurate"):
                raise _bad(name, "must be none, estimate or accurate")
            total = value  # type: ignore[assignment]
        elif name == "_summary":
            if value not in get_args(Summary):
                raise _bad(name, "must be count, true, text, data or false")
            summary = value  # type: ignore[assignment]
        elif name == "_elements":
            elements = tuple(e.strip() for e in value.split(",") if e.strip())
        elif name in ("_include", "_include:iterate", "_revinclude", "_revinclude:iterate"):
            reverse = name.startswith("_revinclude")
            parsed = _parse_include(name, value, registry, reverse=reverse)
            (revincludes if reverse else includes).append(parsed)
        else:
            try:
                filters.append(_parse_filter(resource_type, name, value, registry, depth=0))
            except InvalidInput as exc:
                if repr(name) in exc.message:
                    raise
                # A nested part of a chain or _has failed: name the whole query parameter.
                raise InvalidInput(f"search parameter {name!r}: {exc.message}") from exc
    if offset is not None and cursor is not None:
        raise _bad("_cursor", "cannot be combined with _offset")
    return SearchRequest(
        resource_type=resource_type,
        filters=tuple(filters),
        sort=sort,
        count=count,
        offset=offset,
        cursor=cursor,
        total=total,
        summary=summary,
        elements=elements,
        includes=tuple(includes),
        revincludes=tuple(revincludes),
        passthrough=tuple(passthrough),
    )


def _param(
    resource_type: str, code: str, registry: SearchParameterRegistry, name: str
) -> SearchParam:
    param = registry.get(resource_type, code)
    if param is None:
        raise InvalidInput(
            f"unknown search parameter {name!r}: {resource_type} has no parameter {code!r}"
        )
    return param


def _parse_filter(
    resource_type: str, name: str, value: str, registry: SearchParameterRegistry, *, depth: int
) -> Filter:
    if depth > MAX_CHAIN:
        raise _bad(name, f"chains and _has nest at most {MAX_CHAIN} levels deep")
    if name.startswith("_has:"):
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise _bad(name, "_has is written _has:Type:reference-parameter:parameter")
        _, has_type, has_param, rest = parts
        if not registry.is_resource_type(has_type):
            raise _bad(name, f"{has_type!r} is not a resource type")
        ref = _param(has_type, has_param, registry, name)
        if ref.type != "reference":
            raise _bad(name, f"{has_type}.{has_param} is not a reference parameter")
        if ref.target and resource_type not in ref.target:
            raise _bad(name, f"{has_type}.{has_param} cannot point at {resource_type}")
        inner = _parse_filter(has_type, rest, value, registry, depth=depth + 1)
        return Filter("_has", has_type=has_type, has_param=has_param, chain=inner)
    head, dot, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    if not code:
        raise InvalidInput(f"unknown search parameter {name!r}")
    if dot:
        param = _param(resource_type, code, registry, name)
        if param.type != "reference":
            raise _bad(name, f"{code!r} is a {param.type} parameter and cannot be chained")
        targets = _chain_targets(param, modifier or None, registry, name)
        inner_code = rest.split(".", 1)[0].split(":", 1)[0]
        usable = [t for t in targets if registry.get(t, inner_code) is not None]
        if not usable:
            raise _bad(name, f"no target of {code!r} has a parameter {inner_code!r}")
        # Validate the rest of the chain against the first target that knows it; the SQL
        # builder repeats the check per target type.
        inner = _parse_filter(usable[0], rest, value, registry, depth=depth + 1)
        return Filter(code, modifier or None, chain=inner)
    values = tuple(_parse_values(resource_type, code, modifier or None, value, registry, name))
    return Filter(code, modifier or None, values=values)


def _chain_targets(
    param: SearchParam, modifier: str | None, registry: SearchParameterRegistry, name: str
) -> list[str]:
    if modifier:
        if not registry.is_resource_type(modifier):
            raise _bad(name, f"modifier {modifier!r} of a chain must be a resource type")
        if param.target and modifier not in param.target:
            raise _bad(name, f"{param.code!r} cannot point at {modifier}")
        return [modifier]
    return list(param.target) or sorted(registry.resource_types())


def _parse_values(
    resource_type: str,
    code: str,
    modifier: str | None,
    value: str,
    registry: SearchParameterRegistry,
    name: str,
) -> list[SearchValue]:
    if code == "_id":
        kind = "special-id"
        allowed: frozenset[str] = frozenset({"not", "missing"})
    elif code == "_lastUpdated":
        kind = "date"
        allowed = frozenset()
    else:
        param = _param(resource_type, code, registry, name)
        kind = param.type
        if kind not in _MODIFIERS or not param.expression:
            raise _bad(name, f"parameters of type {kind} are not supported by this server")
        allowed = _MODIFIERS[kind]
        if kind == "reference" and modifier and registry.is_resource_type(modifier):
            if param.target and modifier not in param.target:
                raise _bad(name, f"{code!r} cannot point at {modifier}")
            allowed = allowed | {modifier}
    if modifier is not None and modifier not in allowed:
        raise _bad(name, f"modifier :{modifier} is not supported here")
    if value == "":
        raise _bad(name, "has an empty value")
    if modifier == "missing":
        if value not in ("true", "false"):
            raise _bad(name, ":missing takes true or false")
        return [SearchValue(value)]
    out: list[SearchValue] = []
    for raw in split_escaped(value, ","):
        if raw == "":
            raise _bad(name, "has an empty alternative (two commas in a row?)")
        prefix: Prefix | None = None
        text = raw
        if kind in _PREFIXED and len(raw) > 2 and raw[:2] in PREFIXES and not raw[2].isalpha():
            prefix = raw[:2]  # type: ignore[assignment]
            text = raw[2:]
        _check_value(kind, modifier, text, name)
        out.append(SearchValue(text, prefix))
    return out


def _check_value(kind: str, modifier: str | None, text: str, name: str) -> None:
    if kind == "date" and date_range(unescape(text)) is None:
        raise _bad(name, f"{text[:40]!r} is not a FHIR date or dateTime")
    if kind == "number" and parse_decimal(unescape(text)) is None:
        raise _bad(name, f"{text[:40]!r} is not a number")
    if kind == "quantity":
        number = split_escaped(text, "|")[0]
        if parse_decimal(unescape(number)) is None:
            raise _bad(name, f"{text[:40]!r} is not a quantity (number|system|code)")
        if len(split_escaped(text, "|")) not in (1, 3):
            raise _bad(name, "a quantity is number, or number|system|code")
    if kind == "token" and modifier == "of-type":
        if len(split_escaped(text, "|")) != 3:
            raise _bad(name, ":of-type takes type-system|type-code|identifier-value")
    elif kind == "token" and modifier != "text" and len(split_escaped(text, "|")) > 2:
        raise _bad(name, "a token is code, system|code, |code or system|")


def _parse_sort(
    resource_type: str, value: str, registry: SearchParameterRegistry
) -> tuple[SortRule, ...]:
    rules = []
    for item in value.split(","):
        item = item.strip()
        descending = item.startswith("-")
        code = item[1:] if descending else item
        if code not in ("_id", "_lastUpdated"):
            param = registry.get(resource_type, code)
            if param is None:
                raise _bad("_sort", f"{resource_type} has no parameter {code!r}")
            if param.type not in _SORTABLE or not param.expression:
                raise _bad("_sort", f"cannot sort on {code!r} (a {param.type} parameter)")
        rules.append(SortRule(code, descending))
    if not rules or len({r.code for r in rules}) != len(rules):
        raise _bad("_sort", "lists each parameter at most once")
    return tuple(rules)


def _parse_include(
    name: str, value: str, registry: SearchParameterRegistry, *, reverse: bool
) -> Include:
    iterate = name.endswith(":iterate")
    if value == "*":
        return Include("*", "*", None, iterate)
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise _bad(name, "is written Type:parameter[:TargetType] or *")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if not registry.is_resource_type(source):
        raise _bad(name, f"{source!r} is not a resource type")
    if target is not None and not registry.is_resource_type(target):
        raise _bad(name, f"{target!r} is not a resource type")
    if code != "*":
        param = _param(source, code, registry, name)
        if param.type != "reference":
            raise _bad(name, f"{source}.{code} is not a reference parameter")
    return Include(source, code, target, iterate)


# ---- formatting -------------------------------------------------------------------------------


def format_search(request: SearchRequest) -> list[tuple[str, str]]:
    """The query parameters that ``parse_search`` turns back into an equal request."""
    out: list[tuple[str, str]] = []
    for f in request.filters:
        leaf = f.leaf()
        out.append((f.key(), ",".join(str(v) for v in leaf.values)))
    if request.sort:
        out.append(
            ("_sort", ",".join(("-" if r.descending else "") + r.code for r in request.sort))
        )
    out.append(("_count", str(request.count)))
    if request.offset is not None:
        out.append(("_offset", str(request.offset)))
    if request.cursor is not None:
        out.append(("_cursor", request.cursor))
    if request.total is not None:
        out.append(("_total", request.total))
    if request.summary is not None:
        out.append(("_summary", request.summary))
    if request.elements:
        out.append(("_elements", ",".join(request.elements)))
    for inc in request.includes:
        out.append(("_include:iterate" if inc.iterate else "_include", inc.value()))
    for inc in request.revincludes:
        out.append(("_revinclude:iterate" if inc.iterate else "_revinclude", inc.value()))
    out.extend(request.passthrough)
    return out
