"""Who is calling: the bearer-token check, behind one seam the security module will replace.

``authenticate`` is the only function the HTTP glue calls; today it accepts exactly the
configured admin token (compared in constant time). With no admin token configured no token
is valid, so a fresh installation is closed rather than open.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from parcours.config import Settings
from parcours.errors import Unauthenticated
from parcours.security.principal import ADMIN, Principal

__all__ = ["Principal", "authenticate"]


def authenticate(headers: Mapping[str, str], settings: Settings) -> Principal:
    """The caller of a request whose (lower-case) headers are given, or ``Unauthenticated``."""
    raw = headers.get("authorization")
    if raw is None:
        raise Unauthenticated("this request needs an Authorization: Bearer <token> header")
    scheme, _, token = raw.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("the Authorization header must use the Bearer scheme")
    expected = settings.admin_token
    # compare_digest on bytes: constant time whatever the (possibly non-ASCII) input.
    if not expected or not hmac.compare_digest(
        token.strip().encode("utf-8"), expected.encode("utf-8")
    ):
        raise Unauthenticated("the bearer token is not valid")
    return ADMIN
