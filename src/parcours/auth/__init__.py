"""Authentication: who is calling (``Authenticator``), logins, sessions and platform tokens.

See docs/authentication.md for the flows, the settings and the Pro Santé Connect mapping.
"""

from parcours.auth.accounts import AccountService, LoginRefused, RateLimited
from parcours.auth.authenticator import SESSION_COOKIE, Authenticator, LoginEvent, Session
from parcours.auth.oidc import OidcError
from parcours.auth.routes import auth_routes
from parcours.auth.tokens import TokenService, issue_token, verify_token

__all__ = [
    "SESSION_COOKIE",
    "AccountService",
    "Authenticator",
    "LoginEvent",
    "LoginRefused",
    "OidcError",
    "RateLimited",
    "Session",
    "TokenService",
    "auth_routes",
    "issue_token",
    "verify_token",
]
