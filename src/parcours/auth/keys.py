"""The platform's signing keys: ES256, kept in the database, rotated, cached per process.

A key signs for ``settings.signing_key_days`` days; after that the next signature creates a
new key. A key stays valid for verification until the last token it may have signed has
expired (``sign_until + token_max_seconds``), so a rotation never logs anybody out. Every
process (API workers, the CLI, a restarted server) reads the same rows, which is why a token
printed by ``parcours token issue`` is accepted by a running server.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import and_, insert, or_, select, update

from parcours.auth.tables import auth_signing_key
from parcours.config import Settings
from parcours.store import Store

__all__ = ["ALGORITHM", "KeyRing", "SigningKey"]

ALGORITHM = "ES256"
# An unknown kid reloads the keys from the database, at most this often for the same kid: a
# flood of forged tokens must not turn into a flood of queries.
_RELOAD_SECONDS = 1.0
_LOCK_KEY = "parcours.auth.signing-key"
# A process re-reads the keys before signing at least this often, so a rotation made by
# another process (``parcours keys rotate``) is followed within this delay; the retired key
# stays valid for verification this much longer than its tokens can live.
_SIGNING_REFRESH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    key: ECKey
    sign_until: int  # ms
    verify_until: int  # ms


class KeyRing:
    """The signing keys of one store, as this process sees them."""

    def __init__(
        self, store: Store, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, SigningKey] = {}
        self._loaded_at: float | None = None
        self._misses: dict[str, float] = {}

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _load(self) -> None:
        now = self._now_ms()
        with self.store.begin(readonly=True) as tx:
            rows = tx.conn.execute(
                select(auth_signing_key).where(
                    auth_signing_key.c.verify_until > now, auth_signing_key.c.retired_at.is_(None)
                )
            ).all()
        self._keys = {row.kid: _from_row(row) for row in rows}
        self._loaded_at = time.monotonic()

    def signing_key(self) -> SigningKey:
        """The key to sign with now, creating one when the current one is past its days."""
        now = self._now_ms()
        with self._lock:
            if (
                self._loaded_at is None
                or time.monotonic() - self._loaded_at > _SIGNING_REFRESH_SECONDS
            ):
                self._load()
            current = self._current(now)
            if current is None:
                self._load()
                current = self._current(now)
            if current is None:
                current = self._create(now, force=False)
            return current

    def _current(self, now: int) -> SigningKey | None:
        usable = [k for k in self._keys.values() if k.sign_until > now and k.verify_until > now]
        return max(usable, key=lambda k: k.sign_until) if usable else None

    def _create(self, now: int, *, force: bool) -> SigningKey:
        days_ms = self.settings.signing_key_days * 86_400_000
        token_ms = self.settings.token_max_seconds * 1000
        with self.store.begin() as tx:
            # Two processes rotating at once would both create a key (harmless but untidy):
            # the second one, once the first has committed, finds the new key and uses it.
            tx.lock_key(_LOCK_KEY)
            if not force:
                row = tx.conn.execute(
                    select(auth_signing_key)
                    .where(
                        auth_signing_key.c.sign_until > now,
                        auth_signing_key.c.retired_at.is_(None),
                    )
                    .order_by(auth_signing_key.c.sign_until.desc())
                    .limit(1)
                ).first()
                if row is not None:
                    key = _from_row(row)
                    self._keys[key.kid] = key
                    return key
            else:
                # The keys that signed until now stop signing but keep verifying their tokens.
                tx.conn.execute(
                    update(auth_signing_key)
                    .where(
                        auth_signing_key.c.sign_until > now,
                        auth_signing_key.c.retired_at.is_(None),
                    )
                    .values(
                        sign_until=now,
                        verify_until=now + token_ms + int(2000 * _SIGNING_REFRESH_SECONDS),
                    )
                )
            kid = f"{time.strftime('%Y%m%d', time.gmtime(now / 1000))}-{secrets.token_hex(6)}"
            jwk = ECKey.generate_key(
                "P-256", parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True
            )
            tx.conn.execute(
                insert(auth_signing_key).values(
                    kid=kid,
                    algorithm=ALGORITHM,
                    private_jwk=json.dumps(jwk.as_dict(private=True)),
                    created_at=now,
                    sign_until=now + days_ms,
                    verify_until=now + days_ms + token_ms,
                )
            )
        self._load()
        return self._keys[kid]

    def rotate(self) -> str:
        """Start signing with a new key now; returns its kid. Old tokens stay valid."""
        with self._lock:
            return self._create(self._now_ms(), force=True).kid

    def retire(self, kid: str) -> bool:
        """Withdraw a key at once (compromise): every token it signed is refused."""
        now = self._now_ms()
        with self.store.begin() as tx:
            done = tx.conn.execute(
                update(auth_signing_key)
                .where(auth_signing_key.c.kid == kid, auth_signing_key.c.retired_at.is_(None))
                .values(retired_at=now)
            ).rowcount
        with self._lock:
            self._load()
        return bool(done)

    def verification_key(self, kid: str) -> ECKey | None:
        """The public key for ``kid``, reloading the keys when this process has not seen it."""
        now = self._now_ms()
        with self._lock:
            key = self._keys.get(kid)
            if key is None or key.verify_until <= now:
                # A kid is random and its row is committed before any token names it, so a
                # kid missed a moment ago is a forgery: don't query again for it for a while.
                missed = self._misses.get(kid)
                if missed is None or time.monotonic() - missed > _RELOAD_SECONDS:
                    self._load()
                    key = self._keys.get(kid)
                    if key is None:
                        if len(self._misses) > 1000:
                            self._misses.clear()
                        self._misses[kid] = time.monotonic()
        if key is None or key.verify_until <= now:
            return None
        return key.key

    def jwks(self) -> dict[str, Any]:
        """The public keys still accepted, as a JWK Set (RFC 7517)."""
        now = self._now_ms()
        with self._lock:
            self._load()
            keys = sorted(self._keys.values(), key=lambda k: k.sign_until, reverse=True)
        return {"keys": [k.key.as_dict(private=False) for k in keys if k.verify_until > now]}

    def purge(self) -> int:
        """Delete keys no token can need any more; returns how many."""
        now = self._now_ms()
        with self.store.begin() as tx:
            return int(
                tx.conn.execute(
                    auth_signing_key.delete().where(
                        or_(
                            auth_signing_key.c.verify_until <= now,
                            and_(
                                auth_signing_key.c.retired_at.is_not(None),
                                auth_signing_key.c.retired_at <= now,
                            ),
                        )
                    )
                ).rowcount
            )


def _from_row(row: Any) -> SigningKey:
    key = ECKey.import_key(json.loads(row.private_jwk))
    return SigningKey(row.kid, key, int(row.sign_until), int(row.verify_until))
