"""The Fellegi-Sunter model: m/u probabilities per comparison level and the grade thresholds.

The numbers are data, estimated offline by ``bench/identity/evaluate.py`` and shipped as
``identity/model.json``; they are loaded, never trained at start-up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .comparisons import Comparison

__all__ = ["LevelWeights", "MatchModel", "Thresholds"]


@dataclass(frozen=True, slots=True)
class LevelWeights:
    m: float
    """P(level | same person)."""
    u: float
    """P(level | different persons)."""

    def __post_init__(self) -> None:
        if not (0 < self.m <= 1 and 0 < self.u <= 1):
            raise ValueError("m and u are probabilities in (0, 1]")

    @property
    def weight(self) -> float:
        """Match weight in bits: log2(m / u)."""
        return math.log2(self.m / self.u)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Lower bounds of match probability for each FHIR match grade."""

    certain: float
    probable: float
    possible: float

    def __post_init__(self) -> None:
        if not 0 < self.possible <= self.probable <= self.certain < 1:
            raise ValueError("thresholds must satisfy 0 < possible <= probable <= certain < 1")


@dataclass(frozen=True, slots=True)
class MatchModel:
    prior: float
    """P(same person) for a pair of candidates produced by blocking."""
    levels: Mapping[str, Mapping[str, LevelWeights]]
    thresholds: Thresholds
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1 - self.prior))

    def check(self, comparisons: Sequence[Comparison]) -> None:
        """Fail at construction when the model and the comparisons disagree (one report)."""
        problems: list[str] = []
        for comparison in comparisons:
            known = self.levels.get(comparison.name)
            if known is None:
                problems.append(f"comparison {comparison.name} has no weights")
                continue
            missing = [lvl for lvl in comparison.levels if lvl not in known]
            extra = [lvl for lvl in known if lvl not in comparison.levels]
            if missing:
                problems.append(f"{comparison.name}: no weights for {', '.join(missing)}")
            if extra:
                problems.append(f"{comparison.name}: unknown levels {', '.join(extra)}")
        if problems:
            raise ValueError(
                "the match model does not fit the comparisons; re-run "
                "bench/identity/evaluate.py: " + "; ".join(problems)
            )

    def weight(self, comparison: str, level: str | None) -> float:
        if level is None:
            return 0.0
        return self.levels[comparison][level].weight

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "parcours-identity-fs/1",
            "prior": self.prior,
            "thresholds": {
                "certain": self.thresholds.certain,
                "probable": self.thresholds.probable,
                "possible": self.thresholds.possible,
            },
            "comparisons": {
                name: {lvl: {"m": w.m, "u": w.u} for lvl, w in levels.items()}
                for name, levels in self.levels.items()
            },
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MatchModel:
        if data.get("format") != "parcours-identity-fs/1":
            raise ValueError("not a parcours identity model (format parcours-identity-fs/1)")
        thresholds = data["thresholds"]
        return cls(
            prior=float(data["prior"]),
            levels={
                name: {lvl: LevelWeights(float(w["m"]), float(w["u"])) for lvl, w in lv.items()}
                for name, lv in data["comparisons"].items()
            },
            thresholds=Thresholds(
                float(thresholds["certain"]),
                float(thresholds["probable"]),
                float(thresholds["possible"]),
            ),
            metadata=data.get("metadata", {}),
        )

    @classmethod
    def load(cls, path: Path | None = None) -> MatchModel:
        """Load ``path``, or the model shipped in the package."""
        if path is None:
            text = resources.files("parcours.identity").joinpath("model.json").read_text("utf-8")
        else:
            text = path.read_text("utf-8")
        return cls.from_json(json.loads(text))
