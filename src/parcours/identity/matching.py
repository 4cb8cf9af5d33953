"""Online matching of an incoming identity against stored candidates (RNIV 1 §4.9).

Tiers, in order:

1. same INS (matricule and authority) -> same person, unless a strict trait conflicts:
   then COLLISION (one INS, two people: the most dangerous error, for a human);
2. same local identifier (assigning authority + IPP) -> same record, whatever the traits
   (trait changes arrive as updates);
3. Fellegi-Sunter score over the named comparisons, with the weights of ``model.json``.

Outcomes: AUTO_LINK only above the ``certain`` threshold with no conflicting strict trait;
REVIEW for the middle band, ALWAYS for minors (RNIV: reconciliation of minors is manual),
and never an automatic link across two different INS; NEW otherwise (RNIV: when in doubt,
create a new identity). Phonetic keys serve blocking only (:func:`blocking_keys`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Final

from .comparisons import DEFAULT_COMPARISONS, Comparison
from .model import MatchModel
from .normalize import NO_GIVEN_NAME, NO_NAME
from .phonetic import soundex2
from .record import IdentityRecord

__all__ = [
    "MAJORITY_AGE",
    "MatchGrade",
    "MatchResult",
    "Matcher",
    "Outcome",
    "Tier",
    "blocking_keys",
]

MAJORITY_AGE: Final = 18


class Outcome(Enum):
    AUTO_LINK = "auto-link"
    REVIEW = "review"
    NEW = "new"
    COLLISION = "collision"


class MatchGrade(Enum):
    """FHIR ``match-grade`` extension codes (Patient $match)."""

    CERTAIN = "certain"
    PROBABLE = "probable"
    POSSIBLE = "possible"
    CERTAINLY_NOT = "certainly-not"


class Tier(Enum):
    INS = "ins"
    LOCAL_ID = "local-id"
    PROBABILISTIC = "probabilistic"


@dataclass(frozen=True, slots=True)
class MatchResult:
    outcome: Outcome
    grade: MatchGrade
    tier: Tier
    probability: float
    weight: float
    levels: dict[str, str | None]
    conflicts: tuple[str, ...] = ()
    """Strict traits at their ``else`` level (sex, birth name, first given name, birth date)."""
    reasons: tuple[str, ...] = ()


_GRADE_ORDER: Final = (
    MatchGrade.CERTAINLY_NOT,
    MatchGrade.POSSIBLE,
    MatchGrade.PROBABLE,
    MatchGrade.CERTAIN,
)


def _cap(grade: MatchGrade, ceiling: MatchGrade) -> MatchGrade:
    return min(grade, ceiling, key=_GRADE_ORDER.index)


class Matcher:
    """Scores pairs with a loaded model; construction checks model and comparisons agree."""

    def __init__(
        self,
        model: MatchModel | None = None,
        comparisons: Sequence[Comparison] = DEFAULT_COMPARISONS,
    ) -> None:
        self.model = model or MatchModel.load()
        self.comparisons = tuple(comparisons)
        self.model.check(self.comparisons)

    def levels(self, a: IdentityRecord, b: IdentityRecord) -> dict[str, str | None]:
        return {c.name: c.level(a, b) for c in self.comparisons}

    def score(self, levels: dict[str, str | None]) -> tuple[float, float]:
        """(match weight in bits, match probability) for a pair's levels."""
        weight = self.model.prior_weight + sum(
            self.model.weight(name, level) for name, level in levels.items()
        )
        # 2**w / (1 + 2**w), written to stay finite for large |w|.
        probability = 1 / (1 + math.pow(2, -weight)) if weight > -1000 else 0.0
        return weight, probability

    def grade(self, probability: float) -> MatchGrade:
        t = self.model.thresholds
        if probability >= t.certain:
            return MatchGrade.CERTAIN
        if probability >= t.probable:
            return MatchGrade.PROBABLE
        if probability >= t.possible:
            return MatchGrade.POSSIBLE
        return MatchGrade.CERTAINLY_NOT

    def _conflicts(self, levels: dict[str, str | None]) -> tuple[str, ...]:
        return tuple(c.name for c in self.comparisons if c.strict and levels.get(c.name) == "else")

    def match(
        self, incoming: IdentityRecord, candidate: IdentityRecord, *, as_of: date
    ) -> MatchResult:
        """Decide what to do with ``incoming`` given one stored ``candidate``.

        ``as_of`` is the day used to tell minors (no hidden clock: pass the store's today).
        """
        levels = self.levels(incoming, candidate)
        weight, probability = self.score(levels)
        conflicts = self._conflicts(levels)
        minor = any(
            age is not None and age < MAJORITY_AGE
            for age in (incoming.age_on(as_of), candidate.age_on(as_of))
        )

        def result(outcome: Outcome, grade: MatchGrade, tier: Tier, *reasons: str) -> MatchResult:
            if outcome is Outcome.AUTO_LINK and minor and tier is not Tier.LOCAL_ID:
                outcome, reasons = Outcome.REVIEW, (*reasons, "minor: manual reconciliation")
            return MatchResult(
                outcome, grade, tier, probability, weight, levels, conflicts, reasons
            )

        a, b = incoming.ins, candidate.ins
        if a is not None and b is not None and a == b:
            if conflicts:
                return result(
                    Outcome.COLLISION,
                    MatchGrade.POSSIBLE,
                    Tier.INS,
                    "same INS but strict traits conflict: " + ", ".join(conflicts),
                )
            return result(Outcome.AUTO_LINK, MatchGrade.CERTAIN, Tier.INS, "same INS")
        if incoming.local_ids & candidate.local_ids:
            return result(Outcome.AUTO_LINK, MatchGrade.CERTAIN, Tier.LOCAL_ID, "same local id")

        grade = self.grade(probability)
        if a is not None and b is not None and a.matricule != b.matricule:
            # NIA -> NIR or a new NIR after a sex change can still be the same person.
            grade = _cap(grade, MatchGrade.POSSIBLE)
            outcome = (
                Outcome.REVIEW if probability >= self.model.thresholds.probable else Outcome.NEW
            )
            return result(outcome, grade, Tier.PROBABILISTIC, "different INS: never automatic")
        if grade is MatchGrade.CERTAIN and not conflicts:
            return result(Outcome.AUTO_LINK, grade, Tier.PROBABILISTIC)
        if grade is MatchGrade.CERTAINLY_NOT:
            return result(Outcome.NEW, grade, Tier.PROBABILISTIC)
        if conflicts:
            # A strict trait that disagrees outright is a different person until a human
            # says otherwise: never more than "possible".
            grade = _cap(grade, MatchGrade.POSSIBLE)
            return result(
                Outcome.REVIEW, grade, Tier.PROBABILISTIC, "conflict on " + ", ".join(conflicts)
            )
        return result(Outcome.REVIEW, grade, Tier.PROBABILISTIC)

    def rank(
        self, incoming: IdentityRecord, candidates: Iterable[IdentityRecord], *, as_of: date
    ) -> list[tuple[IdentityRecord, MatchResult]]:
        """Candidates with their result, most likely first (collisions first of all)."""
        scored = [(c, self.match(incoming, c, as_of=as_of)) for c in candidates]
        scored.sort(
            key=lambda pair: (pair[1].outcome is not Outcome.COLLISION, -pair[1].probability)
        )
        return scored


def blocking_keys(record: IdentityRecord) -> frozenset[str]:
    """Keys under which a record is indexed; two records are compared if they share one.

    Built to survive the usual errors: a day/month swap (sorted day and month), a typo in
    the year (name key with day and month), a married name (used name indexed too).
    """
    keys: set[str] = set()
    if record.ins is not None:
        keys.add(f"ins:{record.ins.matricule}")
    keys.update(f"ipp:{system}|{value}" for system, value in record.local_ids)
    names = {soundex2(n) for n in (record.birth_name, record.used_name) if n and n != NO_NAME} - {
        ""
    }
    first = (
        soundex2(record.first_given_name)
        if record.first_given_name and record.first_given_name != NO_GIVEN_NAME
        else ""
    )
    born = record.birth_date
    if born is not None:
        low, high = sorted((born.month, born.day))
        keys.add(f"dob:{born.year}:{low:02d}{high:02d}")
        for name in names:
            keys.add(f"name-md:{name}:{born.month:02d}{born.day:02d}")
            keys.add(f"name-y:{name}:{born.year}")
    for name in names:
        if first:
            keys.add(f"name-first:{name}:{first}")
    return frozenset(keys)
