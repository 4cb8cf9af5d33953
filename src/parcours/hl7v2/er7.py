"""ER7 (pipe) encoding: bytes -> ``Message`` with the charset of MSH-18 and HL7 escapes.

Hand-written rather than python-hl7/hl7apy: we need the raw bytes-level MSH-18 lookup before
decoding, tolerant segment separators (CR, LF, CRLF all occur in the ANS files), encoding
characters taken from MSH-2 as sent (one ANS example uses U+02DC as repetition separator),
located errors for the ERR segment, and bounded time on hostile input (fuzz-tested).
Values stay escaped in the tree and are unescaped on access.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from parcours.hl7v2.errors import (
    DATA_TYPE_ERROR,
    SEGMENT_SEQUENCE_ERROR,
    TABLE_VALUE_NOT_FOUND,
    Hl7Error,
)

__all__ = [
    "CHARSETS",
    "Encoding",
    "Message",
    "Segment",
    "Value",
    "codec_for",
    "format_date",
    "parse",
    "parse_ts",
]

# MSH-18 values (HL7 table 0211) we decode, and the Python codec for each.
CHARSETS = {
    "": None,
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UNICODE": "utf-8",
}

_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
_SEPARATORS = re.compile(r"\r\n|\r|\n")
PARIS = ZoneInfo("Europe/Paris")


def codec_for(msh18: str, default: str) -> str:
    """Python codec for an MSH-18 value; raises ``Hl7Error`` (AR 103) for an unknown one."""
    name = msh18.strip().upper()
    codec = CHARSETS.get(name)
    if codec is None and name == "":
        codec = CHARSETS.get(default.strip().upper())
    if codec is None:
        raise Hl7Error.reject(
            TABLE_VALUE_NOT_FOUND,
            "character set not supported; use 8859/1, 8859/15 or UNICODE UTF-8",
            "MSH^1^18",
        )
    return codec


@dataclass(frozen=True, slots=True)
class Encoding:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    def unescape(self, raw: str) -> str:
        esc = self.escape
        if not esc or esc not in raw:
            return raw
        out: list[str] = []
        i = 0
        n = len(raw)
        while i < n:
            ch = raw[i]
            if ch != esc:
                out.append(ch)
                i += 1
                continue
            end = raw.find(esc, i + 1)
            if end < 0:  # unterminated escape: keep the text as sent
                out.append(raw[i:])
                break
            out.append(self._escape_value(raw[i + 1 : end]))
            i = end + 1
        return "".join(out)

    def _escape_value(self, code: str) -> str:
        simple = {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": self.escape,
            ".br": "\n",
        }
        if code in simple:
            return simple[code]
        if code.startswith("X") and len(code) % 2 == 1:
            try:
                return bytes.fromhex(code[1:]).decode("latin-1")
            except ValueError:
                return ""
        # Formatting (\H\, \N\, \.sp\...) and charset switches carry no data for us.
        return ""


@dataclass(frozen=True, slots=True)
class Value:
    """One repetition of a field, still escaped; components and subcomponents are 1-based."""

    raw: str
    enc: Encoding

    @property
    def is_delete(self) -> bool:
        """HL7 ``""``: the receiver must delete the value it holds."""
        return self.raw == '""'

    def components(self) -> list[str]:
        return self.raw.split(self.enc.component)

    def c(self, i: int, s: int = 0) -> str:
        """Component ``i`` (subcomponent ``s`` when given), unescaped; '' when absent."""
        comps = self.components()
        if i < 1 or i > len(comps):
            return ""
        comp = comps[i - 1]
        if s:
            subs = comp.split(self.enc.subcomponent)
            comp = subs[s - 1] if s <= len(subs) else ""
        elif self.enc.subcomponent in comp:
            comp = comp.split(self.enc.subcomponent)[0]
        value = self.enc.unescape(comp)
        return "" if value == '""' else value

    def text(self) -> str:
        return self.c(1)


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    fields: tuple[str, ...]
    enc: Encoding
    # 1-based occurrence of this segment name in the message (ERR location "PID^1^5").
    occurrence: int = 1

    def raw(self, n: int) -> str:
        """Field ``n`` as sent (MSH-1 is the field separator, MSH-2 the encoding characters)."""
        if self.name == "MSH":
            if n == 1:
                return self.enc.field
            idx = n - 1
        else:
            idx = n
        if idx < 1 or idx >= len(self.fields):
            return ""
        return self.fields[idx]

    def reps(self, n: int) -> list[Value]:
        raw = self.raw(n)
        if raw == "":
            return []
        if self.name == "MSH" and n == 2:
            return [Value(raw, Encoding())]
        return [Value(r, self.enc) for r in raw.split(self.enc.repetition)]

    def first(self, n: int) -> Value:
        reps = self.reps(n)
        return reps[0] if reps else Value("", self.enc)

    def get(self, n: int, comp: int = 1, sub: int = 0) -> str:
        return self.first(n).c(comp, sub)

    def present(self, n: int) -> bool:
        return self.raw(n) != ""

    def loc(self, n: int, rep: int = 0, comp: int = 0) -> str:
        """ERR-2 location: segment^sequence^field[^repetition[^component]]."""
        parts = [self.name, str(self.occurrence), str(n)]
        if rep:
            parts.append(str(rep))
            if comp:
                parts.append(str(comp))
        return "^".join(parts)


@dataclass(frozen=True, slots=True)
class Message:
    segments: tuple[Segment, ...]
    enc: Encoding
    charset: str
    text: str

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def first(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    # Header shortcuts used everywhere.
    @property
    def sending_application(self) -> str:
        return self.msh.get(3)

    @property
    def sending_facility(self) -> str:
        return self.msh.get(4)

    @property
    def control_id(self) -> str:
        return self.msh.get(10)

    @property
    def message_type(self) -> str:
        return self.msh.get(9, 1).upper()

    @property
    def trigger(self) -> str:
        return self.msh.get(9, 2).upper()

    @property
    def version(self) -> str:
        return self.msh.get(12, 1)

    def fingerprint(self) -> str:
        """SHA-256 of the content, ignoring MSH-7 and the segment separator used.

        Some senders stamp a new MSH-7 when they resend; such a resend is still the same
        message for the idempotency check.
        """
        parts = []
        for seg in self.segments:
            fields = list(seg.fields)
            if seg.name == "MSH" and len(fields) > 6:
                fields[6] = ""
            parts.append(self.enc.field.join(fields))
        return hashlib.sha256("\r".join(parts).encode("utf-8")).hexdigest()


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    """The first segment (bytes) and the field separator, before any decoding."""
    start = data.lstrip(b" \t\r\n\x00\xef\xbb\xbf")
    if not start.startswith(b"MSH") or len(start) < 8:
        raise Hl7Error.reject(
            SEGMENT_SEQUENCE_ERROR, "the message must start with an MSH segment", "MSH^1"
        )
    fs = start[3:4]
    if fs.isalnum() or fs in b" \r\n":
        raise Hl7Error.reject(DATA_TYPE_ERROR, "invalid field separator in MSH-1", "MSH^1^1")
    head = re.split(rb"\r|\n", start, maxsplit=1)[0]
    return head, fs


def header_fields(data: bytes) -> list[str]:
    """MSH fields (index n = MSH-n) decoded as Latin-1 without validation, for rejected frames."""
    try:
        head, fs = _split_head(data)
    except Hl7Error:
        return []
    parts = head.decode("latin-1").split(fs.decode("latin-1"))
    return ["MSH", fs.decode("latin-1"), *parts[1:]]


def parse(data: bytes, *, default_charset: str = "8859/15") -> Message:
    """Decode and split one message; raises ``Hl7Error`` with a located problem."""
    head, fs = _split_head(data)
    msh_parts = head.split(fs)
    msh18 = msh_parts[17].decode("latin-1") if len(msh_parts) > 17 else ""
    # MSH-18 may repeat: the first repetition is the charset of the message.
    rep_sep = msh_parts[1][1:2].decode("latin-1") if len(msh_parts) > 1 else "~"
    if rep_sep and rep_sep.isascii():
        msh18 = msh18.split(rep_sep)[0]
    codec = codec_for(msh18, default_charset)
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise Hl7Error.content(
            DATA_TYPE_ERROR,
            f"byte {exc.start} is not valid in the declared character set {codec}",
            "MSH^1^18",
        ) from None
    text = text.lstrip(" \t\r\n\x00\ufeff")
    fsc = text[3]
    enc_end = text.find(fsc, 4)
    enc_chars = text[4:enc_end] if enc_end >= 0 else text[4:]
    enc_chars = enc_chars.split("\r")[0].split("\n")[0]
    if len(enc_chars) < 2 or len(set(enc_chars + fsc)) != len(enc_chars) + 1:
        raise Hl7Error.reject(
            DATA_TYPE_ERROR, "MSH-2 must hold 4 distinct encoding characters", "MSH^1^2"
        )
    defaults = "^~\\&"
    enc_chars = (enc_chars + defaults[len(enc_chars) :])[:4]
    enc = Encoding(fsc, enc_chars[0], enc_chars[1], enc_chars[2], enc_chars[3])
    segments: list[Segment] = []
    counts: dict[str, int] = {}
    for index, line in enumerate(_SEPARATORS.split(text), start=1):
        if not line.strip():
            continue
        name = line[:3]
        if not _SEGMENT_NAME.fullmatch(name) or (len(line) > 3 and line[3] != fsc):
            raise Hl7Error.content(
                SEGMENT_SEQUENCE_ERROR,
                f"line {index} is not a segment (3-character name then field separator)",
                f"{name if name.isalnum() else '???'}",
            )
        counts[name] = counts.get(name, 0) + 1
        segments.append(Segment(name, tuple(line.split(fsc)), enc, counts[name]))
    if not segments or segments[0].name != "MSH":
        raise Hl7Error.reject(SEGMENT_SEQUENCE_ERROR, "the first segment must be MSH", "MSH^1")
    return Message(tuple(segments), enc, codec, text)


_TS = re.compile(
    r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?(?:([+-])(\d{2})(\d{2}))?"
)


def parse_ts(raw: str, location: str, *, tz: ZoneInfo = PARIS) -> tuple[datetime, int]:
    """An HL7 TS/DTM -> (aware datetime, number of digits given: 4, 6, 8, 10, 12 or 14).

    A time without offset is local time at the sender (Europe/Paris); dates are checked on
    the calendar (``20240231`` is an error, AE 102).
    """
    value = raw.strip()
    m = _TS.fullmatch(value)
    if not m:
        raise Hl7Error.content(DATA_TYPE_ERROR, "not a date/time (YYYYMMDD[HHMM[SS]])", location)
    year, month, day, hour, minute, second, frac, sign, oh, om = m.groups()
    precision = 4 + sum(2 for g in (month, day, hour, minute, second) if g)
    try:
        zone: timezone | ZoneInfo = tz
        if sign:
            offset = timedelta(hours=int(oh), minutes=int(om))
            zone = timezone(offset if sign == "+" else -offset)
        dt = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((frac or "0").ljust(6, "0")[:6]),
            tzinfo=zone,
        )
    except ValueError:
        raise Hl7Error.content(DATA_TYPE_ERROR, "impossible date or time", location) from None
    if dt.year < 1800:
        raise Hl7Error.content(DATA_TYPE_ERROR, "date before 1800", location)
    return dt, precision


def format_date(dt: datetime, precision: int) -> str:
    """FHIR ``date`` at the precision sent (a birth date has no time zone)."""
    if precision <= 4:
        return f"{dt.year:04d}"
    if precision <= 6:
        return f"{dt.year:04d}-{dt.month:02d}"
    return date(dt.year, dt.month, dt.day).isoformat()


def format_instant(dt: datetime) -> str:
    """FHIR ``dateTime`` in UTC (storage convention of the platform)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
