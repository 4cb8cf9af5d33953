"""Local accounts for the demo users (``parcours.demo.DEMO_USERS``), for trying the workspace.

Each demo user gets an account named after it, mapped to its Practitioner, with its roles and
the documented password ``DEMO_PASSWORD`` (README, "Comptes de démonstration"). They have no
second factor so that the demo needs no authenticator app; real accounts are made with
``parcours account create``, which always sets up TOTP. Refused on a production platform.
"""

from __future__ import annotations

from parcours.auth import AccountService
from parcours.config import Settings
from parcours.demo import DEMO_USERS
from parcours.errors import Conflict
from parcours.store import Store

__all__ = ["DEMO_PASSWORD", "ensure_demo_accounts"]

DEMO_PASSWORD = "parcours-demo-2024"


def ensure_demo_accounts(store: Store, settings: Settings) -> list[str]:
    """Create the missing demo accounts; the usernames created (existing ones are kept)."""
    if settings.production:
        raise Conflict("demo accounts are never created on a production platform")
    accounts = AccountService(store, settings)
    created = []
    for user in DEMO_USERS:
        if accounts.get(user.username) is not None:
            continue
        accounts.create(
            user.username,
            user.roles,
            practitioner=user.practitioner,
            display=user.display,
            password=DEMO_PASSWORD,
            totp=False,
        )
        created.append(user.username)
    return created
