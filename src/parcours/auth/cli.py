"""`parcours token|account|client|keys …`: operations on authentication.

``parcours token issue`` prints the token on its last line, so scripts can take ``tail -1``.
Secrets (generated passwords, TOTP secrets, client secrets) are printed once and never stored
in clear.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, Any

from parcours.cli_support import on_platform

if TYPE_CHECKING:
    from parcours.platform import Platform

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    return on_platform(lambda platform: int(args.auth_func(args, platform)), args.command)


def _token_issue(args: argparse.Namespace, platform: Platform) -> int:
    from parcours.auth.accounts import AccountService, parse_roles
    from parcours.auth.tokens import TokenService
    from parcours.security.principal import Principal

    accounts = AccountService(platform.store, platform.settings)
    practitioner = args.practitioner
    if practitioner is None and args.subject is None:
        print("parcours token issue: give --practitioner or --subject", file=sys.stderr)
        return 1
    display = args.display or ""
    roles: frozenset[str]
    if args.role:
        roles = parse_roles(args.role)
    else:
        account = accounts.find_for_practitioner(practitioner) if practitioner else None
        roles = (
            account.roles if account else frozenset({"professional" if practitioner else "system"})
        )
        display = display or (account.display if account else "")
    if practitioner is not None:
        kind, _, ident = practitioner.partition("/")
        if kind != "Practitioner" or not ident:
            print("parcours token issue: --practitioner takes Practitioner/ID", file=sys.stderr)
            return 1
        with platform.store.begin(readonly=True) as tx:
            if not tx.exists("Practitioner", ident):
                print(f"warning: {practitioner} is not in the store", file=sys.stderr)
    principal = Principal(
        subject=args.subject or practitioner,
        roles=roles,
        practitioner=practitioner,
        scopes=frozenset(s for scope in args.scope or [] for s in scope.split()),
        display=display,
    )
    token = TokenService(platform.store, platform.settings).issue(principal, args.ttl)
    print(f"# {principal.subject} roles={' '.join(sorted(roles))} ttl={args.ttl}s", file=sys.stderr)
    print(token)
    return 0


def _account_create(args: argparse.Namespace, platform: Platform) -> int:
    from parcours.auth.accounts import AccountService

    password: str | None = None
    if args.password_stdin:
        password = (
            sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()
        )
    created = AccountService(platform.store, platform.settings).create(
        args.username,
        args.role,
        practitioner=args.practitioner,
        display=args.display or "",
        password=password,
        totp=not args.no_totp,
    )
    roles = " ".join(sorted(created.account.roles))
    print(f"account {created.account.username} created (roles: {roles})")
    if created.password:
        print(f"password: {created.password}")
    if created.totp_secret:
        print(f"totp secret: {created.totp_secret}")
        print(f"totp uri: {created.provisioning_uri}")
    return 0


def _account_unlock(args: argparse.Namespace, platform: Platform) -> int:
    from parcours.auth.accounts import AccountService

    if not AccountService(platform.store, platform.settings).unlock(args.username):
        print(f"parcours account unlock: no account named {args.username!r}", file=sys.stderr)
        return 1
    print(f"account {args.username} unlocked")
    return 0


def _client_create(args: argparse.Namespace, platform: Platform) -> int:
    from parcours.auth.accounts import AccountService

    created = AccountService(platform.store, platform.settings).create_client(
        args.client_id, args.scope, roles=args.role or ["system"], display=args.display or ""
    )
    scopes = " ".join(sorted(created.client.scopes))
    print(f"client {created.client.client_id} created (scopes: {scopes})")
    print(f"client secret (shown once): {created.secret}")
    return 0


def _keys_rotate(_args: argparse.Namespace, platform: Platform) -> int:
    from parcours.auth.tokens import key_ring

    ring = key_ring(platform.store, platform.settings)
    purged = ring.purge()
    kid = ring.rotate()
    print(f"signing with new key {kid}; {purged} expired key(s) removed")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``token``, ``account``, ``client`` and ``keys`` commands."""
    token = subparsers.add_parser("token", help="platform bearer tokens (JWT)")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    issue = token_sub.add_parser(
        "issue", help="print a short-lived token (on the last line) signed with the server's keys"
    )
    issue.add_argument("--practitioner", help="Practitioner/ID the token is for")
    issue.add_argument("--subject", help="subject when not a professional (admin, client/…)")
    issue.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    issue.add_argument(
        "--role", action="append", help="repeat for several (default: the account's roles)"
    )
    issue.add_argument("--scope", action="append", help="SMART scope(s), e.g. 'user/*.read'")
    issue.add_argument("--display", help="name shown in audit trails")
    issue.set_defaults(func=_run, auth_func=_token_issue)

    account = subparsers.add_parser("account", help="local accounts (password + TOTP)")
    account_sub = account.add_subparsers(dest="account_command", required=True)
    create = account_sub.add_parser(
        "create", help="create an account; prints a generated password and the TOTP secret"
    )
    create.add_argument("--username", required=True)
    create.add_argument("--role", action="append", required=True, help="repeat for several")
    create.add_argument("--practitioner", help="Practitioner/ID this account is")
    create.add_argument("--display", help="name shown in the UI and audit trails")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    create.add_argument("--no-totp", action="store_true", help="no second factor (not advised)")
    create.set_defaults(func=_run, auth_func=_account_create)
    unlock = account_sub.add_parser("unlock", help="clear the lockout of an account")
    unlock.add_argument("username")
    unlock.set_defaults(func=_run, auth_func=_account_unlock)

    client = subparsers.add_parser("client", help="system clients (OAuth2 client credentials)")
    client_sub = client.add_subparsers(dest="client_command", required=True)
    ccreate = client_sub.add_parser("create", help="create a client; prints its secret once")
    ccreate.add_argument("--client-id", required=True)
    ccreate.add_argument(
        "--scope", action="append", required=True, help="e.g. 'system/*.read' (repeatable)"
    )
    ccreate.add_argument("--role", action="append", help="default: system")
    ccreate.add_argument("--display")
    ccreate.set_defaults(func=_run, auth_func=_client_create)

    keys = subparsers.add_parser("keys", help="token signing keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser(
        "rotate", help="sign with a new key from now on (old tokens stay valid)"
    )
    rotate.set_defaults(func=_run, auth_func=_keys_rotate)
