"""Synthetic French identities with realistic corruptions and ground truth.

A "store" (identities already known to the platform) and an "incoming" flow: part of the
incoming records are corrupted copies of stored persons (typos, lost accents, compound given
names written with a space, married name typed as birth name, day/month swap, year typo,
name and first name swapped, missing INS...), the others are new persons, some of them hard
negatives (twins, siblings, homonyms, parent and child sharing a first name).

Every record is a FHIR R4 Patient dict in FR Core form, so the benchmark also exercises the
extraction code. INS use the test authority (1.2.250.1.213.1.4.10) and valid keys.

    python bench/identity/generate.py --persons 20000 --seed 7 --out /tmp/identity-synth
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from parcours.identity import ins_key
from parcours.identity.frcore import (
    BIRTH_LIST_GIVEN_NAME_URL,
    BIRTH_PLACE_URL,
    CS_V2_0203_FR,
    CS_V2_0203_HL7,
    IDENTITY_RELIABILITY_URL,
    INSEE_CODE_URL,
    INSEE_COMMUNE_SYSTEM,
)


def _words(text: str) -> list[str]:
    return text.split()


# Frequent French surnames (INSEE birth-name frequency lists, top of the table), with the
# accents they carry on identity documents.
SURNAMES = _words("""
MARTIN BERNARD THOMAS PETIT ROBERT RICHARD DURAND DUBOIS MOREAU LAURENT SIMON MICHEL
LEFÈVRE LEROY ROUX DAVID BERTRAND MOREL FOURNIER GIRARD BONNET DUPONT LAMBERT FONTAINE ROUSSEAU
VINCENT MULLER LEFÈBVRE FAURE ANDRÉ MERCIER BLANC GUÉRIN BOYER GARNIER CHEVALIER FRANÇOIS LEGRAND
GAUTHIER GARCIA PERRIN ROBIN CLÉMENT MORIN NICOLAS HENRY ROUSSEL MATHIEU GAUTIER MASSON MARCHAND
DUVAL DENIS DUMONT MARIE LEMAIRE NOËL MEYER DUFOUR MEUNIER BRUN BLANCHARD GIRAUD JOLY RIVIÈRE
LUCAS BRUNET GAILLARD BARBIER ARNAUD MARTINEZ GÉRARD ROCHE RENARD SCHMITT ROY LEROUX COLIN VIDAL
CARON PICARD ROGER FABRE AUBERT LEMOINE RENAUD DUMAS LACROIX OLIVIER PHILIPPE BOURGEOIS PIERRE
BENOÎT REY LECLERC PAYET ROLLAND LECLERCQ GUILLAUME LECOMTE LÓPEZ JEAN DUPUY GUILLOT HUBERT BERGER
CARPENTIER SANCHEZ DUPUIS MOULIN LOUIS DESCHAMPS HUET VASSEUR PEREZ BOUCHER FLEURY ROYER KLEIN
JACQUET ADAM PARIS POIRIER MARTY AUBRY GUYOT CARRÉ CHARLES RENAULT CHARPENTIER MÉNARD MAILLARD
BARON BERTIN BAILLY HERVÉ SCHNEIDER FERNANDEZ LE_GALL COLLET LÉGER BOUVIER JULIEN PRÉVOST MILLET
PERROT DANIEL LE_ROUX COUSIN GERMAIN BRETON BESSON LANGLOIS RÉMY LE_GOFF PELLETIER LÉVÊQUE PERRIER
LEBLANC BARRÉ LEBRUN MARCHAL WEBER MALLET HAMON BOULANGER JACOB MONNIER MICHAUD RODRIGUEZ GUICHARD
GILLET ÉTIENNE GRONDIN POULAIN TESSIER CHEVALLIER COLLIN CHAUVIN DA_SILVA BOUCHET GAY LEMAÎTRE
BÉNARD MARÉCHAL HUMBERT REYNAUD ANTOINE HOARAU PERRET BARTHÉLEMY CORDIER PICHON LEJEUNE GILBERT
LAMY DELAUNAY PASQUIER CARLIER LAPORTE D'ALMEIDA N'DIAYE SAINT-MARTIN DE_LA_FONTAINE L'HÔTE
MONNOT BOURGOGNE VUILLEMIN JOUFFROY COURVOISIER GUYON BOILLOT CUENOT FAIVRE GIRARDOT""")
# Multi-word names are written with "_" in the list above.
SURNAMES = sorted({s.replace("_", " ") for s in SURNAMES})

MALE = _words("""
JEAN PIERRE MICHEL ANDRÉ PHILIPPE LOUIS ALAIN JACQUES BERNARD RENÉ DANIEL ROGER PAUL
MARCEL CHRISTIAN GÉRARD ROBERT HENRI GEORGES CLAUDE FRANÇOIS NICOLAS PATRICK JOSEPH MAURICE
GUY SERGE ÉRIC FRÉDÉRIC LAURENT STÉPHANE DAVID OLIVIER THIERRY PASCAL CHRISTOPHE SÉBASTIEN JULIEN
THOMAS ALEXANDRE ANTOINE MAXIME LUCAS HUGO LÉO GABRIEL RAPHAËL ARTHUR NATHAN THÉO ENZO YVES
DIDIER BRUNO JÉRÔME CÉDRIC YANNICK FABRICE JOËL LOÏC MATHIS NOÉ JULES ADAM MOHAMED KÉVIN""")
FEMALE = _words("""
MARIE JEANNE FRANÇOISE MONIQUE CATHERINE NATHALIE ISABELLE JACQUELINE ANNE SYLVIE
MARTINE MADELEINE NICOLE SUZANNE HÉLÈNE CHRISTINE MARGUERITE DENISE LOUISE CHRISTIANE YVONNE
VALÉRIE SANDRINE STÉPHANIE CÉLINE SOPHIE JULIE AURÉLIE CAROLINE ÉMILIE CHANTAL GINETTE ODETTE
CLAIRE CAMILLE LÉA MANON CHLOÉ EMMA INÈS JADE LOUISE ALICE LINA ZOÉ AGATHE THÉRÈSE SIMONE
BRIGITTE DOMINIQUE ÉLISABETH PAULETTE GENEVIÈVE LAETITIA AMÉLIE MÉLANIE ÉLODIE NOÉMIE ANAÏS
OCÉANE CLÉMENCE JOSIANE ODILE COLETTE HUGUETTE LUCIENNE RENÉE ÉLISE""")
# Compound first names are common in France and written with a hyphen on documents.
MALE_COMPOUND = [
    "JEAN-PIERRE",
    "JEAN-MARIE",
    "JEAN-CLAUDE",
    "JEAN-LUC",
    "JEAN-FRANÇOIS",
    "JEAN-PAUL",
    "JEAN-MICHEL",
    "PIERRE-YVES",
    "JEAN-BAPTISTE",
    "MARC-ANTOINE",
]
FEMALE_COMPOUND = ["MARIE-CLAIRE", "MARIE-THÉRÈSE", "MARIE-FRANÇOISE", "MARIE-CHRISTINE",
                   "ANNE-MARIE", "MARIE-LAURE", "MARIE-HÉLÈNE", "MARIE-PIERRE", "ANNE-SOPHIE",
                   "MARIE-NOËLLE"]  # fmt: skip

# COG of Bourgogne-Franche-Comté communes (Côte-d'Or 21, Doubs 25, Jura 39, Nièvre 58,
# Haute-Saône 70, Saône-et-Loire 71, Yonne 89, Territoire de Belfort 90). Synthetic use only:
# the codes were written from memory of the INSEE COG, not checked against the COG file.
BFC_COMMUNES = {
    "21231": "Dijon", "21054": "Beaune", "21166": "Chenôve", "21617": "Talant",
    "21515": "Quetigny", "21425": "Montbard", "25056": "Besançon", "25388": "Montbéliard",
    "25462": "Pontarlier", "25031": "Audincourt", "25580": "Valentigney", "25424": "Ornans",
    "39300": "Lons-le-Saunier", "39198": "Dole", "39478": "Saint-Claude", "39097": "Champagnole",
    "58194": "Nevers", "58086": "Cosne-Cours-sur-Loire", "58079": "Clamecy",
    "70550": "Vesoul", "70285": "Héricourt", "70310": "Lure", "70311": "Luxeuil-les-Bains",
    "70279": "Gray", "71270": "Mâcon", "71076": "Chalon-sur-Saône", "71153": "Le Creusot",
    "71306": "Montceau-les-Mines", "71014": "Autun", "71342": "Paray-le-Monial",
    "71263": "Louhans", "71176": "Digoin", "89024": "Auxerre", "89387": "Sens",
    "89206": "Joigny", "89025": "Avallon", "90010": "Belfort", "90065": "Delle",
}  # fmt: skip
OTHER_FRANCE = {
    "75056": "Paris",
    "69123": "Lyon",
    "13055": "Marseille",
    "67482": "Strasbourg",
    "2A004": "Ajaccio",
    "2B033": "Bastia",
    "59350": "Lille",
    "31555": "Toulouse",
}
ABROAD = {"99350": "Maroc", "99352": "Algérie", "99351": "Tunisie", "99139": "Portugal",
          "99127": "Italie", "99134": "Espagne", "99109": "Allemagne"}  # fmt: skip

TEST_OID = "urn:oid:1.2.250.1.213.1.4.10"
TODAY = date(2026, 11, 1)


@dataclass
class Person:
    pid: int
    sex: str  # M / F
    birth_name: str
    given: list[str]
    birth_date: date
    birthplace: str
    used_name: str | None = None
    ins: str | None = None
    order: int = 0
    tags: list[str] = field(default_factory=list)


def make_ins(sex: str, born: date, place: str, order: int) -> str:
    dept, commune = place[:2], place[2:]
    first13 = (
        f"{1 if sex == 'M' else 2}{born.year % 100:02d}{born.month:02d}{dept}{commune}{order:03d}"
    )
    return first13 + ins_key(first13)


def _birth_date(rng: random.Random) -> date:
    # Mostly adults; about 15 % minors, as in a coordination platform's file.
    age = rng.randint(0, 17) if rng.random() < 0.15 else rng.randint(18, 98)
    return TODAY - timedelta(days=365 * age + rng.randint(0, 364))


def _given(rng: random.Random, sex: str) -> list[str]:
    simple, compound = (MALE, MALE_COMPOUND) if sex == "M" else (FEMALE, FEMALE_COMPOUND)
    first = rng.choice(compound) if rng.random() < 0.2 else rng.choice(simple)
    others = rng.sample(simple, k=rng.choice((0, 1, 1, 2)))
    return [first] + [g for g in others if g != first]


def _place(rng: random.Random) -> str:
    r = rng.random()
    pool = BFC_COMMUNES if r < 0.8 else OTHER_FRANCE if r < 0.9 else ABROAD
    return rng.choice(sorted(pool))


def new_person(rng: random.Random, pid: int) -> Person:
    sex = rng.choice("MF")
    born = _birth_date(rng)
    person = Person(pid, sex, rng.choice(SURNAMES), _given(rng, sex), born, _place(rng))
    if sex == "F" and born < TODAY - timedelta(days=365 * 25) and rng.random() < 0.5:
        person.used_name = rng.choice(SURNAMES)
    person.order = rng.randint(1, 999)
    person.ins = make_ins(sex, born, person.birthplace, person.order)
    return person


def hard_negative(rng: random.Random, pid: int, of: Person) -> Person:
    """A different person who looks like ``of``: twin, sibling, homonym, parent/child."""
    kind = rng.choice(("twin", "sibling", "homonym", "parent"))
    other = new_person(rng, pid)
    other.tags = [kind]
    if kind in ("twin", "sibling", "parent"):
        other.birth_name = of.birth_name
        other.birthplace = of.birthplace if rng.random() < 0.8 else other.birthplace
    if kind == "twin":
        other.birth_date = of.birth_date
        other.sex = of.sex if rng.random() < 0.5 else other.sex
        other.given = _given(rng, other.sex)
        while other.given[0] == of.given[0]:
            other.given = _given(rng, other.sex)
    elif kind == "homonym":
        other.birth_name, other.given, other.sex = of.birth_name, list(of.given), of.sex
    elif kind == "parent":
        other.sex = of.sex
        other.given = [of.given[0], *_given(rng, of.sex)[1:]]
        other.birth_date = of.birth_date - timedelta(days=365 * rng.randint(20, 40))
    if other.sex == "M" or other.birth_date > TODAY - timedelta(days=365 * 25):
        other.used_name = None
    other.order = rng.randint(1, 999)
    while other.order == of.order:
        other.order = rng.randint(1, 999)
    other.ins = make_ins(other.sex, other.birth_date, other.birthplace, other.order)
    return other


# --- corruptions -----------------------------------------------------------------------

_KEYBOARD = "AZERTYUIOPQSDFGHJKLMWXCVBN"


def typo(rng: random.Random, text: str) -> str:
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text))
    op = rng.choice(("sub", "del", "ins", "swap"))
    if op == "sub":
        return text[:i] + rng.choice(_KEYBOARD) + text[i + 1 :]
    if op == "del":
        return text[:i] + text[i + 1 :]
    if op == "ins":
        return text[:i] + rng.choice(_KEYBOARD) + text[i:]
    if i < len(text) - 1:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text


def strip_accents(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def corrupt(rng: random.Random, p: Person) -> tuple[Person, list[str]]:
    """A copy of ``p`` as another sender typed it, with the list of corruptions applied."""
    q = replace(p, given=list(p.given), tags=[])
    done: list[str] = []
    if rng.random() < 0.3:
        q.birth_name, q.given = strip_accents(q.birth_name), [strip_accents(g) for g in q.given]
        q.used_name = strip_accents(q.used_name) if q.used_name else None
        done.append("lost_accents")
    if q.used_name and rng.random() < 0.4:
        q.birth_name, q.used_name = q.used_name, None if rng.random() < 0.5 else q.used_name
        done.append("married_name_as_birth_name")
    if rng.random() < 0.02:
        q.birth_name, q.given[0] = q.given[0], q.birth_name
        done.append("name_first_name_swapped")
    if rng.random() < 0.12:
        q.birth_name = typo(rng, q.birth_name)
        done.append("birth_name_typo")
    if rng.random() < 0.08:
        q.given[0] = typo(rng, q.given[0])
        done.append("first_name_typo")
    if "-" in q.given[0] and rng.random() < 0.5:
        q.given[0] = q.given[0].replace("-", " ")
        done.append("compound_with_space")
    elif "-" in q.given[0] and rng.random() < 0.2:
        q.given[0] = q.given[0].split("-")[0]
        done.append("compound_cut")
    if len(q.given) > 1 and rng.random() < 0.04:
        q.given = q.given[1:] + q.given[:1]
        done.append("usual_first_name_first")
    d = q.birth_date
    r = rng.random()
    if r < 0.04 and d.day <= 12 and d.day != d.month:
        q.birth_date = date(d.year, d.day, d.month)
        done.append("day_month_swap")
    elif r < 0.07:
        digits = list(f"{d.year:04d}")
        pos = rng.choice((2, 3))
        digits[pos] = str((int(digits[pos]) + rng.choice((1, 9))) % 10)
        try:
            q.birth_date = date(int("".join(digits)), d.month, d.day)
            done.append("year_typo")
        except ValueError:
            pass
    elif r < 0.09:
        try:
            q.birth_date = date(d.year, d.month, max(1, (d.day + rng.choice((1, -1, 10))) % 29))
            done.append("day_typo")
        except ValueError:
            pass
    elif r < 0.10:
        q.birth_date = date(d.year, 12, 31)
        done.append("unknown_day_month")
    if rng.random() < 0.5:
        q.ins = None
        done.append("missing_ins")
    if rng.random() < 0.08:
        q.birthplace = "99999"
        done.append("birthplace_unknown")
    elif rng.random() < 0.03:
        q.birthplace = _place(rng)
        done.append("birthplace_other")
    if rng.random() < 0.3:
        done.append("no_given_names_list")
        q.tags.append("no_list")
    return q, done


def to_fhir(p: Person, rid: str, sender: str, ipp: str, *, with_ins: bool) -> dict[str, Any]:
    name: dict[str, Any] = {"use": "official", "family": p.birth_name, "given": [p.given[0]]}
    if "no_list" not in p.tags:
        name["extension"] = [{"url": BIRTH_LIST_GIVEN_NAME_URL, "valueString": " ".join(p.given)}]
    names = [name]
    if p.used_name:
        names.append({"use": "usual", "family": p.used_name})
    identifiers: list[dict[str, Any]] = [
        {
            "use": "usual",
            "type": {"coding": [{"system": CS_V2_0203_HL7, "code": "PI"}]},
            "system": sender,
            "value": ipp,
        }
    ]
    status = "PROV"
    if with_ins and p.ins:
        identifiers.append(
            {
                "use": "official",
                "type": {"coding": [{"system": CS_V2_0203_FR, "code": "INS-NIR-TEST"}]},
                "system": TEST_OID,
                "value": p.ins,
            }
        )
        status = "QUAL"
    return {
        "resourceType": "Patient",
        "id": rid,
        "extension": [
            {
                "url": IDENTITY_RELIABILITY_URL,
                "extension": [
                    {
                        "url": "identityStatus",
                        "valueCoding": {
                            "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status",
                            "code": status,
                        },
                    }
                ],
            },
            {
                "url": BIRTH_PLACE_URL,
                "valueAddress": {
                    "extension": [
                        {
                            "url": INSEE_CODE_URL,
                            "valueCoding": {"system": INSEE_COMMUNE_SYSTEM, "code": p.birthplace},
                        }
                    ]
                },
            },
        ],
        "identifier": identifiers,
        "name": names,
        "gender": {"M": "male", "F": "female"}[p.sex],
        "birthDate": p.birth_date.isoformat(),
    }


@dataclass
class Dataset:
    store: list[dict[str, Any]]
    incoming: list[dict[str, Any]]
    truth: dict[str, int]
    """record id -> person id, for both sides."""
    corruptions: dict[str, list[str]]


def generate(persons: int, seed: int) -> Dataset:
    """``persons`` stored identities and as many incoming records: 50 % duplicates of stored
    persons, 10 % hard negatives (a look-alike of a stored person), 40 % new persons."""
    rng = random.Random(seed)
    store_people = [new_person(rng, pid) for pid in range(persons)]
    store, incoming, truth, corruptions = [], [], {}, {}
    for person in store_people:
        rid = f"s{person.pid}"
        store.append(
            to_fhir(person, rid, "urn:oid:1.2.250.1.999.1", f"A{person.pid:07d}",
                    with_ins=rng.random() < 0.7)
        )  # fmt: skip
        truth[rid] = person.pid
    next_pid = persons
    for n in range(persons):
        rid = f"i{n}"
        r = rng.random()
        if r < 0.5:
            source = rng.choice(store_people)
            record, done = corrupt(rng, source)
            corruptions[rid] = done
            truth[rid] = source.pid
        elif r < 0.6:
            record = hard_negative(rng, next_pid, rng.choice(store_people))
            corruptions[rid] = ["hard_negative", *record.tags]
            truth[rid] = next_pid
            next_pid += 1
        else:
            record = new_person(rng, next_pid)
            corruptions[rid] = ["new"]
            truth[rid] = next_pid
            next_pid += 1
        incoming.append(
            to_fhir(record, rid, "urn:oid:1.2.250.1.999.2", f"B{n:07d}",
                    with_ins=record.ins is not None and rng.random() < 0.7)
        )  # fmt: skip
    return Dataset(store, incoming, truth, corruptions)


def _jsonl(path: Path, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    data = generate(args.persons, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    _jsonl(args.out / "store.jsonl", data.store)
    _jsonl(args.out / "incoming.jsonl", data.incoming)
    (args.out / "truth.json").write_text(
        json.dumps({"truth": data.truth, "corruptions": data.corruptions}), "utf-8"
    )
    print(f"wrote {len(data.store)} stored and {len(data.incoming)} incoming records to {args.out}")


if __name__ == "__main__":
    main()
