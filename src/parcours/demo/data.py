"""Reference data for the demo region: communes, names, streets, organisations.

Communes are real communes of Bourgogne-Franche-Comté with their postal code and their INSEE
(COG) code. The COG codes were written from the INSEE Code officiel géographique as remembered
by the author, not read from a file in this tree: check them against the COG before relying on
them for anything but a demonstration. Everything else built from these lists (people,
FINESS, RPPS, INS, phone numbers, street numbers) is fictitious.
"""

from __future__ import annotations

from typing import Final, NamedTuple


class Commune(NamedTuple):
    name: str
    postal_code: str
    insee: str  # COG code (5 characters)


# The 8 départements of Bourgogne-Franche-Comté: code -> name.
DEPARTEMENTS: Final[dict[str, str]] = {
    "21": "Côte-d'Or",
    "25": "Doubs",
    "39": "Jura",
    "58": "Nièvre",
    "70": "Haute-Saône",
    "71": "Saône-et-Loire",
    "89": "Yonne",
    "90": "Territoire de Belfort",
}

# Per département, the préfecture first (it hosts the CHU / main CH and the DAC).
COMMUNES: Final[dict[str, tuple[Commune, ...]]] = {
    "21": (
        Commune("Dijon", "21000", "21231"),
        Commune("Beaune", "21200", "21054"),
        Commune("Montbard", "21500", "21425"),
        Commune("Semur-en-Auxois", "21140", "21603"),
        Commune("Châtillon-sur-Seine", "21400", "21154"),
        Commune("Chenôve", "21300", "21166"),
        Commune("Auxonne", "21130", "21038"),
        Commune("Nuits-Saint-Georges", "21700", "21464"),
    ),
    "25": (
        Commune("Besançon", "25000", "25056"),
        Commune("Montbéliard", "25200", "25388"),
        Commune("Pontarlier", "25300", "25462"),
        Commune("Audincourt", "25400", "25031"),
        Commune("Morteau", "25500", "25411"),
        Commune("Baume-les-Dames", "25110", "25047"),
        Commune("Ornans", "25290", "25434"),
    ),
    "39": (
        Commune("Lons-le-Saunier", "39000", "39300"),
        Commune("Dole", "39100", "39198"),
        Commune("Saint-Claude", "39200", "39478"),
        Commune("Champagnole", "39300", "39097"),
        Commune("Poligny", "39800", "39434"),
        Commune("Arbois", "39600", "39013"),
    ),
    "58": (
        Commune("Nevers", "58000", "58194"),
        Commune("Cosne-Cours-sur-Loire", "58200", "58086"),
        Commune("Decize", "58300", "58095"),
        Commune("Clamecy", "58500", "58079"),
        Commune("Varennes-Vauzelles", "58640", "58303"),
    ),
    "70": (
        Commune("Vesoul", "70000", "70550"),
        Commune("Lure", "70200", "70310"),
        Commune("Gray", "70100", "70279"),
        Commune("Luxeuil-les-Bains", "70300", "70311"),
        Commune("Héricourt", "70400", "70285"),
    ),
    "71": (
        Commune("Mâcon", "71000", "71270"),
        Commune("Chalon-sur-Saône", "71100", "71076"),
        Commune("Le Creusot", "71200", "71153"),
        Commune("Montceau-les-Mines", "71300", "71306"),
        Commune("Autun", "71400", "71014"),
        Commune("Paray-le-Monial", "71600", "71342"),
        Commune("Louhans", "71500", "71263"),
        Commune("Tournus", "71700", "71543"),
    ),
    "89": (
        Commune("Auxerre", "89000", "89024"),
        Commune("Sens", "89100", "89387"),
        Commune("Joigny", "89300", "89206"),
        Commune("Avallon", "89200", "89025"),
        Commune("Tonnerre", "89700", "89418"),
        Commune("Migennes", "89400", "89257"),
    ),
    "90": (
        Commune("Belfort", "90000", "90010"),
        Commune("Delle", "90100", "90033"),
        Commune("Valdoie", "90300", "90099"),
        Commune("Giromagny", "90200", "90052"),
    ),
}

# Birthplaces outside the region: (label, COG code). Corsica exercises the 2A/2B NIR key rule.
OTHER_FRENCH_BIRTHPLACES: Final[tuple[Commune, ...]] = (
    Commune("Paris 15e Arrondissement", "75015", "75115"),
    Commune("Lyon", "69001", "69123"),
    Commune("Strasbourg", "67000", "67482"),
    Commune("Nancy", "54000", "54395"),
    Commune("Ajaccio", "20000", "2A004"),
    Commune("Bastia", "20200", "2B033"),
)

