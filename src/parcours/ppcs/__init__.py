"""The PPCS (Plan Personnalisé de Coordination en Santé, HAS model) as a FHIR CarePlan.

- ``model``: which CarePlan element holds which HAS section, the shipped CodeSystem;
- ``rules``: the store write hook keeping signed versions read-only (``on_write``);
- ``signing``: sign-off of a draft (signed version, Provenance, DocumentReference + PDF);
- ``render``: the document as HTML (Jinja2) and PDF (WeasyPrint) — ``render_html``,
  ``render_pdf``, the Python API of the web workspace;
- ``operations``: the FHIR operations ``$ppcs-html``, ``$ppcs-pdf`` and ``$ppcs-sign``.

See docs/ppcs.md.
"""

from parcours.ppcs.model import CATEGORY, SYSTEM_PPCS, code_system, is_ppcs
from parcours.ppcs.render import render_html, render_pdf
from parcours.ppcs.rules import completeness_issues, on_write
from parcours.ppcs.signing import SignOff, sign

__all__ = [
    "CATEGORY",
    "SYSTEM_PPCS",
    "SignOff",
    "code_system",
    "completeness_issues",
    "is_ppcs",
    "on_write",
    "render_html",
    "render_pdf",
    "sign",
]
