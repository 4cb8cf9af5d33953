"""The PPCS as a document: HTML from a Jinja2 template, PDF with WeasyPrint.

``render_html(tx, careplan_id)`` and ``render_pdf(tx, careplan_id)`` are the Python API (the
web workspace calls them in its own transaction, whose ``tx.access`` is the caller's); the FHIR
operations ``$ppcs-html`` / ``$ppcs-pdf`` call them too. Both check that the caller may read the
CarePlan and refuse pseudonymised access (the document names the person).

The PDF is tagged (PDF/UA-1) so that screen readers follow the sections and the table of
actions; the HTML is the same markup (``lang="fr"``, one ``h2`` per HAS section, a captioned
table with header cells). WeasyPrint fetches nothing: the stylesheet is inlined and any other
URL is refused.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, NoReturn

from jinja2 import Environment, PackageLoader, select_autoescape

from parcours.errors import Forbidden, InvalidResource, Issue
from parcours.ppcs.access import caller, check_read
from parcours.ppcs.model import is_ppcs
from parcours.ppcs.view import build_view
from parcours.store import Transaction

__all__ = ["html_document", "pdf_document", "read_ppcs", "render_html", "render_pdf"]


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("parcours.ppcs", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _css() -> str:
    return resources.files("parcours.ppcs").joinpath("templates/ppcs.css").read_text("utf-8")


def read_ppcs(tx: Transaction, careplan_id: str, version: int | None = None) -> dict[str, Any]:
    """The PPCS CarePlan (current, or one version), if the caller may read it."""
    careplan = (
        tx.read("CarePlan", careplan_id)
        if version is None
        else tx.vread("CarePlan", careplan_id, version)
    )
    check_read(tx, "CarePlan", careplan_id)
    access = caller(tx)
    if access is not None and access.pseudonymised:
        raise Forbidden("a PPCS document names the person: not for pseudonymised access")
    if not is_ppcs(careplan):
        raise InvalidResource(
            f"CarePlan/{careplan_id} is not a PPCS (its category has no code 'ppcs' of "
            "https://parcours.sante.fr/fhir/CodeSystem/ppcs)",
            [Issue("not a PPCS", "CarePlan.category", "business-rule")],
        )
    return careplan


def html_document(tx: Transaction, careplan: dict[str, Any]) -> str:
    """The HTML page of a PPCS CarePlan already read (and checked) by the caller."""
    template = _environment().get_template("ppcs.html")
    return template.render(v=build_view(tx, careplan), css=_css())


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> NoReturn:
    raise ValueError(f"the PPCS document fetches nothing ({url[:60]})")


def pdf_document(html: str) -> bytes:
    from weasyprint import HTML  # heavy import: only where a PDF is made

    pdf: bytes = HTML(string=html, url_fetcher=_no_fetch).write_pdf(pdf_variant="pdf/ua-1")
    return pdf


def render_html(tx: Transaction, careplan_id: str, version: int | None = None) -> str:
    return html_document(tx, read_ppcs(tx, careplan_id, version))


def render_pdf(tx: Transaction, careplan_id: str, version: int | None = None) -> bytes:
    return pdf_document(render_html(tx, careplan_id, version))
