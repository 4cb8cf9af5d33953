"""The identity hook sees HL7 writes too: one rule set whatever the entry point.

A REST-created Patient and the same person admitted through an HL7 A28 (another IPP, no INS)
end up as two records linked in the review queue, not silently merged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from parcours.config import Settings
from parcours.hl7v2 import Hl7Settings
from parcours.hl7v2.receiver import Receiver
from parcours.identity import CandidateStatus, list_candidates
from parcours.platform import Platform, build_platform
from parcours.store.schema_version import ensure_schema

from .conftest import make_patient

# PAM FR A28 (create a person) for MARTIN Léa, born 1985-07-01 in Dijon, IPP 700123, no INS.
A28 = (
    "\r".join(
        [
            "MSH|^~\\&|GAM|CH-TEST|PARCOURS|REGION|20250301140000||ADT^A28^ADT_A05|ctl-1|P|"
            "2.5^FRA^2.11|||||FRA|UNICODE UTF-8",
            "EVN||20250301140000",
            "PID|1||700123^^^CH-TEST&1.2.250.1.999.1.1&ISO^PI||MARTIN^LEA^LEA^^^^L||19850701|F|||"
            "12 RUE DES LILAS^^DIJON^^21000^FRA^H~^^^^^FRA^BDL^^21231" + "|" * 21 + "PROV",
            "PV1|1|N",
        ]
    )
    + "\r"
)


@pytest.fixture
def platform(database_url: str) -> Iterator[Platform]:
    platform = build_platform(Settings(database_url=database_url))
    ensure_schema(platform.store.engine)
    try:
        yield platform
    finally:
        platform.close()


def test_an_hl7_admission_is_matched_against_a_rest_patient(platform: Platform) -> None:
    platform.store.update(
        make_patient(
            patient_id="rest-1", family="MARTIN", given="LEA", given_list=None,
            birth_date="1985-07-01", birthplace="21231", ins=None, status="PROV",
        )
    )  # fmt: skip
    receiver = Receiver(platform.store, Hl7Settings(allow_test_ins=True))
    acks = receiver.handle(A28.encode("utf-8"))
    assert b"MSA|AA" in acks[0]
    with platform.store.begin(readonly=True) as tx:
        pairs = list_candidates(tx, statuses=tuple(CandidateStatus))
    assert len(pairs) == 1
    assert "rest-1" in (pairs[0].patient_a, pairs[0].patient_b)
    assert pairs[0].status in (CandidateStatus.LINKED, CandidateStatus.OPEN)
