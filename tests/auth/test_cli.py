"""`parcours token|account|client|keys`, run as real processes on the test database."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable

import pyotp
import pytest

from parcours.auth import Authenticator, LoginRefused
from parcours.platform import Platform

from .conftest import Clock, Server, free_port


def _cli(database_url: str, *args: str, stdin: str = "", base_url: str = "") -> str:
    env = {**os.environ, "PARCOURS_DATABASE_URL": database_url}
    if base_url:
        env["PARCOURS_BASE_URL"] = base_url
    done = subprocess.run(
        [sys.executable, "-m", "parcours.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _kid(token: str) -> str:
    head = token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]
    return kid


def test_token_issue_is_accepted_by_a_running_server(
    database_url: str,
    make_platform: Callable[..., Platform],
    start_server: Callable[[Authenticator, int], Server],
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    platform = make_platform(base_url=base)
    doctor = platform.store.create({"resourceType": "Practitioner", "active": True})
    ref = f"Practitioner/{doctor['id']}"
    server = start_server(Authenticator(platform.store, platform.settings), port)
    # The server has signed nothing yet: the CLI process creates the key in the database.
    out = _cli(database_url, "token", "issue", "--practitioner", ref, "--ttl", "120", base_url=base)
    token = out.strip().splitlines()[-1]
    with server.client() as http:
        me = http.get("/auth/session", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["practitioner"] == ref and me.json()["roles"] == ["professional"]

    # keys rotate in another process: the old token stays valid, new ones use the new kid.
    rotated = _cli(database_url, "keys", "rotate", base_url=base)
    new_kid = rotated.split("new key ")[1].split(";")[0]
    assert new_kid != _kid(token)
    out = _cli(
        database_url,
        "token",
        "issue",
        "--practitioner",
        ref,
        "--ttl",
        "60",
        "--role",
        "coordinator",
        "--scope",
        "user/*.read",
        base_url=base,
    )
    fresh = out.strip().splitlines()[-1]
    assert _kid(fresh) == new_kid
    with server.client() as http:
        for bearer in (token, fresh):
            answer = http.get("/auth/session", headers={"Authorization": f"Bearer {bearer}"})
            assert answer.status_code == 200, answer.text
        assert answer.json()["roles"] == ["coordinator"]
        assert answer.json()["scopes"] == ["user/*.read"]
        keys = {k["kid"] for k in http.get("/auth/jwks.json").json()["keys"]}
    assert keys == {_kid(token), new_kid}


def test_token_roles_default_to_the_account(
    database_url: str, platform: Platform, clock: Clock
) -> None:
    auth = Authenticator(platform.store, platform.settings, clock=clock)
    auth.accounts.create(
        "ref", ["identity-referent"], practitioner="Practitioner/p7", password="x" * 12
    )
    token = _cli(database_url, "token", "issue", "--practitioner", "Practitioner/p7", "--ttl", "60")
    principal = auth.tokens.verify(token.strip().splitlines()[-1])
    assert principal.roles == frozenset({"identity-referent"})


def test_account_create_and_unlock(database_url: str, platform: Platform, clock: Clock) -> None:
    out = _cli(
        database_url,
        "account",
        "create",
        "--username",
        "cli-user",
        "--role",
        "coordinator",
        "--role",
        "analyst",
        "--password-stdin",
        stdin="a strong password 42\n",
    )
    assert "otpauth://totp/Parcours:cli-user" in out
    secret = out.split("totp secret: ")[1].split()[0]
    auth = Authenticator(platform.store, platform.settings, clock=clock)
    for _ in range(platform.settings.login_max_failures):
        with pytest.raises(LoginRefused):
            auth.login_local("cli-user", "wrong password!", None, None)
    with pytest.raises(LoginRefused, match="verrouillé"):
        auth.login_local("cli-user", "a strong password 42", pyotp.TOTP(secret).now(), None)
    assert "unlocked" in _cli(database_url, "account", "unlock", "cli-user")
    session = auth.login_local("cli-user", "a strong password 42", pyotp.TOTP(secret).now(), None)
    assert session.principal.roles == frozenset({"coordinator", "analyst"})

    generated = _cli(database_url, "account", "create", "--username", "gen", "--role", "admin")
    assert "password: " in generated


def test_client_create(database_url: str, platform: Platform) -> None:
    out = _cli(database_url, "client", "create", "--client-id", "lab", "--scope", "system/*.read")
    secret = out.split("(shown once): ")[1].strip()
    auth = Authenticator(platform.store, platform.settings)
    granted = auth.client_credentials("lab", secret, "system/Patient.read", "127.0.0.1")
    assert granted.principal.subject == "client/lab"
    assert granted.principal.roles == frozenset({"system"})
