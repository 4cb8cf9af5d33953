"""The directory of professionals and structures, from the Annuaire Santé.

``import_directory(store, path)`` loads the public extract of annuaire.sante.fr (the
``PS_LibreAcces_Personne_activite`` pipe-separated file) or a FHIR export of the Annuaire Santé
API as Practitioner, PractitionerRole and Organization resources following the ``as-*``
profiles, idempotently; ``parcours directory import FILE`` is its command line. See
docs/directory.md.
"""

from .annuaire_csv import CsvFormatError, Rejected
from .importer import BATCH_SIZE, ImportReport, import_directory

__all__ = ["BATCH_SIZE", "CsvFormatError", "ImportReport", "Rejected", "import_directory"]
