"""French phonetic key (Soundex2, F. Brouard, "L'art des Soundex"), for BLOCKING only.

A phonetic equality never creates a link on its own: keys only choose which stored
identities are scored (RNIV 1 §3.1.1 allows similarity tools under the structure's control;
no national algorithm is prescribed). Soundex2 was chosen over English Soundex/Metaphone
because its rules are French (GU/QU -> K, PH -> F, silent final T/D/S, SCH -> S); no
maintained PyPI package implements it (abydos, which has FONEM and Henry, is unmaintained
since 2020), so the ten steps are written here.
"""

from __future__ import annotations

import re
from typing import Final

from .normalize import normalize_text

__all__ = ["soundex2"]

_PRIMES: Final = (
    ("GUI", "KI"), ("GUE", "KE"), ("GA", "KA"), ("GO", "KO"), ("GU", "K"),
    ("CA", "KA"), ("CO", "KO"), ("CU", "KU"), ("Q", "K"), ("CC", "K"), ("CK", "K"),
)  # fmt: skip
_PREFIXES: Final = (
    ("MAC", "MCC"), ("ASA", "AZA"), ("KN", "NN"), ("PF", "FF"), ("SCH", "SSS"), ("PH", "FF"),
)  # fmt: skip
_REPEATS: Final = re.compile(r"(.)\1+")


def soundex2(name: str, *, length: int = 4) -> str:
    """Soundex2 key of a name (letters only; hyphens, spaces and apostrophes are dropped)."""
    word = "".join(ch for ch in normalize_text(name) if ch.isalpha())
    if not word:
        return ""
    for old, new in _PRIMES:
        word = word.replace(old, new)
    # Every vowel but Y becomes A, except the first letter.
    word = word[0] + "".join("A" if ch in "EIOU" else ch for ch in word[1:])
    for old, new in _PREFIXES:
        if word.startswith(old):
            word = new + word[len(old) :]
            break
    # H is silent unless it follows C or S (CH, SH).
    word = word[0] + "".join(
        ch for i, ch in enumerate(word[1:], 1) if ch != "H" or word[i - 1] in "CS"
    )
    word = word[0] + "".join(
        ch for i, ch in enumerate(word[1:], 1) if ch != "Y" or word[i - 1] == "A"
    )
    word = word[0] + word[1:].rstrip("ATDS") if len(word) > 1 else word
    word = word[0] + word[1:].replace("A", "")
    word = _REPEATS.sub(r"\1", word)
    return word[:length]