# Born abroad: COG country code (99 + 3 digits) and the country name.
FOREIGN_BIRTHPLACES: Final[tuple[tuple[str, str], ...]] = (
    ("Portugal", "99139"),
    ("Maroc", "99350"),
    ("Algérie", "99352"),
    ("Italie", "99127"),
    ("Turquie", "99208"),
    ("Tunisie", "99351"),
)

# fmt: off
# Birth names, display form (accents kept); stored traits are uppercased without diacritics.
FAMILY_NAMES: Final[tuple[str, ...]] = (
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois",
    "Moreau", "Laurent", "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David",
    "Bertrand", "Morel", "Fournier", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine",
    "Rousseau", "Vincent", "Müller", "Lefebvre", "Faure", "André", "Mercier", "Blanc",
    "Guérin", "Boyer", "Garnier", "Chevalier", "François", "Legrand", "Gauthier", "Perrin",
    "Jacquot", "Bourgeois", "Prost", "Mathey", "Cuenot", "Jeannin", "Vuillemin", "Bouvier",
    "Besson", "Ménétrier", "Pernot", "Grosjean", "Duvernois", "Bourgogne", "Lhomme",
    "D'Almeida", "N'Diaye", "D'Arras", "De La Fontaine", "Le Goff", "Saint-Denis",
    "Dos Santos", "Pereira", "Ferreira", "Benali", "Haddad", "Yılmaz", "Nguyen", "Brûlé",
    "Cœur", "Thévenot", "Génot", "Boël", "Daigremont", "Hénault",
)

# Given names, display form. A compound given name is one entry ("Jean-Pierre", "Marie Claire").
MALE_GIVEN: Final[tuple[str, ...]] = (
    "Jean", "Pierre", "Michel", "André", "Philippe", "Alain", "Bernard", "Jacques",
    "Jean-Pierre", "Jean-Claude", "Jean-Marie", "Gérard", "Daniel", "René", "Raymond",
    "François", "Hervé", "Joël", "Noël", "Lucien", "Maurice", "Étienne", "Frédéric",
    "Sébastien", "Jérôme", "Thierry", "Christophe", "Mohamed", "Karim", "Loïc", "Benoît",
    "Léo", "Théo", "Mathéo", "Raphaël", "Jean Louis",
)
FEMALE_GIVEN: Final[tuple[str, ...]] = (
    "Marie", "Jeanne", "Françoise", "Monique", "Catherine", "Nathalie", "Isabelle",
    "Jacqueline", "Anne-Marie", "Marie Claire", "Marie-Thérèse", "Simone", "Colette",
    "Hélène", "Geneviève", "Odette", "Renée", "Andrée", "Josiane", "Bernadette", "Élise",
    "Chloé", "Léa", "Zoé", "Noémie", "Maëlle", "Agnès", "Cécile", "Aurélie", "Fatima",
    "Émilie", "Marie-Hélène", "Anaïs", "Inès", "Héloïse", "Anne Sophie",
)

STREETS: Final[tuple[str, ...]] = (
    "rue de la République", "rue Victor Hugo", "avenue du Général de Gaulle",
    "rue Jean Jaurès", "place de la Libération", "rue des Vignes", "chemin des Prés",
    "rue Pasteur", "boulevard Carnot", "rue de l'Église", "impasse des Tilleuls",
    "rue du Moulin", "route de Lyon", "rue Gambetta", "allée des Marronniers",
    "rue Lamartine", "quai de Saône", "rue des Écoles", "grande rue", "rue de la Gare",
)

# EHPAD, MSP names: fictitious establishment names, reused across communes.
EHPAD_NAMES: Final[tuple[str, ...]] = (
    "Les Tilleuls", "Les Charmilles", "La Roseraie", "Le Clos Fleuri", "Les Vergers",
    "Les Glycines", "La Source", "Les Hortensias",
)

# fmt: on

# Hospitals by département: (commune index in COMMUNES, name, CHU?). Names of public
# hospital types are generic; FINESS numbers, addresses and phones are fictitious.
HOSPITALS: Final[dict[str, tuple[tuple[int, str, bool], ...]]] = {
    "21": ((0, "CHU Dijon Bourgogne", True), (1, "Centre hospitalier de Beaune", False)),
    "25": ((0, "CHU de Besançon", True), (2, "Centre hospitalier de Pontarlier", False)),
    "39": (
        (0, "Centre hospitalier de Lons-le-Saunier", False),
        (1, "Centre hospitalier de Dole", False),
    ),
    "58": ((0, "Centre hospitalier de Nevers", False),),
    "70": ((0, "Centre hospitalier de Vesoul", False),),
    "71": (
        (1, "Centre hospitalier de Chalon-sur-Saône", False),
        (0, "Centre hospitalier de Mâcon", False),
    ),
    "89": ((0, "Centre hospitalier d'Auxerre", False), (1, "Centre hospitalier de Sens", False)),
    "90": ((0, "Hôpital de Belfort", False),),
}
