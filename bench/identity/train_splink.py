"""Train the batch-audit Splink model once and write it as package data.

    .venv/bin/python bench/identity/train_splink.py --persons 20000 --seed 7

Settings (comparisons, blocking) are written here; u comes from random sampling, m from EM
over two blocking passes, on the synthetic set of ``generate.py`` (stored + incoming records
in one table, deduplicated as the audit does). The result, ``src/parcours/identity/
splink_model.json``, is versioned and loaded by ``parcours identity audit``, never re-trained
at start-up. Re-estimate on referent-labelled pairs before production (docs/identity.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "identity"))

from generate import generate  # noqa: E402

from parcours.identity.audit import AUDIT_MODEL, audit_rows, score_pairs  # noqa: E402


def settings() -> object:
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.ExactMatch("ins"),
            cl.JaroWinklerAtThresholds("birth_name", [0.95, 0.88]),
            cl.JaroWinklerAtThresholds("first_given_name", [0.95, 0.88]),
            cl.DateOfBirthComparison(
                "birth_date",
                input_is_string=True,
                datetime_metrics=["month", "year"],
                datetime_thresholds=[1, 1],
            ),
            cl.ExactMatch("sex"),
            cl.ExactMatch("birthplace"),
        ],
        # The online blocking keys, in SQL: same INS; date + a phonetic key; name + first
        # name + year; name + day/month (year typo). Tight enough for 1 M on one machine.
        blocking_rules_to_generate_predictions=[
            block_on("ins"),
            block_on("birth_date", "name_sx"),
            block_on("birth_date", "first_sx"),
            block_on("name_sx", "first_sx", "birth_year"),
            block_on("name_sx", "birth_md"),
        ],
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=[],
    )


def main() -> None:
    import pyarrow as pa
    from splink import DuckDBAPI, Linker, block_on

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=AUDIT_MODEL)
    args = parser.parse_args()
    logging.getLogger("splink").setLevel(logging.WARNING)
    data = generate(args.persons, args.seed)
    rows = audit_rows([*data.store, *data.incoming])
    from parcours.identity.audit import _arrow_schema

    table = pa.Table.from_pylist(rows, schema=_arrow_schema(pa))
    api = DuckDBAPI()
    linker = Linker(api.register(table, table_name="train_input"), settings())
    linker.training.estimate_probability_two_random_records_match([block_on("ins")], recall=0.35)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=args.seed)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("birth_date"), estimate_without_term_frequencies=True
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("name_sx", "first_sx"), estimate_without_term_frequencies=True
    )
    model = linker.misc.save_model_to_json(overwrite=True)
    args.out.write_text(json.dumps(model, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {args.out}")
    # Quick check on the training data (the real evaluation is bench/identity/audit_bench.py).
    truth = data.truth
    pairs = score_pairs(rows, threshold=0.5, model=args.out)
    correct = sum(1 for p in pairs if truth[p.a] == truth[p.b])
    print(f"pairs >= 0.5: {len(pairs)}, of which true: {correct}")


if __name__ == "__main__":
    main()
