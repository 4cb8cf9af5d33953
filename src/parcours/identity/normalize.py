"""RNIV character rules for names and given names (RNIV 1 Annexe III, §4.10).

Storage form: upper case, no diacritics, hyphen and apostrophe kept, any other character
becomes a space, spaces collapsed. Comparison form: the storage form with hyphen and
apostrophe read as a space, since RNIV says they are never a discrepancy [EXI PP 20].
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "NO_GIVEN_NAME",
    "NO_NAME",
    "comparison_form",
    "first_given_name_consistent",
    "first_given_name_from_document",
    "normalize_given_names",
    "normalize_name",
    "normalize_text",
]

NO_NAME: Final = "SANSNOM"
NO_GIVEN_NAME: Final = "SANSPRENOM"

# NFKD does not decompose these letters; RNIV is silent on them, so use the usual
# ASCII transliteration (decision recorded in docs/identity.md).
_LETTERS: Final = str.maketrans(
    {
        "\u0152": "OE", "\u0153": "OE", "\u00c6": "AE", "\u00e6": "AE",  # ligatures OE, AE
        "\u00df": "SS", "\u1e9e": "SS",  # sharp s
        "\u00d8": "O", "\u00f8": "O", "\u0141": "L", "\u0142": "L",  # O and L with stroke
        "\u0110": "D", "\u0111": "D", "\u00d0": "D", "\u00f0": "D",  # D with stroke, eth
        "\u00de": "TH", "\u00fe": "TH", "\u0131": "I",  # thorn, dotless i
        # typographic apostrophes and primes
        "\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'", "\u2032": "'",
        # typographic hyphens and dashes
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    }
)  # fmt: skip
_OTHER: Final = re.compile(r"[^A-Z' -]")
_SPACED_MARK: Final = re.compile(r" *([-']) *")
_REPEATED_MARK: Final = re.compile(r"([-'])[-']+")
_PLACEHOLDER: Final = re.compile(r"X+")


def normalize_text(raw: str | None) -> str:
    """Storage form of a name-like string; ``""`` when nothing usable is left."""
    if not raw:
        return ""
    text = unicodedata.normalize("NFKD", raw.translate(_LETTERS))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).upper()
    text = _OTHER.sub(" ", text)
    text = " ".join(text.split())
    # "JEAN - PIERRE" and "JEAN--PIERRE" are typing variants of one hyphen.
    text = _REPEATED_MARK.sub(r"\1", _SPACED_MARK.sub(r"\1", text))
    return text.strip("-' ")


def normalize_name(raw: str | None) -> str:
    """Birth name or used name in storage form; ``SANSNOM`` when empty or ``XXX``."""
    text = normalize_text(raw)
    if not text or _PLACEHOLDER.fullmatch(text) or text == NO_NAME:
        return NO_NAME
    return text


def normalize_given_names(raw: str | None) -> str:
    """A given name or the space-separated list of birth given names; ``SANSPRENOM`` if none.

    Commas are not recorded (RNIV Annexe III): they become spaces like any other separator.
    """
    text = normalize_text(raw)
    if not text or _PLACEHOLDER.fullmatch(text) or text == NO_GIVEN_NAME:
        return NO_GIVEN_NAME
    return text


def comparison_form(value: str) -> str:
    """Hyphen and apostrophe read as a space, for comparison only (never for storage)."""
    return " ".join(value.replace("-", " ").replace("'", " ").split())


def first_given_name_from_document(raw: str) -> str:
    """First birth given name as read on an identity document (RNIV Annexe III).

    Everything before the first comma ("Jean Roger, Pierre" -> JEAN ROGER), else the first
    hyphen-joined string ("Jean-Roger Pierre" -> JEAN-ROGER), else the first word.
    When the document is ambiguous RNIV asks the patient; this function cannot, so callers
    that know the answer should pass it directly.
    """
    if "," in raw:
        return normalize_given_names(raw.split(",", 1)[0])
    text = normalize_given_names(raw)
    if text == NO_GIVEN_NAME:
        return text
    return text.split(" ", 1)[0]


def first_given_name_consistent(first: str, given_names: str) -> bool:
    """True when ``first`` is the start of the list of given names [EXI SI 29].

    With the list ``MAX PATRICK`` the allowed values are MAX, MAX PATRICK and MAX-PATRICK,
    not PATRICK: the comparison is on whole words, hyphen and apostrophe counting as a space.
    """
    first_words = comparison_form(normalize_given_names(first)).split(" ")
    list_words = comparison_form(normalize_given_names(given_names)).split(" ")
    return list_words[: len(first_words)] == first_words
