"""Settings of the HL7 v2 interface, with the defaults documented in docs/hl7-interface.md."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Hl7Settings"]


def _flag(raw: str) -> bool:
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Hl7Settings:
    """How the listener behaves; read from ``PARCOURS_HL7_*`` by :meth:`from_env`."""

    # Frames larger than this are answered AR (ERR 207) and discarded; the connection stays open.
    max_message_bytes: int = 4 * 1024 * 1024
    # A connection silent for this long is closed (a half-sent frame is never acknowledged);
    # 0 keeps idle connections open forever (some HIS keep one connection for days).
    idle_timeout_seconds: float = 3600.0
    # MSH-18 empty: PAM FR 2.11.1 §6.1 names ISO 8859/15 as the French default.
    default_charset: str = "8859/15"
    # Test (.10) and demonstration (.11) INS authorities are dropped unless this is set.
    allow_test_ins: bool = False
    # Senders bound by a trust contract (RNIV §4.9.2.1): a VALI identity with an INS is kept
    # as qualified; without one every received identity is stored PROV without its INS.
    trust_contract: bool = True
    # Applied, ignored and rejected messages older than this are purged by ``purge``.
    retention_days: int = 90
    # Names used in MSH-3/MSH-4 of our ACKs when the message did not name us in MSH-5/MSH-6.
    application: str = "PARCOURS"
    facility: str = "PARCOURS"
    # TLS: certificate chain and key of the listener; with a client CA, mutual TLS is required.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The server-side TLS context these settings describe, or None for plain TCP."""
        if not self.tls_cert_file:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        if self.tls_client_ca_file:
            ctx.load_verify_locations(self.tls_client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, production: bool = True) -> Hl7Settings:
        """``production`` is the platform's setting: outside production (demo, tests, a
        regional test bench) test and demonstration INS are kept, as the FHIR API keeps them."""

        def get(name: str) -> str | None:
            return env.get(f"PARCOURS_HL7_{name}")

        kwargs: dict[str, object] = {"allow_test_ins": not production}
        if (v := get("MAX_MESSAGE_BYTES")) is not None:
            kwargs["max_message_bytes"] = int(v)
        if (v := get("IDLE_TIMEOUT_SECONDS")) is not None:
            kwargs["idle_timeout_seconds"] = float(v)
        if (v := get("DEFAULT_CHARSET")) is not None:
            kwargs["default_charset"] = v
        if (v := get("ALLOW_TEST_INS")) is not None:
            kwargs["allow_test_ins"] = _flag(v)
        if (v := get("TRUST_CONTRACT")) is not None:
            kwargs["trust_contract"] = _flag(v)
        if (v := get("RETENTION_DAYS")) is not None:
            kwargs["retention_days"] = int(v)
        if (v := get("APPLICATION")) is not None:
            kwargs["application"] = v
        if (v := get("FACILITY")) is not None:
            kwargs["facility"] = v
        for name in ("TLS_CERT_FILE", "TLS_KEY_FILE", "TLS_CLIENT_CA_FILE"):
            if (v := get(name)) is not None:
                kwargs[name.lower()] = v
        return cls(**kwargs)  # type: ignore[arg-type]
