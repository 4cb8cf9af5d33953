"""What the browser tests do on every page: log in, and check accessibility with axe-core."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parcours.platform import Platform

TOKEN = "web-e2e-admin-token-" + "x" * 12


@dataclass
class Server:
    base: str
    mllp_port: int
    platform: Platform
    database_url: str


AXE = Path(__file__).parent / "vendor" / "axe.min.js"

DEMO_PASSWORD = "parcours-demo-2024"
# axe-core impacts that fail a page (RGAA: nothing that blocks or seriously hinders a user).
BLOCKING = ("serious", "critical")


def log_in(page: Any, base: str, username: str, target: str = "/") -> None:
    page.goto(f"{base}/connexion?suivant={target}")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base}{target}")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """The serious and critical violations of WCAG 2.x A/AA rules on the current page."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
            resultTypes: ['violations'],
        })"""
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"][:5]],
        }
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


def assert_accessible(page: Any) -> None:
    found = axe_violations(page)
    assert not found, f"axe-core violations on {page.url}: {found}"
