"""The pool process only spares the writer the validations that would change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parcours.config import Settings
from parcours.demo.prevalidation import HEAD_START, prevalidated
from parcours.errors import InvalidResource
from parcours.platform import build_platform
from parcours.store.bulk import first_version
from parcours.store.clock import now_ms

Resource = dict[str, Any]

VALID: Resource = {"resourceType": "Organization", "id": "valid", "name": "Maison de santé"}
# The validator drops the empty string and stores the rest: the writer must do it itself.
REWRITTEN: Resource = {
    "resourceType": "Organization",
    "id": "rewritten",
    "name": "A",
    "alias": [""],
}
REFUSED: Resource = {"resourceType": "Patient", "id": "refused", "birthDate": "le 3 mai"}


def test_the_writer_validates_what_the_pool_did_not_pass_unchanged(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'unused.db'}")
    platform = build_platform(settings)
    seen: list[str] = []

    def store_validator(content: Resource) -> None:
        seen.append(str(content["id"]))
        platform.store.validator(content)

    head = [[{**VALID, "id": f"head-{i}"}] for i in range(HEAD_START)]
    batches = [*head, [VALID, REWRITTEN, REFUSED]]
    try:
        with prevalidated(settings, batches, store_validator) as validator_for:
            for index in range(HEAD_START):
                validate = validator_for(index)
                validate(first_version(batches[index][0], now_ms()))
            validate = validator_for(HEAD_START)
            validate(first_version(VALID, now_ms()))
            rewritten = first_version(REWRITTEN, now_ms())
            validate(rewritten)
            with pytest.raises(InvalidResource):
                validate(first_version(REFUSED, now_ms()))
    finally:
        platform.close()
    # The head batches while the pool starts, then only what the pool could not vouch for.
    assert seen == [*(f"head-{i}" for i in range(HEAD_START)), "rewritten", "refused"]
    assert "alias" not in rewritten
