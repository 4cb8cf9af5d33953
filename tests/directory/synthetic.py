"""Synthetic Annuaire Santé extracts in the real PS_LibreAcces_Personne_activite layout.

Everything here is fictitious: names from a short list, RPPS "1099…" / ADELI "99…" numbers that
designate nobody, FINESS "…9…" and SIRET numbers made up. ``write_extract`` writes ``n``
professionals (one to three activity lines each) for the larger benchmark files; the small
committed file ``data/PS_LibreAcces_Personne_activite_synthetique.txt`` was written by
hand from ``activity()`` and is kept as it is (tests read the file, not this code).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from parcours.directory.annuaire_csv import COLUMNS

FAMILY = ("MARTIN", "BERNARD", "THOMAS", "PETIT", "ROBERT", "RICHARD", "DURAND", "DUBOIS")
GIVEN = ("Claire", "Louis", "Anne", "Paul", "Julie", "Marc", "Sophie", "Hugo", "Léa", "Émile")
COMMUNES = {
    "21": ("21000", "21231", "Dijon"),
    "25": ("25000", "25056", "Besançon"),
    "39": ("39000", "39300", "Lons-le-Saunier"),
    "71": ("71000", "71270", "Mâcon"),
    "75": ("75014", "75114", "Paris"),
    "69": ("69003", "69383", "Lyon"),
}
PROFESSIONS = (
    ("10", "Médecin", "SM54", "Médecine générale (SM)"),
    ("10", "Médecin", "SM04", "Cardiologie et maladies vasculaires (SM)"),
    ("60", "Infirmier", "", ""),
    ("21", "Pharmacien", "", ""),
    ("70", "Masseur-Kinésithérapeute", "", ""),
)


def line(values: dict[str, str]) -> str:
    # ANS ends every line with the separator.
    return "|".join(values.get(c, "") for c in COLUMNS) + "|\n"


def header() -> str:
    return "|".join(COLUMNS) + "|\n"


def activity(
    kind: str,
    pp: str,
    family: str,
    given: str,
    profession: tuple[str, str, str, str],
    dept: str,
    *,
    finess: str = "",
    siret: str = "",
    tech: str = "",
    name: str = "",
    mode: str = "L",
    phone: str = "",
    email: str = "",
) -> dict[str, str]:
    postal, insee, city = COMMUNES[dept]
    code, label, sf_code, sf_label = profession
    values = {
        "Type d'identifiant PP": kind,
        "Identifiant PP": pp,
        "Identification nationale PP": kind + pp,
        "Code civilité d'exercice": "DR" if code == "10" else "",
        "Libellé civilité d'exercice": "Docteur" if code == "10" else "",
        "Code civilité": "M",
        "Libellé civilité": "Monsieur",
        "Nom d'exercice": family,
        "Prénom d'exercice": given,
        "Code profession": code,
        "Libellé profession": label,
        "Code catégorie professionnelle": "C",
        "Libellé catégorie professionnelle": "Civil",
        "Code type savoir-faire": "S" if sf_code else "",
        "Libellé type savoir-faire": "Spécialité ordinale" if sf_code else "",
        "Code savoir-faire": sf_code,
        "Libellé savoir-faire": sf_label,
    }
    if finess or siret or tech:
        values.update(
            {
                "Code mode exercice": mode,
                "Libellé mode exercice": {"L": "Libéral", "S": "Salarié"}.get(mode, mode),
                "Numéro SIRET site": siret,
                "Numéro SIREN site": siret[:9],
                "Numéro FINESS site": finess,
                "Identifiant technique de la structure": tech,
                "Raison sociale site": name,
                "Numéro Voie (coord. structure)": "12",
                "Libellé type de voie (coord. structure)": "Rue",
                "Libellé Voie (coord. structure)": "des Tilleuls",
                "Code postal (coord. structure)": postal,
                "Code commune (coord. structure)": insee,
                "Libellé commune (coord. structure)": f"{postal} {city}".upper(),
                "Code pays (coord. structure)": "99000",
                "Libellé pays (coord. structure)": "France",
                "Téléphone (coord. structure)": phone,
                "Adresse e-mail (coord. structure)": email,
                "Code Département (structure)": dept,
                "Code genre activité": "GENR01",
                "Libellé genre activité": "Activité standard de soin ou de pharmacien",
            }
        )
    return values


def rpps(n: int) -> str:
    return f"1099{n:07d}"


def _lines(count: int, seed: int) -> Iterator[dict[str, str]]:
    rng = random.Random(seed)
    depts = list(COMMUNES)
    for n in range(1, count + 1):
        profession = rng.choice(PROFESSIONS)
        family, given = rng.choice(FAMILY), rng.choice(GIVEN)
        for a in range(rng.choice((1, 1, 1, 2, 3))):
            dept = rng.choice(depts)
            site = rng.randint(1, max(2, count // 4))
            finess = f"{dept}9{site:06d}" if a == 0 and rng.random() < 0.4 else ""
            yield activity(
                "8",
                rpps(n),
                family,
                given,
                profession,
                dept,
                finess=finess,
                siret="" if finess else f"9{dept}{site:06d}00011",
                name=f"Cabinet {site}",
                mode=rng.choice("LS"),
                phone=f"03{rng.randint(0, 99_999_999):08d}",
            )


def write_extract(path: Path, professionals: int, seed: int = 1) -> int:
    """A larger synthetic extract; returns its number of data lines."""
    lines = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(header())
        for values in _lines(professionals, seed):
            out.write(line(values))
            lines += 1
    return lines
