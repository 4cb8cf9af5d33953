"""Framing, ER7 parsing and ACK building, without sockets or database."""

from __future__ import annotations

import pytest

from parcours.hl7v2.ack import AckContext, Outcome, build_responses
from parcours.hl7v2.er7 import parse, parse_ts
from parcours.hl7v2.errors import Hl7Error, Problem
from parcours.hl7v2.framing import FrameDecoder, frame

from .messages import Pam, parse_ack


def test_frames_split_across_reads_and_several_per_read() -> None:
    a, b, c = b"MSH|a", b"MSH|bb", b"MSH|ccc"
    stream = b"noise" + frame(a) + frame(b) + frame(c)
    for cut in range(1, len(stream)):
        dec = FrameDecoder(1000)
        got = dec.feed(stream[:cut]) + dec.feed(stream[cut:])
        assert [f.data for f in got] == [a, b, c], cut
    dec = FrameDecoder(1000)
    got = [f.data for i in range(len(stream)) for f in dec.feed(stream[i : i + 1])]
    assert got == [a, b, c]


def test_lone_fs_is_data_and_restart_abandons_partial() -> None:
    dec = FrameDecoder(1000)
    got = dec.feed(b"\x0bMSH|x\x1cy\x1c\r")
    assert [f.data for f in got] == [b"MSH|x\x1cy"]
    got = dec.feed(b"\x0bpartial\x0bMSH|z\x1c\r")
    assert [f.data for f in got] == [b"MSH|z"]
    assert dec.abandoned_frames == 1


def test_end_marker_without_cr_before_next_frame() -> None:
    stream = b"\x0bMSH|a\x1c\x0bMSH|b\x1c\r"
    for cut in range(1, len(stream)):
        dec = FrameDecoder(1000)
        got = dec.feed(stream[:cut]) + dec.feed(stream[cut:])
        assert [f.data for f in got] == [b"MSH|a", b"MSH|b"], cut


def test_oversized_frame_keeps_head_and_stream_continues() -> None:
    dec = FrameDecoder(100)
    big = b"MSH|^~\\&|A|B|C|D|x||ADT^A01|ID9|P|2.5\r" + b"X" * 10_000
    got = dec.feed(frame(big) + frame(b"MSH|small"))
    assert got[0].oversized and got[0].size == len(big)
    assert got[0].data.startswith(b"MSH|^~\\&|A|B")
    assert len(got[0].data) <= 8192
    assert got[1].data == b"MSH|small" and not got[1].oversized


def test_parse_charset_from_msh18() -> None:
    pam = Pam("A28", "C1", family="LEFÈVRE", charset="8859/1")
    msg = parse(pam.bytes("latin-1"))
    assert msg.first("PID").get(5) == "LEFÈVRE"  # type: ignore[union-attr]
    pam15 = Pam("A28", "C1", family="ŒUVRE", charset="8859/15")
    assert parse(pam15.bytes("iso8859-15")).first("PID").get(5) == "ŒUVRE"  # type: ignore[union-attr]
    utf = Pam("A28", "C1", family="LEFÈVRE")
    assert parse(utf.bytes()).first("PID").get(5) == "LEFÈVRE"  # type: ignore[union-attr]
    # No MSH-18: ISO 8859/15, the PAM FR default.
    empty = Pam("A28", "C1", family="LEFÈVRE", charset="")
    assert parse(empty.bytes("iso8859-15")).first("PID").get(5) == "LEFÈVRE"  # type: ignore[union-attr]


def test_parse_errors_are_located() -> None:
    with pytest.raises(Hl7Error) as exc:
        parse(b"garbage")
    assert exc.value.ack_code == "AR"
    with pytest.raises(Hl7Error) as exc:
        parse(Pam("A28", "C1", charset="EBCDIC").bytes())
    assert exc.value.problems[0].location == "MSH^1^18"
    with pytest.raises(Hl7Error) as exc:
        parse(Pam("A28", "C1").bytes().replace(b"EVN|", b"E!N|"))
    assert exc.value.problems[0].code == "100"
    with pytest.raises(Hl7Error) as exc:
        parse(Pam("A28", "C1", family="LEFÈVRE").bytes("latin-1"))  # declared UTF-8
    assert exc.value.ack_code == "AE"


def test_escapes_and_components() -> None:
    msg = parse(Pam("A28", "C1", family="O\\T\\BRIEN\\S\\X").bytes())
    pid = msg.first("PID")
    assert pid is not None
    assert pid.get(5) == "O&BRIEN^X"


@pytest.mark.parametrize(
    ("raw", "ok"),
    [("20240229", True), ("20230229", False), ("20241301", False), ("2024", True), ("x", False)],
)
def test_timestamps(raw: str, ok: bool) -> None:
    if ok:
        parse_ts(raw, "PID^1^7")
    else:
        with pytest.raises(Hl7Error):
            parse_ts(raw, "PID^1^7")


def test_ack_modes() -> None:
    ctx = AckContext(control_id="X1", trigger="A01", sending_application="GAM", version_raw="2.5")
    ok = Outcome("CA", "AA")
    [original] = build_responses(ctx, ok, application="P", facility="R")
    assert parse_ack(original).code == "AA" and parse_ack(original).acked_id == "X1"
    enhanced = AckContext(control_id="X1", accept_ack_type="AL", application_ack_type="AL")
    codes = [
        parse_ack(a).code for a in build_responses(enhanced, ok, application="P", facility="R")
    ]
    assert codes == ["CA", "AA"]
    only_app = AckContext(control_id="X1", application_ack_type="AL")
    codes = [
        parse_ack(a).code for a in build_responses(only_app, ok, application="P", facility="R")
    ]
    assert codes == ["AA"]
    errors_only = AckContext(control_id="X1", accept_ack_type="ER", application_ack_type="ER")
    assert build_responses(errors_only, ok, application="P", facility="R") == []
    bad = Outcome("CA", "AE", [Problem("101", "PID-5 | required", "PID^1^5")])
    [ack] = build_responses(errors_only, bad, application="P", facility="R")
    parsed = parse_ack(ack)
    assert parsed.code == "AE"
    assert parsed.errors[0][2] == "PID^1^5"
    assert parsed.errors[0][3] == "101^Required field missing^HL70357"
    assert "\\F\\" in parsed.errors[0][8]


def test_settings_from_env(tmp_path: object) -> None:
    from parcours.hl7v2.settings import Hl7Settings

    s = Hl7Settings.from_env(
        {
            "PARCOURS_HL7_MAX_MESSAGE_BYTES": "1000",
            "PARCOURS_HL7_ALLOW_TEST_INS": "true",
            "PARCOURS_HL7_TRUST_CONTRACT": "false",
            "PARCOURS_HL7_IDLE_TIMEOUT_SECONDS": "0",
            "PARCOURS_HL7_DEFAULT_CHARSET": "8859/1",
        }
    )
    assert (s.max_message_bytes, s.allow_test_ins, s.trust_contract) == (1000, True, False)
    assert s.idle_timeout_seconds == 0 and s.default_charset == "8859/1"
    assert s.ssl_context() is None
