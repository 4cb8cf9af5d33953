"""Property: search results equal a brute-force filter of the stored resources.

The oracle below is a plain-Python reading of the FHIR R4 search rules (string prefix with case
and accents folded, token system|code forms, date and number ranges with prefixes, references,
chains and _has), written independently of the SQL builder. Hypothesis generates Patients and
Observations plus queries over them; each example tags its resources with a fresh ``_tag`` so
one database serves the whole test function without cleaning up between examples.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from parcours.store import Store
from parcours.store.search import driving

from .helpers import ListedPatients, search

Res = dict[str, Any]
Oracle = Callable[[Res, dict[str, Res]], bool]
Query = tuple[str, str, Oracle]

INS, IPP = "urn:oid:1.2.250.1.213.1.4.8", "urn:oid:1.2.250.1.71.4.2.7"
LOINC, SNOMED, UCUM = "http://loinc.org", "http://snomed.info/sct", "http://unitsofmeasure.org"
TAG_SYSTEM = "urn:parcours:test-run"

# ---- the oracle: FHIR semantics in plain Python ---------------------------------------------


def fold(text: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn"
    ).casefold()


_DATE_RE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2}))?)?)?$"
)


def date_bounds(text: str) -> tuple[int, int]:
    """[first ms, last ms] covered by a FHIR date / dateTime."""
    m = _DATE_RE.match(text)
    assert m, text
    y, mo, d, hh, mi, ss, tz = m.groups()
    if mo is None:
        start, end = datetime(int(y), 1, 1, tzinfo=UTC), datetime(int(y) + 1, 1, 1, tzinfo=UTC)
    elif d is None:
        start = datetime(int(y), int(mo), 1, tzinfo=UTC)
        end = datetime(int(y) + int(mo) // 12, int(mo) % 12 + 1, 1, tzinfo=UTC)
    elif hh is None:
        start = datetime(int(y), int(mo), int(d), tzinfo=UTC)
        end = start + timedelta(days=1)
    else:
        offset = timedelta(0)
        if tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            offset = sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        start = datetime(
            int(y), int(mo), int(d), int(hh), int(mi), int(ss or 0), tzinfo=timezone(offset)
        )
        end = start + (timedelta(seconds=1) if ss else timedelta(minutes=1))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return (start - epoch) // timedelta(milliseconds=1), (end - epoch) // timedelta(
        milliseconds=1
    ) - 1


def date_matches(prefix: str, search_text: str, stored: tuple[int, int]) -> bool:
    sl, sh = date_bounds(search_text)
    lo, hi = stored
    eq = sl <= lo and hi <= sh
    return {
        "eq": eq,
        "ne": not eq,
        "gt": hi > sh,
        "lt": lo < sl,
        "ge": hi > sh or eq,
        "le": lo < sl or eq,
        "sa": lo > sh,
        "eb": hi < sl,
    }[prefix]


def number_matches(prefix: str, search_text: str, stored: Decimal) -> bool:
    q = Decimal(search_text)
    half = Decimal(1).scaleb(q.as_tuple().exponent) / 2  # type: ignore[arg-type]
    eq = q - half <= stored < q + half
    return {
        "eq": eq,
        "ne": not eq,
        "gt": stored > q,
        "sa": stored > q,
        "lt": stored < q,
        "eb": stored < q,
        "ge": stored >= q,
        "le": stored <= q,
        "ap": abs(stored - q) <= abs(q) / 10,
    }[prefix]


def name_parts(p: Res, which: str) -> list[str]:
    out: list[str] = []
    for name in p.get("name", []):
        if which in ("family", "name") and "family" in name:
            out.append(name["family"])
        if which in ("given", "name"):
            out += name.get("given", [])
    return out


def string_matches(modifier: str, query: str, values: list[str]) -> bool:
    if modifier == ":exact":
        return query in values
    if modifier == ":contains":
        return any(fold(query) in fold(v) for v in values)
    return any(fold(v).startswith(fold(query)) for v in values)


def token_matches(query: str, pairs: list[tuple[str | None, str]]) -> bool:
    if "|" not in query:
        return any(code == query for _, code in pairs)
    system, code = query.split("|")
    if not system:
        return any(s is None and c == code for s, c in pairs)
    if not code:
        return any(s == system for s, _ in pairs)
    return (system, code) in pairs


def identifiers(p: Res) -> list[tuple[str | None, str]]:
    return [(i.get("system"), i["value"]) for i in p.get("identifier", [])]


def obs_codes(o: Res) -> list[tuple[str | None, str]]:
    return [(c.get("system"), c["code"]) for c in o["code"]["coding"]]


def obs_dates(o: Res) -> list[tuple[int, int]]:
    if "effectiveDateTime" in o:
        return [date_bounds(o["effectiveDateTime"])]
    if "effectivePeriod" in o:
        period = o["effectivePeriod"]
        low = date_bounds(period["start"])[0] if "start" in period else -(10**18)
        high = date_bounds(period["end"])[1] if "end" in period else 10**18
        return [(low, high)]
    return []


def subject_id(o: Res) -> str | None:
    ref = o.get("subject", {}).get("reference")
    return ref.split("/")[1] if ref else None


# ---- generated data -----------------------------------------------------------------------------

FAMILIES = ["Dupont", "dupond", "Dupont-Lefèvre", "Lefèvre", "LEFEVRE", "Martin", "Mártin", "Ng"]
GIVENS = ["Élodie", "elodie", "Éric", "Jean", "Jean-Marc", "Zoé"]
STRINGS = [
    "d",
    "du",
    "DUP",
    "dupont",
    "lef",
    "lefè",
    "LEFEVRE",
    "mar",
    "mart",
    "ng",
    "e",
    "el",
    "éric",
    "jean-",
    "Dupont",
    "Lefèvre",
    "pon",
    "fev",
    "zo",
    "x",
]
DATES = ["1950", "1951", "1951-06", "1951-06-15", "1951-06-16", "1951-12-31", "1952-01"]
OBS_DATES = [
    "2024-03-01",
    "2024-03-01T10:00:00Z",
    "2024-03-01T23:30:00+02:00",
    "2024-03",
    "2024-02-29T22:00:00Z",
    "2024-03-02T00:00:00+01:00",
]
SEARCH_DATES = [
    "2024",
    "2024-03",
    "2024-03-01",
    "2024-03-02",
    "2024-02-29",
    "2024-03-01T10:00:00Z",
    "2024-03-01T22:00:00+01:00",
    "1951",
    "1951-06",
    "1951-06-15",
    "1952",
]
DECIMALS = ["4", "4.2", "5.4", "5.40", "5.45", "100", "0.5", "-1.5", "99.5"]
PREFIXES = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"]


@st.composite
def patients(draw: st.DrawFn) -> Res:
    res: Res = {"resourceType": "Patient", "id": "p" + uuid.uuid4().hex[:10]}
    names = draw(
        st.lists(
            st.tuples(
                st.none() | st.sampled_from(FAMILIES), st.lists(st.sampled_from(GIVENS), max_size=2)
            ),
            max_size=2,
        )
    )
    if names:
        res["name"] = [
            {**({"family": f} if f else {}), **({"given": g} if g else {})} for f, g in names
        ]
    birth = draw(st.none() | st.sampled_from(DATES))
    if birth:
        res["birthDate"] = birth
    gender = draw(st.none() | st.sampled_from(["male", "female", "other"]))
    if gender:
        res["gender"] = gender
    ids = draw(
        st.lists(
            st.tuples(st.sampled_from([INS, IPP, None]), st.sampled_from(["1", "2", "12"])),
            max_size=2,
        )
    )
    if ids:
        res["identifier"] = [{**({"system": s} if s else {}), "value": v} for s, v in ids]
    return res


@st.composite
def observations(draw: st.DrawFn, patient_ids: list[str]) -> Res:
    codes = draw(
        st.lists(
            st.tuples(st.sampled_from([LOINC, SNOMED, None]), st.sampled_from(["a", "b", "ab"])),
            min_size=1,
            max_size=2,
        )
    )
    res: Res = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{**({"system": s} if s else {}), "code": c} for s, c in codes]},
    }
    if draw(st.booleans()) and patient_ids:
        res["subject"] = {"reference": "Patient/" + draw(st.sampled_from(patient_ids))}
    value = draw(st.none() | st.sampled_from(DECIMALS))
    if value is not None:
        unit = draw(st.sampled_from(["mg", "mmol/L"]))
        res["valueQuantity"] = {"value": float(value), "unit": unit, "system": UCUM, "code": unit}
    when = draw(st.sampled_from(["none", "dateTime", "period"]))
    if when == "dateTime":
        res["effectiveDateTime"] = draw(st.sampled_from(OBS_DATES))
    elif when == "period":
        period = {}
        if draw(st.booleans()):
            period["start"] = draw(st.sampled_from(OBS_DATES[:3]))
        if draw(st.booleans()):
            period["end"] = "2024-03-05"
        res["effectivePeriod"] = period or {"start": "2024-03-01"}
    return res


# ---- generated queries ------------------------------------------------------------------------


@st.composite
def patient_queries(draw: st.DrawFn) -> Query:
    kind = draw(st.sampled_from(["string", "gender", "identifier", "birthdate", "missing", "has"]))
    if kind == "string":
        which = draw(st.sampled_from(["family", "given", "name"]))
        modifier = draw(st.sampled_from(["", ":exact", ":contains"]))
        values = draw(st.lists(st.sampled_from(STRINGS), min_size=1, max_size=2))
        return (
            which + modifier,
            ",".join(values),
            lambda p, _: any(string_matches(modifier, v, name_parts(p, which)) for v in values),
        )
    if kind == "gender":
        modifier = draw(st.sampled_from(["", ":not"]))
        values = draw(
            st.lists(
                st.sampled_from(["male", "female", "other", "unknown"]), min_size=1, max_size=2
            )
        )
        if modifier:
            return "gender:not", ",".join(values), lambda p, _: p.get("gender") not in values
        return "gender", ",".join(values), lambda p, _: p.get("gender") in values
    if kind == "identifier":
        values = draw(
            st.lists(
                st.sampled_from(
                    [f"{INS}|1", f"{IPP}|12", "|1", "|2", f"{INS}|", "1", "12", f"{IPP}|1"]
                ),
                min_size=1,
                max_size=2,
            )
        )
        return (
            "identifier",
            ",".join(values),
            lambda p, _: any(token_matches(v, identifiers(p)) for v in values),
        )
    if kind == "birthdate":
        prefix = draw(st.sampled_from(PREFIXES))
        value = draw(st.sampled_from([*DATES, "1951-06-15T12:00:00Z"]))
        return (
            "birthdate",
            prefix + value,
            lambda p, _: (
                "birthDate" in p and date_matches(prefix, value, date_bounds(p["birthDate"]))
            ),
        )
    if kind == "missing":
        which = draw(st.sampled_from(["family", "birthdate", "gender", "identifier"]))
        missing = draw(st.booleans())

        def present(p: Res) -> bool:
            if which == "family":
                return bool(name_parts(p, "family"))
            return {"birthdate": "birthDate", "gender": "gender", "identifier": "identifier"}[
                which
            ] in p

        return which + ":missing", str(missing).lower(), lambda p, _: present(p) != missing
    code = draw(st.sampled_from(["a", "b", f"{LOINC}|a", f"{SNOMED}|ab", "|b"]))

    def has(p: Res, others: dict[str, Res]) -> bool:
        return any(
            o["resourceType"] == "Observation"
            and subject_id(o) == p["id"]
            and token_matches(code, obs_codes(o))
            for o in others.values()
        )

    return "_has:Observation:patient:code", code, has


@st.composite
def observation_queries(draw: st.DrawFn) -> Query:
    kind = draw(st.sampled_from(["code", "quantity", "date", "subject", "chain"]))
    if kind == "code":
        modifier = draw(st.sampled_from(["", ":not"]))
        values = draw(
            st.lists(
                st.sampled_from(["a", "ab", f"{LOINC}|a", f"{SNOMED}|", "|b", f"{LOINC}|b"]),
                min_size=1,
                max_size=2,
            )
        )

        def code_oracle(o: Res, _: dict[str, Res]) -> bool:
            hit = any(token_matches(v, obs_codes(o)) for v in values)
            return not hit if modifier else hit

        return "code" + modifier, ",".join(values), code_oracle
    if kind == "quantity":
        prefix = draw(st.sampled_from([*PREFIXES, "ap"]))
        value = draw(st.sampled_from(DECIMALS + ["5", "5.4", "1e2"][:2]))
        unit = draw(st.sampled_from(["", "|" + UCUM + "|mg", "||mmol/L"]))

        def quantity_oracle(o: Res, _: dict[str, Res]) -> bool:
            q = o.get("valueQuantity")
            if q is None or not number_matches(prefix, value, Decimal(repr(q["value"]))):
                return False
            return not unit or unit.split("|")[2] == q["code"]

        return "value-quantity", prefix + value + unit, quantity_oracle
    if kind == "date":
        prefix = draw(st.sampled_from(PREFIXES))
        value = draw(st.sampled_from(SEARCH_DATES))
        return (
            "date",
            prefix + value,
            lambda o, _: any(date_matches(prefix, value, d) for d in obs_dates(o)),
        )
    if kind == "subject":
        return "subject:missing", "true", lambda o, _: "subject" not in o
    which = draw(st.sampled_from(["family", "gender"]))
    value = draw(st.sampled_from(STRINGS if which == "family" else ["male", "female"]))

    def chain(o: Res, others: dict[str, Res]) -> bool:
        target = others.get(subject_id(o) or "")
        if target is None:
            return False
        if which == "family":
            return string_matches("", value, name_parts(target, "family"))
        return target.get("gender") == value

    return f"subject:Patient.{which}", value, chain


def _store_all(store: Store, resources: list[Res], tag: str) -> dict[str, Res]:
    stored: dict[str, Res] = {}
    with store.begin() as tx:
        for res in resources:
            res = {**res, "meta": {"tag": [{"system": TAG_SYSTEM, "code": tag}]}}
            saved = tx.update(res).resource if "id" in res else tx.create(res)
            stored[saved["id"]] = saved
    if store.dialect.is_postgres:
        # Fresh tables have no statistics and PostgreSQL then nests loops over every row of
        # the growing test data; autovacuum does this in production (and after bulk imports).
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE resource, idx_token, idx_string, idx_date, idx_quantity"))
            conn.execute(text("ANALYZE idx_reference"))
    return stored


def _check(
    store: Store,
    res_type: str,
    queries: list[Query],
    stored: dict[str, Res],
    tag: str,
    scope: ListedPatients | None = None,
) -> None:
    params = [(name, value) for name, value, _ in queries]
    params.append(("_tag", f"{TAG_SYSTEM}|{tag}"))
    params.append(("_count", "1000"))
    result = search(store, res_type, params, scope)
    got = {r["id"] for r in result.matches}
    expected = {
        rid
        for rid, res in stored.items()
        if res["resourceType"] == res_type
        and all(oracle(res, stored) for _, _, oracle in queries)
        and (scope is None or _patient_of(res) in scope.ids)
    }
    assert got == expected, params
    event("some match" if expected else "no match")
    if expected and len(expected) < sum(r["resourceType"] == res_type for r in stored.values()):
        event("some but not all match")
    assert result.total == len(expected)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_patient_search_matches_oracle(store: Store, data: st.DataObject) -> None:
    people = data.draw(st.lists(patients(), min_size=1, max_size=7))
    ids = [p["id"] for p in people]
    obs = data.draw(st.lists(observations(ids), max_size=6))
    tag = uuid.uuid4().hex
    stored = _store_all(store, [*people, *obs], tag)
    for _ in range(4):
        queries = data.draw(st.lists(patient_queries(), min_size=1, max_size=2))
        _check(store, "Patient", queries, stored, tag)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_observation_search_matches_oracle(store: Store, data: st.DataObject) -> None:
    people = data.draw(st.lists(patients(), min_size=1, max_size=4))
    ids = [p["id"] for p in people]
    obs = data.draw(st.lists(observations(ids), min_size=1, max_size=8))
    tag = uuid.uuid4().hex
    stored = _store_all(store, [*people, *obs], tag)
    for _ in range(4):
        queries = data.draw(st.lists(observation_queries(), min_size=1, max_size=2))
        _check(store, "Observation", queries, stored, tag)


def _patient_of(res: Res) -> str | None:
    return res["id"] if res["resourceType"] == "Patient" else subject_id(res)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_search_of_listed_patients_matches_oracle_from_either_side(
    store: Store, data: st.DataObject
) -> None:
    """A professional's search: only the rows of their patients, the same whether SQLite
    starts from the filters' index rows or from those patients' rows (``driving``)."""
    people = data.draw(st.lists(patients(), min_size=1, max_size=5))
    ids = [p["id"] for p in people]
    obs = data.draw(st.lists(observations(ids), min_size=1, max_size=8))
    tag = uuid.uuid4().hex
    stored = _store_all(store, [*people, *obs], tag)
    scope = ListedPatients(frozenset(data.draw(st.sets(st.sampled_from(ids)))))
    for _ in range(4):
        res_type = data.draw(st.sampled_from(["Patient", "Observation"]))
        drawn = patient_queries() if res_type == "Patient" else observation_queries()
        queries = data.draw(st.lists(drawn, min_size=1, max_size=2))
        from_patients = data.draw(st.booleans())
        event("from the patients" if from_patients else "from the filters")
        plan = mock.Mock(return_value=from_patients)
        with mock.patch.object(driving, "patients_first", plan):
            _check(store, res_type, queries, stored, tag, scope)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_number_search_matches_oracle(store: Store, data: st.DataObject) -> None:
    # RiskAssessment.probability is a number parameter (prediction.probability as decimal).
    tag = uuid.uuid4().hex
    assessments = []
    for _ in range(data.draw(st.integers(1, 6))):
        probabilities = data.draw(st.lists(st.sampled_from(DECIMALS), max_size=2))
        assessments.append(
            {
                "resourceType": "RiskAssessment",
                "status": "final",
                "subject": {"reference": "Patient/x"},
                "prediction": [{"probabilityDecimal": float(p)} for p in probabilities],
            }
        )
    stored = _store_all(store, assessments, tag)
    for _ in range(4):
        prefix = data.draw(st.sampled_from([*PREFIXES, "ap"]))
        values = data.draw(st.lists(st.sampled_from(DECIMALS), min_size=1, max_size=2))

        def oracle(
            r: Res, _: dict[str, Res], prefix: str = prefix, values: list[str] = values
        ) -> bool:
            return any(
                number_matches(prefix, v, Decimal(repr(p["probabilityDecimal"])))
                for p in r["prediction"]
                for v in values
            )

        query = ("probability", ",".join(prefix + v for v in values), oracle)
        _check(store, "RiskAssessment", [query], stored, tag)
