"""RNIV statuses, attributes and transitions; the FR Core identityReliability extension."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from parcours.identity import (
    Attribute,
    IdentityError,
    IdentityState,
    IllegalTransitionError,
    Status,
    StatusCoding,
    Trigger,
    apply,
    clear_attribute,
    exposable_identifiers,
    may_call_insi,
    read_reliability,
    set_attribute,
    write_reliability,
)
from parcours.identity.frcore import (
    CS_IDENTITY_STATUS_2_2,
    CS_V2_0445,
    IDENTITY_RELIABILITY_URL,
)

from .conftest import CorpusLoader, make_patient

AT = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
WHO = "Practitioner/ref-identitovigilance"


def go(state: IdentityState, trigger: Trigger, **kwargs: object) -> IdentityState:
    return apply(state, trigger, at=AT, who=WHO, why="test", **kwargs).state  # type: ignore[arg-type]


PROV, RECUP, VALI, QUAL = (IdentityState(status=s) for s in Status)


def test_status_criteria_and_exposure() -> None:
    assert [s.value for s in Status if s.may_expose_ins] == ["QUAL"]
    assert Status.RECUP.ins_retrieved and not Status.RECUP.document_checked
    assert Status.VALI.document_checked and not Status.VALI.ins_retrieved


def test_default_status_is_prov() -> None:
    assert IdentityState().status is Status.PROV


@pytest.mark.parametrize(
    ("start", "trigger", "extra", "end"),
    [
        (PROV, Trigger.DOCUMENT_CHECK, {"validation_mode": "CN"}, Status.VALI),
        (RECUP, Trigger.DOCUMENT_CHECK, {"validation_mode": "PA"}, Status.QUAL),
        (PROV, Trigger.INSI_RECOVERY, {}, Status.RECUP),
        (VALI, Trigger.INSI_RECOVERY, {}, Status.QUAL),
        (PROV, Trigger.INSI_WITH_DOCUMENT, {"validation_mode": "CS"}, Status.QUAL),
        (PROV, Trigger.CARTE_VITALE_APP, {}, Status.QUAL),
        (PROV, Trigger.CARTE_VITALE_APP, {"to": Status.RECUP}, Status.RECUP),  # ayant droit
        (QUAL, Trigger.INSI_VERIFICATION_FAILED, {}, Status.VALI),
        (QUAL, Trigger.INSI_VERIFICATION_FAILED, {"to": Status.PROV}, Status.PROV),
        (VALI, Trigger.INSI_INCONSISTENT, {}, Status.PROV),
        (QUAL, Trigger.DOCUMENT_DISCREPANCY, {}, Status.PROV),
        (RECUP, Trigger.DOCUMENT_DISCREPANCY, {}, Status.PROV),
        (QUAL, Trigger.SEX_CHANGE, {}, Status.PROV),
        (VALI, Trigger.FRAUD, {}, Status.PROV),
        (QUAL, Trigger.INS_WITHDRAWN, {}, Status.RECUP),
    ],
)
def test_legal_transitions(
    start: IdentityState, trigger: Trigger, extra: dict[str, object], end: Status
) -> None:
    assert go(start, trigger, **extra).status is end


@pytest.mark.parametrize(
    ("start", "trigger"),
    [
        (VALI, Trigger.DOCUMENT_CHECK),  # already checked
        (QUAL, Trigger.DOCUMENT_CHECK),
        (RECUP, Trigger.INSI_RECOVERY),  # already retrieved
        (QUAL, Trigger.INSI_RECOVERY),
        (VALI, Trigger.INSI_WITH_DOCUMENT),
        (PROV, Trigger.INSI_VERIFICATION_FAILED),  # nothing to verify
        (RECUP, Trigger.INSI_INCONSISTENT),
        (PROV, Trigger.DOCUMENT_DISCREPANCY),
        (RECUP, Trigger.INS_WITHDRAWN),
        (PROV, Trigger.INS_WITHDRAWN),
    ],
)
def test_illegal_transitions_raise(start: IdentityState, trigger: Trigger) -> None:
    with pytest.raises(IllegalTransitionError, match=f"{trigger.value} is not allowed") as info:
        go(start, trigger, validation_mode="CN")
    assert info.value.field == "identityReliability.identityStatus"


def test_target_outside_the_rnivs_choice_is_refused() -> None:
    with pytest.raises(IllegalTransitionError, match="leads to VALI or PROV, not RECUP"):
        go(QUAL, Trigger.INSI_VERIFICATION_FAILED, to=Status.RECUP)


def test_document_check_needs_the_document_type() -> None:
    with pytest.raises(IllegalTransitionError, match="EXI SI 10"):
        go(PROV, Trigger.DOCUMENT_CHECK)


@pytest.mark.parametrize("mode", ["PC", "CM", "CE", "CC"])
def test_low_trust_documents_do_not_validate(mode: str) -> None:
    with pytest.raises(IllegalTransitionError, match="not a high-trust"):
        go(PROV, Trigger.DOCUMENT_CHECK, validation_mode=mode)


def test_birth_certificate_validates_a_minor_only() -> None:
    with pytest.raises(IllegalTransitionError, match="not a high-trust"):
        go(PROV, Trigger.DOCUMENT_CHECK, validation_mode="LE")
    assert go(PROV, Trigger.DOCUMENT_CHECK, validation_mode="LE", subject_is_minor=True).status is (
        Status.VALI
    )


def test_transition_record_is_complete_and_keeps_the_mode() -> None:
    step = apply(
        PROV, Trigger.DOCUMENT_CHECK, at=AT, who=WHO, why="CNI presented", validation_mode="CN"
    )
    record = step.record
    assert (record.from_status, record.to_status) == (Status.PROV, Status.VALI)
    assert (record.at, record.who, record.why) == (AT, WHO, "CNI presented")
    assert record.trigger is Trigger.DOCUMENT_CHECK and record.validation_mode == "CN"
    assert step.state.validation_mode == "CN" and step.state.validated_on == AT.date()
    step = apply(step.state, Trigger.INSI_RECOVERY, at=AT, who=WHO, why="INSi 00")
    assert step.state.status is Status.QUAL
    assert step.record.collection_method == "INSI" and step.state.collected_on == AT.date()
    assert step.state.validation_mode == "CN"  # the document check still stands


def test_downgrade_invalidates_the_ins() -> None:
    qual = go(PROV, Trigger.INSI_WITH_DOCUMENT, validation_mode="CN")
    step = apply(qual, Trigger.DOCUMENT_DISCREPANCY, at=AT, who=WHO, why="mismatch")
    assert step.record.ins_invalidated
    assert step.state.collection_method is None and step.state.validation_mode is None
    step = apply(qual, Trigger.INSI_VERIFICATION_FAILED, at=AT, who=WHO, why="periodic")
    assert step.record.ins_invalidated and step.state.validation_mode == "CN"


def test_time_must_be_aware_and_author_named() -> None:
    with pytest.raises(IllegalTransitionError, match="timezone-aware"):
        apply(PROV, Trigger.INSI_RECOVERY, at=datetime(2026, 1, 1), who=WHO, why="x")
    with pytest.raises(IllegalTransitionError, match="author"):
        apply(PROV, Trigger.INSI_RECOVERY, at=AT, who=" ", why="x")


def test_fraud_sets_douteuse_and_forces_prov() -> None:
    step = apply(QUAL, Trigger.FRAUD, at=AT, who=WHO, why="carte Vitale fraud")
    assert step.state.status is Status.PROV
    assert step.state.attributes == {Attribute.DOUTEUSE}
    assert step.record.attributes_added == {Attribute.DOUTEUSE} and step.record.ins_invalidated


@pytest.mark.parametrize("attribute", [Attribute.DOUTEUSE, Attribute.FICTIVE])
def test_douteuse_or_fictive_force_prov_and_block_insi(attribute: Attribute) -> None:
    step = set_attribute(QUAL, attribute, at=AT, who=WHO, why="doubt")
    assert step.state.status is Status.PROV and step.record.ins_invalidated
    assert not may_call_insi(step.state)
    for trigger, extra in [
        (Trigger.DOCUMENT_CHECK, {"validation_mode": "CN"}),
        (Trigger.INSI_RECOVERY, {}),
        (Trigger.CARTE_VITALE_APP, {}),
    ]:
        with pytest.raises(IllegalTransitionError, match="EXI SI 09"):
            go(step.state, trigger, **extra)
    cleared = clear_attribute(step.state, attribute, at=AT, who=WHO, why="investigated").state
    assert may_call_insi(cleared) and cleared.status is Status.PROV


def test_douteuse_and_fictive_are_exclusive() -> None:
    doubtful = set_attribute(PROV, Attribute.DOUTEUSE, at=AT, who=WHO, why="x").state
    with pytest.raises(IllegalTransitionError, match="both fictive and douteuse"):
        set_attribute(doubtful, Attribute.FICTIVE, at=AT, who=WHO, why="x")
    with pytest.raises(IllegalTransitionError, match="both fictive and douteuse"):
        IdentityState(attributes=frozenset({Attribute.DOUTEUSE, Attribute.FICTIVE}))


def test_homonyme_is_allowed_with_every_status_and_survives_changes() -> None:
    for state in (PROV, RECUP, VALI, QUAL):
        assert set_attribute(state, Attribute.HOMONYME, at=AT, who=WHO, why="x").state.status is (
            state.status
        )
    homonym = set_attribute(PROV, Attribute.HOMONYME, at=AT, who=WHO, why="x").state
    assert Attribute.HOMONYME in go(homonym, Trigger.INSI_RECOVERY).attributes
    doubtful = set_attribute(homonym, Attribute.DOUTEUSE, at=AT, who=WHO, why="x").state
    assert doubtful.attributes == {Attribute.HOMONYME, Attribute.DOUTEUSE}


def test_state_refuses_douteuse_above_prov() -> None:
    with pytest.raises(IllegalTransitionError, match="only allowed with status PROV"):
        IdentityState(status=Status.QUAL, attributes=frozenset({Attribute.FICTIVE}))


def test_setting_or_clearing_twice_is_an_error() -> None:
    homonym = set_attribute(PROV, Attribute.HOMONYME, at=AT, who=WHO, why="x").state
    with pytest.raises(IllegalTransitionError, match="already set"):
        set_attribute(homonym, Attribute.HOMONYME, at=AT, who=WHO, why="x")
    with pytest.raises(IllegalTransitionError, match="not set"):
        clear_attribute(PROV, Attribute.HOMONYME, at=AT, who=WHO, why="x")


# --- the FR Core extension -----------------------------------------------------------------


def test_missing_extension_reads_as_prov() -> None:
    assert read_reliability(make_patient(status=None)).status is Status.PROV


@pytest.mark.parametrize("status", ["PROV", "RECUP", "VALI", "QUAL"])
def test_rniv_codes_round_trip(status: str) -> None:
    state = IdentityState(
        status=Status(status),
        attributes=frozenset({Attribute.HOMONYME, Attribute.POTENTIAL_DUPLICATE}),
        collection_method="INSI" if status in ("RECUP", "QUAL") else None,
        collected_on=date(2026, 1, 2) if status in ("RECUP", "QUAL") else None,
        validation_mode="CN" if status in ("VALI", "QUAL") else None,
        validated_on=date(2026, 1, 3) if status in ("VALI", "QUAL") else None,
    )
    patient = write_reliability(make_patient(status=None), state)
    assert read_reliability(patient) == state


def test_fr_core_2_1_vali_with_ins_reads_as_qual() -> None:
    assert read_reliability(make_patient(status="VALI", status_system=CS_V2_0445)).status is (
        Status.QUAL
    )
    assert read_reliability(
        make_patient(status="VALI", status_system=CS_V2_0445, ins=None)
    ).status is (Status.VALI)
    # In the RNIV code system VALI keeps its RNIV meaning, INS or not.
    assert read_reliability(make_patient(status="VALI")).status is Status.VALI


def test_corpus_examples_read_as_qual(load_fhir: CorpusLoader) -> None:
    patient = load_fhir("partage-documents-pdsm/Patient-fr-patient-123.json")
    assert read_reliability(patient).status is Status.QUAL


def test_vide_reads_as_prov_and_two_statuses_are_refused() -> None:
    assert read_reliability(make_patient(status="VIDE", status_system=CS_V2_0445)).status is (
        Status.PROV
    )
    patient = make_patient(status="PROV")
    patient["extension"].append(
        {
            "url": IDENTITY_RELIABILITY_URL,
            "extension": [
                {
                    "url": "identityStatus",
                    "valueCoding": {"system": CS_IDENTITY_STATUS_2_2, "code": "QUAL"},
                }
            ],
        }
    )
    with pytest.raises(IdentityError, match="exactly one RNIV status"):
        read_reliability(patient)


def test_attributes_read_from_repetitions_and_2_2_comment() -> None:
    patient = make_patient(status="PROV", ins=None)
    patient["extension"][0]["extension"].append(
        {"url": "comment", "valueCodeableConcept": {"coding": [{"code": "DOUT"}]}}
    )
    patient["extension"].append(
        {
            "url": IDENTITY_RELIABILITY_URL,
            "extension": [
                {"url": "identityStatus", "valueCoding": {"system": CS_V2_0445, "code": "HOMA"}}
            ],
        }
    )
    assert read_reliability(patient).attributes == {Attribute.DOUTEUSE, Attribute.HOMONYME}


def test_fr_core_2_1_coding_for_partners() -> None:
    def written(status: Status) -> str:
        out = write_reliability(
            make_patient(), IdentityState(status=status), coding=StatusCoding.FR_CORE_2_1
        )
        coding = out["extension"][0]["extension"][0]["valueCoding"]
        assert coding["system"] == CS_V2_0445
        return str(coding["code"])

    assert [written(s) for s in Status] == ["PROV", "PROV", "VALI", "VALI"]


def test_write_keeps_other_extensions_and_does_not_mutate() -> None:
    patient = make_patient()
    out = write_reliability(patient, IdentityState(status=Status.RECUP))
    assert len(out["extension"]) == len(patient["extension"])
    assert patient["extension"][0]["extension"][0]["valueCoding"]["code"] == "QUAL"


def test_only_qual_exposes_its_ins() -> None:
    ipp = ("urn:oid:1.2.250.1.999.1", "A1")
    qual = make_patient(ipp=ipp)
    assert [i["value"] for i in exposable_identifiers(qual)] == ["A1", "260058815400233"]
    for status in ("PROV", "RECUP", "VALI"):
        assert [
            i["value"] for i in exposable_identifiers(make_patient(status=status, ipp=ipp))
        ] == ["A1"]


def test_invalid_old_and_test_ins_are_never_exposed() -> None:
    assert exposable_identifiers(make_patient(ins="260058815400234")) == []
    assert exposable_identifiers(make_patient(ins_use="old")) == []
    test_ins = make_patient(ins_type="INS-NIR-TEST", ins_system="urn:oid:1.2.250.1.213.1.4.10")
    assert exposable_identifiers(test_ins) == []
    assert len(exposable_identifiers(test_ins, allow_test_ins=True)) == 1


def test_carte_vitale_app_records_its_mode() -> None:
    step = apply(PROV, Trigger.CARTE_VITALE_APP, at=AT, who=WHO, why="QR code")
    assert (step.record.collection_method, step.record.validation_mode) == ("AV", "AV")
    recup = apply(PROV, Trigger.CARTE_VITALE_APP, at=AT, who=WHO, why="x", to=Status.RECUP)
    assert recup.state.validation_mode is None


def test_fr_core_2_1_export_drops_modes_outside_its_required_binding() -> None:
    state = IdentityState(status=Status.VALI, validation_mode="eCN", validated_on=date(2026, 1, 1))
    out = write_reliability(make_patient(ins=None), state, coding=StatusCoding.FR_CORE_2_1)
    urls = [sub["url"] for sub in out["extension"][0]["extension"]]
    assert urls == ["identityStatus", "validationDate"]
    rniv = write_reliability(make_patient(ins=None), state)
    assert [sub["url"] for sub in rniv["extension"][0]["extension"]][-1] == "validationMode"
