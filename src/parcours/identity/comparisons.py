"""Named comparisons, one per trait, each listing its levels (Splink style).

A comparison returns the name of the first level that holds for a pair, or ``None`` when
either side lacks the trait (a null level weighs nothing). The m/u probabilities of each
level are data, in ``model.json``; the French rules live here, written once for online
matching and the batch audit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date
from typing import ClassVar, Final

from rapidfuzz.distance import JaroWinkler

from .normalize import NO_GIVEN_NAME, NO_NAME, comparison_form
from .record import IdentityRecord
from .traits import UNKNOWN_BIRTHPLACE, Sex, is_fallback_birth_date

__all__ = [
    "DEFAULT_COMPARISONS",
    "BirthDateComparison",
    "BirthNameComparison",
    "BirthplaceComparison",
    "Comparison",
    "FirstNameComparison",
    "GivenNamesComparison",
    "SexComparison",
]

# Jaro-Winkler cut-offs; the levels they define are named in model.json, so changing them
# requires re-estimating the model (bench/identity/evaluate.py).
_JW_HIGH: Final = 0.92
_JW_MID: Final = 0.82


class Comparison(ABC):
    """One trait compared at ordered levels; the last level is the catch-all ``else``."""

    name: ClassVar[str]
    levels: ClassVar[tuple[str, ...]]
    strict: ClassVar[bool] = True
    """A strict trait: its ``else`` level is a conflict that forbids an automatic link."""

    @abstractmethod
    def level(self, a: IdentityRecord, b: IdentityRecord) -> str | None:
        """Level name for the pair, or None when the comparison cannot be made."""


def _key(value: str | None, missing: str) -> str | None:
    if value is None or value == missing:
        return None
    return comparison_form(value)


def _jw(a: str, b: str) -> float:
    return float(JaroWinkler.similarity(a, b))


def _words_within(short: str, long: str) -> bool:
    """True when the words of ``short`` appear consecutively in ``long``."""
    s, lg = short.split(" "), long.split(" ")
    return any(lg[i : i + len(s)] == s for i in range(len(lg) - len(s) + 1))


def _swapped(a: IdentityRecord, b: IdentityRecord) -> bool:
    """Birth name and first given name typed in each other's field, a classic desk error."""
    a_name, a_first = _key(a.birth_name, NO_NAME), _key(a.first_given_name, NO_GIVEN_NAME)
    b_name, b_first = _key(b.birth_name, NO_NAME), _key(b.first_given_name, NO_GIVEN_NAME)
    return a_name is not None and a_first is not None and (a_name, a_first) == (b_first, b_name)


class BirthNameComparison(Comparison):
    """Birth name, cross-compared with the used name for marriage and divorce."""

    name = "birth_name"
    levels = (
        "exact",
        "cross_used_name",
        "swapped_with_given",
        "token_within",
        "jw_high",
        "jw_mid",
        "else",
    )

    def level(self, a: IdentityRecord, b: IdentityRecord) -> str | None:
        x, y = _key(a.birth_name, NO_NAME), _key(b.birth_name, NO_NAME)
        if x is None or y is None:
            return None
        if x == y:
            return "exact"
        x_used, y_used = _key(a.used_name, NO_NAME), _key(b.used_name, NO_NAME)
        # Only birth name against used name: two women sharing a married name are in-laws.
        if x == y_used or y == x_used:
            return "cross_used_name"
        if _swapped(a, b):
            return "swapped_with_given"
        if _words_within(x, y) or _words_within(y, x):
            return "token_within"
        similarity = _jw(x, y)
        if similarity >= _JW_HIGH:
            return "jw_high"
        if similarity >= _JW_MID:
            return "jw_mid"
        return "else"


