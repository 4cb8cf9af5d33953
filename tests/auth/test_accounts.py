"""Local accounts: password + TOTP, replay, lockout, rate limit, sessions, login events."""

from __future__ import annotations

from collections.abc import Callable

import pyotp
import pytest
from sqlalchemy import select

from parcours.auth import Authenticator, LoginEvent, LoginRefused, RateLimited
from parcours.auth.tables import auth_account, auth_session
from parcours.errors import Conflict, InvalidInput, Unauthenticated
from parcours.platform import Platform

from .conftest import Clock

PASSWORD = "correct horse battery"


def _account(auth: Authenticator, username: str = "jdupont", **kwargs: object) -> pyotp.TOTP:
    created = auth.accounts.create(
        username,
        ["coordinator"],
        password=PASSWORD,
        display="Jean Dupont",
        **kwargs,  # type: ignore[arg-type]
    )
    assert created.totp_secret and created.provisioning_uri
    assert created.provisioning_uri.startswith("otpauth://totp/Parcours:jdupont")
    return pyotp.TOTP(created.totp_secret)


def _events(auth: Authenticator) -> list[LoginEvent]:
    events: list[LoginEvent] = []
    auth.login_listeners.append(events.append)
    return events


def test_password_is_stored_as_argon2id(auth: Authenticator, platform: Platform) -> None:
    _account(auth)
    with platform.store.begin(readonly=True) as tx:
        stored = tx.conn.execute(select(auth_account.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(Conflict):
        _account(auth)
    with pytest.raises(InvalidInput, match="role"):
        auth.accounts.create("x", ["superuser"], password=PASSWORD)
    with pytest.raises(InvalidInput, match="12 characters"):
        auth.accounts.create("y", ["analyst"], password="short")


def test_login_with_password_and_totp(auth: Authenticator, clock: Clock) -> None:
    totp = _account(auth, practitioner="Practitioner/p9")
    events = _events(auth)
    session = auth.login_local("jdupont", PASSWORD, totp.at(clock.now), "10.0.0.1")
    principal = auth.session_principal(session.token)
    assert principal.subject == "Practitioner/p9"
    assert principal.practitioner == "Practitioner/p9"
    assert principal.roles == frozenset({"coordinator"})
    assert principal.method == "session" and principal.session == session.principal.session
    assert [(e.method, e.outcome, e.username, e.source) for e in events] == [
        ("local", "success", "jdupont", "10.0.0.1")
    ]
    assert events[0].principal == session.principal


@pytest.mark.parametrize(
    ("password", "code", "reason"),
    [
        ("wrong password!!", "right", "bad-password"),
        (PASSWORD, "000000", "bad-totp"),
        (PASSWORD, "", "totp-missing"),
        (PASSWORD, "abcdef", "bad-totp"),
    ],
)
def test_wrong_credentials(
    auth: Authenticator, clock: Clock, password: str, code: str, reason: str
) -> None:
    totp = _account(auth)
    events = _events(auth)
    if code == "right":
        code = totp.at(clock.now)
    elif code == "000000" and totp.at(clock.now) == "000000":
        code = "111111"
    with pytest.raises(LoginRefused) as refused:
        auth.login_local("jdupont", password, code, "10.0.0.1")
    assert refused.value.reason == reason
    assert events[-1].outcome == "failure" and events[-1].reason == reason
    assert events[-1].principal is None


def test_unknown_user_looks_like_a_bad_password(auth: Authenticator) -> None:
    _account(auth)
    events = _events(auth)
    with pytest.raises(LoginRefused) as unknown:
        auth.login_local("nobody", PASSWORD, "123456", "10.0.0.1")
    with pytest.raises(LoginRefused) as wrong:
        auth.login_local("jdupont", "wrong password!!", "123456", "10.0.0.1")
    assert unknown.value.message == wrong.value.message
    assert [e.reason for e in events] == ["unknown-user", "bad-password"]


def test_totp_drift_and_replay(auth: Authenticator, clock: Clock) -> None:
    totp = _account(auth)
    # The previous step's code is still accepted (clock drift of the phone).
    auth.login_local("jdupont", PASSWORD, totp.at(clock.now - 30), "10.0.0.1")
    # The same code again: refused, even though it is within the window.
    with pytest.raises(LoginRefused) as replay:
        auth.login_local("jdupont", PASSWORD, totp.at(clock.now - 30), "10.0.0.1")
    assert replay.value.reason == "totp-replay"
    # The current step's code is new: accepted; then it is spent too.
    auth.login_local("jdupont", PASSWORD, totp.at(clock.now), "10.0.0.1")
    with pytest.raises(LoginRefused, match="déjà servi"):
        auth.login_local("jdupont", PASSWORD, totp.at(clock.now), "10.0.0.1")
    # A code two steps old is out of the window.
    clock.advance(90)
    with pytest.raises(LoginRefused) as old:
        auth.login_local("jdupont", PASSWORD, totp.at(clock.now - 60), "10.0.0.1")
    assert old.value.reason == "bad-totp"


def test_lockout_after_failures_then_unlock_after_delay(auth: Authenticator, clock: Clock) -> None:
    totp = _account(auth)
    limit = auth.settings.login_max_failures
    for _ in range(limit):
        with pytest.raises(LoginRefused) as refused:
            auth.login_local("jdupont", "wrong password!!", None, "10.0.0.1")
        assert refused.value.reason == "bad-password"
        clock.advance(1)
    # Locked: even the right password and code are refused, with a French message.
    with pytest.raises(LoginRefused) as locked:
        auth.login_local("jdupont", PASSWORD, totp.at(clock.now), "10.0.0.2")
    assert locked.value.reason == "locked"
    assert "verrouillé" in locked.value.message
    clock.advance(auth.settings.lockout_seconds - limit - 5)
    with pytest.raises(LoginRefused, match="verrouillé"):
        auth.login_local("jdupont", PASSWORD, totp.at(clock.now), "10.0.0.2")
    clock.advance(10)
    auth.login_local("jdupont", PASSWORD, totp.at(clock.now), "10.0.0.2")


def test_lockout_is_shared_and_cleared_by_unlock(
    make_platform: Callable[..., Platform], clock: Clock
) -> None:
    one = make_platform(login_max_failures=2)
    auth_one = Authenticator(one.store, one.settings, clock=clock)
    totp = _account(auth_one)
    for _ in range(2):
        with pytest.raises(LoginRefused):
            auth_one.login_local("jdupont", "wrong password!!", None, "10.0.0.1")
    # Another process sees the lockout: it is in the database.
    two = make_platform(login_max_failures=2)
    auth_two = Authenticator(two.store, two.settings, clock=clock)
    with pytest.raises(LoginRefused, match="verrouillé"):
        auth_two.login_local("jdupont", PASSWORD, totp.at(clock.now), "10.0.0.1")
    assert auth_two.accounts.unlock("jdupont")
    auth_two.login_local("jdupont", PASSWORD, totp.at(clock.now), "10.0.0.1")


def test_success_resets_the_failure_count(auth: Authenticator, clock: Clock) -> None:
    totp = _account(auth)
    for _ in range(auth.settings.login_max_failures - 1):
        with pytest.raises(LoginRefused):
            auth.login_local("jdupont", "wrong password!!", None, "10.0.0.1")
    auth.login_local("jdupont", PASSWORD, totp.at(clock.now), "10.0.0.1")
    clock.advance(30)
    with pytest.raises(LoginRefused) as refused:
        auth.login_local("jdupont", "wrong password!!", None, "10.0.0.1")
    assert refused.value.reason == "bad-password"  # not locked


def test_rate_limit_per_address(make_platform: Callable[..., Platform], clock: Clock) -> None:
    platform = make_platform()
    auth = Authenticator(platform.store, platform.settings, clock=clock)
    auth.accounts.rate_limit = 5
    events = _events(auth)
    for _ in range(5):
        with pytest.raises(LoginRefused) as refused:
            auth.login_local(f"user{_}", "whatever password", None, "192.0.2.7")
        assert refused.value.reason == "unknown-user"
    with pytest.raises(RateLimited) as limited:
        auth.login_local("other", "whatever password", None, "192.0.2.7")
    # The clock stands still: the oldest attempt leaves the one-minute window in exactly 60 s.
    assert limited.value.retry_after == 60
    assert events[-1].reason == "rate-limited"
    # Another address is not affected.
    with pytest.raises(LoginRefused) as other:
        auth.login_local("other", "whatever password", None, "192.0.2.8")
    assert other.value.reason == "unknown-user"
    clock.advance(61)
    with pytest.raises(LoginRefused) as later:
        auth.login_local("other", "whatever password", None, "192.0.2.7")
    assert later.value.reason == "unknown-user"


def test_sessions_expire_and_logout_revokes(
    auth: Authenticator, clock: Clock, platform: Platform
) -> None:
    totp = _account(auth)
    session = auth.login_local("jdupont", PASSWORD, totp.at(clock.now), None)
    assert auth.session_principal(session.token).subject == "account/jdupont"
    with platform.store.begin(readonly=True) as tx:
        stored = tx.conn.execute(select(auth_session.c.id_hash)).scalar_one()
    assert stored != session.token  # only its hash is at rest
    clock.advance(auth.settings.session_seconds - 5)
    auth.session_principal(session.token)
    clock.advance(10)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.session_principal(session.token)

    clock.advance(30)
    second = auth.login_local("jdupont", PASSWORD, totp.at(clock.now), None)
    assert auth.logout(second.token)
    with pytest.raises(Unauthenticated, match="closed"):
        auth.session_principal(second.token)
    assert not auth.logout(second.token)
    with pytest.raises(Unauthenticated, match="unknown"):
        auth.session_principal("not-a-session")


def test_inactive_account_refused(auth: Authenticator, clock: Clock) -> None:
    totp = _account(auth)
    assert auth.accounts.set_active("jdupont", False)
    with pytest.raises(LoginRefused) as refused:
        auth.login_local("jdupont", PASSWORD, totp.at(clock.now), None)
    assert refused.value.reason == "inactive"


def test_failing_listener_fails_the_login(auth: Authenticator, clock: Clock) -> None:
    totp = _account(auth)

    def broken(_event: LoginEvent) -> None:
        raise RuntimeError("audit store down")

    auth.login_listeners.append(broken)
    with pytest.raises(RuntimeError):
        auth.login_local("jdupont", PASSWORD, totp.at(clock.now), None)
