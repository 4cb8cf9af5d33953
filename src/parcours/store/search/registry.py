"""The search parameters the store knows, and the indexer derived from them.

Definitions are data: the official R4 SearchParameters plus those of the French guides ship in
``data/``; custom SearchParameter resources are added at run time (``add``) and loaded from the
database at start-up (``load_custom``). For each resource type, the registry compiles once the
operands of each parameter's expression that apply to that type (``Observation.code |
Condition.code`` gives Observation only ``Observation.code``) and caches the plan.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from parcours.errors import InvalidResource
from parcours.store.search.extract import (
    ROW_MAKERS,
    Row,
    identifier_type_rows,
    parse_reference,
    reference_identifier_rows,
)
from parcours.store.search.fhirpath_fast import (
    Extractor,
    Node,
    check_expression,
    compile_expression,
    split_union,
)

if TYPE_CHECKING:
    from parcours.store.repository import Transaction

__all__ = ["ParamType", "SearchParam", "SearchParameterRegistry"]

ParamType = Literal[
    "number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special"
]
INDEXED_TYPES = frozenset(ROW_MAKERS)
# Answered from the resource table itself, never indexed.
RESOURCE_COLUMNS = frozenset({"_id", "_lastUpdated"})
_ABSTRACT_BASES = frozenset({"Resource", "DomainResource"})
_FRENCH_FOLDER = "fr"


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter: what ``SearchParameter`` says, reduced to what search needs."""

    url: str
    code: str
    type: ParamType
    base: tuple[str, ...]
    expression: str | None
    target: tuple[str, ...] = ()
    # (definition url, expression) of each component of a composite parameter.
    component: tuple[tuple[str, str], ...] = ()
    custom: bool = False

    @classmethod
    def from_resource(cls, sp: Mapping[str, Any], *, custom: bool = False) -> SearchParam:
        """Read a SearchParameter resource; InvalidResource says which element is wrong."""
        problems = []
        code, url, type_, base = sp.get("code"), sp.get("url"), sp.get("type"), sp.get("base")
        if not isinstance(code, str) or not code or " " in code:
            problems.append("SearchParameter.code is required (a token without spaces)")
        if not isinstance(url, str) or not url:
            problems.append("SearchParameter.url is required")
        if type_ not in (
            "number",
            "date",
            "string",
            "token",
            "reference",
            "composite",
            "quantity",
            "uri",
            "special",
        ):
            problems.append(f"SearchParameter.type {type_!r} is not a search parameter type")
        if not isinstance(base, list) or not base or not all(isinstance(b, str) for b in base):
            problems.append("SearchParameter.base must list at least one resource type")
        expression = sp.get("expression")
        if expression is not None and not isinstance(expression, str):
            problems.append("SearchParameter.expression must be a string")
        if problems:
            raise InvalidResource("; ".join(problems))
        assert isinstance(code, str) and isinstance(url, str) and isinstance(base, list)
        components = tuple(
            (str(c.get("definition", "")), str(c.get("expression", "")))
            for c in sp.get("component") or []
            if isinstance(c, dict)
        )
        return cls(
            url=url,
            code=code,
            type=type_,  # type: ignore[arg-type]
            base=tuple(base),
            expression=expression or None,
            target=tuple(t for t in sp.get("target") or [] if isinstance(t, str)),
            component=components,
            custom=custom,
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    param: SearchParam
    # (operand text, compiled operand): the text keys a per-resource memo, since parameters
    # often share operands (code / combo-code, subject / patient).
    extractors: tuple[tuple[str, Extractor], ...]


class SearchParameterRegistry:
    """Search parameters by resource type and code, and the indexer the Store calls."""

    def __init__(
        self,
        resource_types: frozenset[str] | set[str] | tuple[str, ...] = (),
        *,
        base_urls: tuple[str, ...] = (),
        fast_path: bool = True,
        choice_elements: frozenset[str] | None = None,
    ) -> None:
        self._resource_types = frozenset(resource_types)
        # Short names of R4 choice elements (value[x] -> "value"), which the fast path may find
        # under a typed key; None when unknown (every name is then tried as a choice).
        self._choices = choice_elements
        # Absolute references under these URLs are local (``https://host/fhir/Patient/1``).
        self.base_urls = tuple(u.rstrip("/") for u in base_urls)
        self._fast_path = fast_path
        # Insertion order matters: a later parameter with the same code on a type wins.
        self._params: dict[str, SearchParam] = {}
        self._by_type: dict[str, dict[str, SearchParam]] = {}
        self._plans: dict[str, tuple[_Plan, ...]] = {}
        self._lock = threading.Lock()

    # ---- loading ---------------------------------------------------------------------------

    @classmethod
    def load_default(cls, *, base_urls: tuple[str, ...] = ()) -> SearchParameterRegistry:
        """The R4 parameters plus those of the French guides shipped in ``data/``."""
        data_dir = resources.files(__package__).joinpath("data")
        bundle = json.loads(
            gzip.decompress(data_dir.joinpath("search-parameters-r4.json.gz").read_bytes())
        )
        registry = cls(
            frozenset(bundle["resourceTypes"]),
            base_urls=base_urls,
            choice_elements=frozenset(bundle["choiceElements"]),
        )
        for sp in bundle["searchParameters"]:
            registry._put(SearchParam.from_resource(sp))
        french = sorted(
            (f for f in data_dir.joinpath(_FRENCH_FOLDER).iterdir() if f.name.endswith(".json")),
            key=lambda f: f.name,
        )
        for entry in french:
            registry._put(SearchParam.from_resource(json.loads(entry.read_text("utf-8"))))
        return registry

    def load_custom(self, tx: Transaction) -> int:
        """Register the active SearchParameter resources stored in the database; how many."""
        from sqlalchemy import select

        from parcours.store.schema import resource

        rows = tx.conn.execute(
            select(resource.c.content).where(
                resource.c.type == "SearchParameter", resource.c.deleted.is_(False)
            )
        )
        count = 0
        for (content,) in rows:
            if content and content.get("status") == "active":
                try:
                    self.add(content)
                except InvalidResource:
                    continue  # stored before a rule got stricter: skip rather than not start
                count += 1
        return count

    # ---- changes ---------------------------------------------------------------------------

    def add(self, searchparameter: Mapping[str, Any]) -> SearchParam:
        """Register a custom SearchParameter resource (replaces one with the same url)."""
        param = SearchParam.from_resource(searchparameter, custom=True)
        for base in param.base:
            if base not in self._resource_types and base not in _ABSTRACT_BASES:
                raise InvalidResource(f"SearchParameter.base {base!r} is not a resource type")
        if param.expression is not None:
            for part in split_union(param.expression):
                try:
                    check_expression(part, param.base[0])
                except Exception as exc:  # fhirpathpy raises its own parser errors
                    raise InvalidResource(
                        f"SearchParameter.expression {part!r} is not valid FHIRPath: {exc}"
                    ) from exc
        with self._lock:
            self._params.pop(param.url, None)
            self._put(param)
        return param

    def remove(self, url: str) -> SearchParam | None:
        with self._lock:
            param = self._params.pop(url, None)
            self._by_type.clear()
            self._plans.clear()
        return param

    def _put(self, param: SearchParam) -> None:
        self._params[param.url] = param
        self._by_type.clear()
        self._plans.clear()

    # ---- queries ---------------------------------------------------------------------------

    def resource_types(self) -> frozenset[str]:
        return self._resource_types

    def is_resource_type(self, name: str) -> bool:
        return name in self._resource_types

    def for_type(self, resource_type: str) -> Mapping[str, SearchParam]:
        cached = self._by_type.get(resource_type)
        if cached is not None:
            return cached
        params: dict[str, SearchParam] = {}
        for param in list(self._params.values()):
            if resource_type in param.base or _ABSTRACT_BASES.intersection(param.base):
                params[param.code] = param
        self._by_type[resource_type] = params
        return params

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self.for_type(resource_type).get(code)

    def by_url(self, url: str) -> SearchParam | None:
        return self._params.get(url)

    def parse_reference(self, ref: str) -> tuple[str | None, str | None, str | None] | None:
        return parse_reference(ref, self._resource_types, self.base_urls)

    # ---- indexing --------------------------------------------------------------------------

    def _plan(self, resource_type: str) -> tuple[_Plan, ...]:
        plan = self._plans.get(resource_type)
        if plan is None:
            plan = tuple(
                p
                for p in (
                    self.plan_param(resource_type, param)
                    for param in self.for_type(resource_type).values()
                )
                if p is not None
            )
            self._plans[resource_type] = plan
        return plan

    def plan_param(self, resource_type: str, param: SearchParam) -> _Plan | None:
        """The compiled extractors of one parameter for one type; None if never indexed."""
        if param.type not in INDEXED_TYPES or not param.expression:
            return None
        if param.code in RESOURCE_COLUMNS:
            return None
        extractors = []
        for part in split_union(param.expression):
            head = _head_name(part)
            if head[:1].isupper() and head not in (resource_type, *_ABSTRACT_BASES):
                continue  # an operand for another base type
            compiled = compile_expression(
                part, resource_type, fast=self._fast_path, choices=self._choices
            )
            extractors.append((part, compiled))
        return _Plan(param, tuple(extractors)) if extractors else None

    def index(self, res: Mapping[str, Any]) -> dict[str, list[Row]]:
        """Every searchable value of ``res``, by index table kind (the Store's indexer)."""
        resource_type = res.get("resourceType")
        if not isinstance(resource_type, str):
            return {}
        return self.index_plans(dict(res), self._plan(resource_type))

    def index_plans(self, res: dict[str, Any], plans: tuple[_Plan, ...]) -> dict[str, list[Row]]:
        out: dict[str, list[Row]] = {}
        refs = self.parse_reference
        memo: dict[str, list[Node]] = {}
        for plan in plans:
            param = plan.param
            kind = param.type
            maker = ROW_MAKERS[kind]
            seen: set[tuple[Any, ...]] = set()
            rows = out.setdefault(kind, [])
            token_rows = out.setdefault("token", []) if kind in ("reference", "token") else None
            for part, extractor in plan.extractors:
                nodes = memo.get(part)
                if nodes is None:
                    nodes = memo[part] = extractor(res)
                for node in nodes:
                    for row in maker(node, refs):
                        key = (kind, *row.values())
                        if key not in seen:
                            seen.add(key)
                            row["param"] = param.code
                            rows.append(row)
                    if token_rows is None:
                        continue
                    extra_rows = (
                        reference_identifier_rows(node)
                        if kind == "reference"
                        else identifier_type_rows(node)
                    )
                    suffix = ":identifier" if kind == "reference" else ":of-type"
                    for row in extra_rows:
                        key = (suffix, *row.values())
                        if key not in seen:
                            seen.add(key)
                            row["param"] = param.code + suffix
                            token_rows.append(row)
        return {kind: rows for kind, rows in out.items() if rows}


def _head_name(part: str) -> str:
    text = part.lstrip("( ")
    end = 0
    while end < len(text) and (text[end].isalnum() or text[end] == "_"):
        end += 1
    return text[:end]