class FirstNameComparison(Comparison):
    """First birth given name, with containment in the other side's list or used name."""

    name = "first_given_name"
    levels = ("exact", "contained", "jw_high", "jw_mid", "else")

    def level(self, a: IdentityRecord, b: IdentityRecord) -> str | None:
        x, y = _key(a.first_given_name, NO_GIVEN_NAME), _key(b.first_given_name, NO_GIVEN_NAME)
        if x is None or y is None:
            return None
        if x == y:
            return "exact"
        if _swapped(a, b):
            # Already weighed once by the birth-name comparison; counting it twice would
            # make a desk inversion look like overwhelming evidence.
            return None
        # JEAN-PIERRE vs JEAN, or a first name that is the other side's second given name
        # or used first name: compound names are often cut or reordered at the desk.
        x_pool = [v for v in (_key(a.given_names, NO_GIVEN_NAME), _key(a.used_given_name, "")) if v]
        y_pool = [v for v in (_key(b.given_names, NO_GIVEN_NAME), _key(b.used_given_name, "")) if v]
        if (
            _words_within(x, y)
            or _words_within(y, x)
            or any(_words_within(x, v) for v in y_pool)
            or any(_words_within(y, v) for v in x_pool)
        ):
            return "contained"
        similarity = _jw(x, y)
        if similarity >= _JW_HIGH:
            return "jw_high"
        if similarity >= _JW_MID:
            return "jw_mid"
        return "else"


class GivenNamesComparison(Comparison):
    """The whole list of birth given names, as sets of words (hyphen read as a space).

    It tells twins apart (same name, date and place; different lists) from a first given
    name cut or reordered at the desk (same list). Not strict: RNIV lets a difference in the
    other given names be accepted after analysis.
    """

    name = "given_names"
    levels = ("exact", "subset", "fuzzy_subset", "overlap", "else")
    strict = False

    def level(self, a: IdentityRecord, b: IdentityRecord) -> str | None:
        x, y = _key(a.given_names, NO_GIVEN_NAME), _key(b.given_names, NO_GIVEN_NAME)
        if x is None or y is None:
            return None
        if x == y:
            return "exact"
        xs, ys = set(x.split(" ")), set(y.split(" "))
        if xs <= ys or ys <= xs:
            return "subset"
        small, large = sorted((xs, ys), key=len)
        # A typo in the first given name is usually copied into the list as well.
        close = sum(any(_jw(w, v) >= _JW_HIGH for v in large) for w in small)
        if close == len(small):
            return "fuzzy_subset"
        if len(xs & ys) * 2 >= len(xs | ys):
            return "overlap"
        return "else"


def _digits(day: date) -> str:
    return day.strftime("%Y%m%d")


class BirthDateComparison(Comparison):
    """Birth date with day/month swap, one-digit typo and RNIV fallback dates."""

    name = "birth_date"
    levels = ("exact", "day_month_swap", "one_digit", "fallback_compatible", "else")

    def level(self, a: IdentityRecord, b: IdentityRecord) -> str | None:
        x, y = a.birth_date, b.birth_date
        if x is None or y is None:
            return None
        if x == y:
            return "exact"
        if x.year == y.year and x.day == y.month and x.month == y.day:
            return "day_month_swap"
        if sum(c != d for c, d in zip(_digits(x), _digits(y), strict=True)) == 1:
            return "one_digit"
        # 01/MM, DD/01 and 31/12 may stand for an unknown day or month (RNIV §1.6).
        x_soft = a.birth_date_estimated or is_fallback_birth_date(x)
        y_soft = b.birth_date_estimated or is_fallback_birth_date(y)
        if x.year == y.year and (x_soft or y_soft):
            return "fallback_compatible"
        return "else"


class SexComparison(Comparison):
    name = "sex"
    levels = ("exact", "else")

    def level(self, a: IdentityRecord, b: IdentityRecord) -> str | None:
        known = (Sex.MALE, Sex.FEMALE)
        if a.sex not in known or b.sex not in known:
            return None
        return "exact" if a.sex == b.sex else "else"


class BirthplaceComparison(Comparison):
    """INSEE COG; 99999 is unknown. Communes merge and get new codes, so not strict."""

    name = "birthplace"
    levels = ("exact", "same_department", "else")
    strict = False

    def level(self, a: IdentityRecord, b: IdentityRecord) -> str | None:
        x, y = a.birthplace, b.birthplace
        if not x or not y or UNKNOWN_BIRTHPLACE in (x, y):
            return None
        if x == y:
            return "exact"
        if x[:2] == y[:2] and x[:2] != "99":
            return "same_department"
        return "else"


DEFAULT_COMPARISONS: Final[Sequence[Comparison]] = (
    BirthNameComparison(),
    FirstNameComparison(),
    GivenNamesComparison(),
    BirthDateComparison(),
    SexComparison(),
    BirthplaceComparison(),
)
