"""Search values in the form they are stored and compared: folded strings, date and number ranges.

Both sides of a comparison go through these functions (index extraction and query parsing), so
a stored "1952" and a searched "1952" are the same range by construction.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

__all__ = [
    "MAX_MS",
    "MIN_MS",
    "STRING_MAX",
    "date_range",
    "decimal_range",
    "fold",
    "parse_decimal",
]

# Open ends of a Period are stored as these bounds rather than NULL so that range comparisons
# stay plain indexed comparisons (no COALESCE) on both databases: 0001-01-01 and 9999-12-31.
MIN_MS = -62135596800000
MAX_MS = 253402300799999
# Width of the string columns; longer values are cut (prefix search still works).
STRING_MAX = 255

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, casefolded."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold()[:STRING_MAX]


def _ms(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def date_range(text: str) -> tuple[int, int] | None:
    """The inclusive [low, high] range in epoch milliseconds UTC that a FHIR date stands for.

    "2019" is the whole year, "2019-05-01T10:00Z" the whole minute. A date or dateTime without
    a time zone is read as UTC (FHIR leaves it to the server; Parcours stores UTC throughout).
    Returns None when the text is not a FHIR date, dateTime or instant.
    """
    match = _DATE.match(text.strip())
    if match is None:
        return None
    g = match.groupdict()
    try:
        year = int(g["y"])
        if g["m"] is None:
            start = datetime(year, 1, 1, tzinfo=UTC)
            end = datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else None
        elif g["d"] is None:
            month = int(g["m"])
            start = datetime(year, month, 1, tzinfo=UTC)
            if month == 12:
                end = datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else None
            else:
                end = datetime(year, month + 1, 1, tzinfo=UTC)
        else:
            tz = UTC
            if g["tz"] and g["tz"] != "Z":
                sign = 1 if g["tz"][0] == "+" else -1
                hours, minutes = int(g["tz"][1:3]), int(g["tz"][4:6])
                tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
            day = datetime(year, int(g["m"]), int(g["d"]), tzinfo=tz)
            if g["H"] is None:
                start, step = day, timedelta(days=1)
            elif g["M"] is None:
                start, step = day.replace(hour=int(g["H"])), timedelta(hours=1)
            elif g["S"] is None:
                start = day.replace(hour=int(g["H"]), minute=int(g["M"]))
                step = timedelta(minutes=1)
            else:
                start = day.replace(hour=int(g["H"]), minute=int(g["M"]), second=int(g["S"]))
                step = timedelta(seconds=1)
                if g["f"]:
                    digits = g["f"][:3]
                    start += timedelta(milliseconds=int(digits.ljust(3, "0")))
                    step = timedelta(milliseconds=10 ** (3 - len(digits)))
            end = start + step
    except (ValueError, OverflowError):
        return None
    low = _ms(start)
    high = _ms(end) - 1 if end is not None else MAX_MS
    return low, high


def parse_decimal(text: str) -> Decimal | None:
    """A FHIR decimal as written (no exponent needed, but accepted); None when malformed."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def decimal_range(value: Decimal) -> tuple[Decimal, Decimal]:
    """The implicit precision range of a decimal: "100" is [99.5, 100.5), "1.50" [1.495, 1.505)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    return value - half, value + half
