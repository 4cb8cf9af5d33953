"""FEBRL4 (5,000 originals x 5,000 corrupted copies) next to Splink and recordlinkage ECM.

FEBRL has English names, no INS, no sex and no birthplace, so only part of the identity
model applies. Mapping: surname -> birth name, given_name -> first given name,
date_of_birth -> birth date; postcode -> birthplace slot (a location trait, compared at
exact / same first two digits, as the COG comparison does). The INS tier never fires.

Methods measured in one run, each on its own candidate pairs, against all 5,000 true links:

* ``parcours_shipped``: our comparisons with the French synthetic model (transfer, no refit);
* ``parcours_refit``: our comparisons, m/u and thresholds re-estimated on the even-numbered
  half of FEBRL's records (labels), measured on the odd half;
* ``splink``: a plain Splink model (DuckDB): names, DOB, postcode, suburb, address;
  u by random sampling, m by EM, match probability >= 0.5;
* ``recordlinkage_ecm``: recordlinkage's unsupervised ECM on binary features.

Run through ``evaluate.py --febrl`` or alone:

    .venv/bin/python bench/identity/febrl.py
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from parcours.identity import (
    DEFAULT_COMPARISONS,
    IdentityRecord,
    Matcher,
    MatchGrade,
    MatchModel,
    blocking_keys,
    normalize_given_names,
    normalize_name,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate import choose_thresholds, estimate

POSITIVE = (MatchGrade.CERTAIN, MatchGrade.PROBABLE)
AS_OF = date(2026, 11, 1)


def _date(raw: Any) -> date | None:
    try:
        text = str(raw)
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except (TypeError, ValueError):
        return None


def _record(rid: str, row: Any) -> IdentityRecord:
    def text(value: Any) -> str | None:
        return str(value) if isinstance(value, str) and value.strip() else None

    return IdentityRecord(
        birth_name=normalize_name(text(row.surname)) if text(row.surname) else None,
        first_given_name=normalize_given_names(text(row.given_name))
        if text(row.given_name)
        else None,
        given_names=None,
        birth_date=_date(row.date_of_birth),
        birthplace=text(row.postcode),
        record_id=rid,
    )


def _metrics(predicted: set[tuple[str, str]], truth: set[tuple[str, str]]) -> dict[str, Any]:
    tp = len(predicted & truth)
    return {
        "predicted_links": len(predicted),
        "true_links": len(truth),
        "precision": round(tp / len(predicted), 4) if predicted else None,
        "recall": round(tp / len(truth), 4),
    }


def run_parcours(a: Any, b: Any, truth: set[tuple[str, str]]) -> dict[str, Any]:
    from evaluate import Pair

    left = {rid: _record(rid, row) for rid, row in a.iterrows()}
    right = {rid: _record(rid, row) for rid, row in b.iterrows()}
    index: dict[str, list[str]] = {}
    for rid, record in left.items():
        for key in blocking_keys(record):
            index.setdefault(key, []).append(rid)
    # FEBRL ids end in the record number: even numbers train, odd numbers test.
    pairs: list[Pair] = []
    for rid, record in right.items():
        candidates = {c for key in blocking_keys(record) for c in index.get(key, ())}
        train = int(rid.split("-")[1]) % 2 == 0
        for cid in candidates:
            stored = left[cid]
            levels = {c.name: c.level(record, stored) for c in DEFAULT_COMPARISONS}
            pairs.append(Pair(record, stored, (cid, rid) in truth, train, levels))
    test_truth = {t for t in truth if int(t[1].split("-")[1]) % 2 == 1}

    def predicted(matcher: Matcher) -> set[tuple[str, str]]:
        return {
            (p.stored.record_id or "", p.incoming.record_id or "")
            for p in pairs
            if not p.train and matcher.match(p.incoming, p.stored, as_of=AS_OF).grade in POSITIVE
        }

    shipped = Matcher()
    prior, levels = estimate([p for p in pairs if p.train])
    provisional = Matcher(MatchModel(prior, levels, shipped.model.thresholds))
    thresholds = choose_thresholds(
        [(provisional.score(p.levels)[1], p.match) for p in pairs if p.train]
    )
    refit = Matcher(MatchModel(prior, levels, thresholds))
    blocked = {(p.stored.record_id, p.incoming.record_id) for p in pairs if p.match}
    return {
        "candidate_pairs": len(pairs),
        "blocking_recall": round(len(blocked) / len(truth), 4),
        "parcours_shipped": _metrics(predicted(shipped), test_truth),
        "parcours_refit": _metrics(predicted(refit), test_truth),
        "evaluated_on": "odd-numbered FEBRL records (half of the true links)",
    }


def run_splink(
    a: Any, b: Any, truth: set[tuple[str, str]], *, same_fields: bool = False
) -> dict[str, Any]:
    """Splink with all useful FEBRL fields, or (``same_fields``) only those ours can use."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.WARNING)
    left, right = a.reset_index(), b.reset_index()
    for frame in (left, right):
        frame["unique_id"] = frame["rec_id"]
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison(
                "date_of_birth", input_is_string=True, datetime_format="%Y%m%d"
            ),
            cl.ExactMatch("postcode"),
            *(
                []
                if same_fields
                else [cl.ExactMatch("suburb"), cl.LevenshteinAtThresholds("address_1", [1, 3])]
            ),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name"),
            block_on("surname"),
            block_on("date_of_birth"),
            block_on("postcode"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    linker = Linker(
        [db_api.register(left, table_name="febrl_a"), db_api.register(right, table_name="febrl_b")],
        settings,
        log_level=logging.WARNING,
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("surname"))
    frame = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()  # type: ignore[no-untyped-call]
    # Orient every pair as (original, duplicate): FEBRL4 ids say which file a record is from.
    predicted = {
        (x, y) if "-org" in x else (y, x)
        for x, y in zip(frame["unique_id_l"], frame["unique_id_r"], strict=True)
    }
    return {
        **_metrics(predicted, truth),
        "threshold": "match_probability >= 0.5",
        "fields": "names, DOB, postcode"
        if same_fields
        else "names, DOB, postcode, suburb, address",
    }


def run_ecm(a: Any, b: Any, truth: set[tuple[str, str]]) -> dict[str, Any]:
    import recordlinkage

    indexer = recordlinkage.Index()
    for column in ("given_name", "surname", "date_of_birth", "postcode"):
        indexer.block(column)
    candidates = indexer.index(a, b)
    compare = recordlinkage.Compare()
    compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given")
    compare.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
    compare.exact("date_of_birth", "date_of_birth", label="dob")
    compare.exact("suburb", "suburb", label="suburb")
    compare.exact("state", "state", label="state")
    compare.string("address_1", "address_1", threshold=0.85, label="address")
    compare.exact("postcode", "postcode", label="postcode")
    features = compare.compute(candidates, a, b)
    classifier = recordlinkage.ECMClassifier(binarize=0.5)
    links = classifier.fit_predict(features)
    predicted = {(str(x), str(y)) for x, y in links}
    return {"candidate_pairs": len(candidates), **_metrics(predicted, truth)}


def run_febrl() -> dict[str, Any]:
    from recordlinkage.datasets import load_febrl4

    a, b, links = load_febrl4(return_links=True)
    truth = {(str(x), str(y)) for x, y in links}
    out: dict[str, Any] = {
        "dataset": "FEBRL4 via recordlinkage.datasets.load_febrl4 (5000 x 5000, 5000 links)",
        "mapping": "surname->birth name, given_name->first given name, date_of_birth->birth "
        "date, postcode->birthplace slot; no INS, no sex",
    }

    def splink_same_fields(a: Any, b: Any, truth: set[tuple[str, str]]) -> dict[str, Any]:
        return run_splink(a, b, truth, same_fields=True)

    runs = (
        ("parcours", run_parcours),
        ("splink", run_splink),
        ("splink_same_fields", splink_same_fields),
        ("ecm", run_ecm),
    )
    for name, run in runs:
        started = time.perf_counter()
        try:
            out[name] = run(a, b, truth)
        except Exception as exc:  # a failing third-party run must not hide the others
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        out[name]["seconds"] = round(time.perf_counter() - started, 1)
    return out


if __name__ == "__main__":
    print(json.dumps(run_febrl(), indent=2))
