"""`gridwatch users add|list|disable|passwd` and `gridwatch tokens create`: the console's accounts.

They open the service database (``service.database``) like `gridwatch registry`. Grids, registries and
the staff id of a user must exist in the loaded config (exit 2 otherwise). Passwords are read from
stdin only (``--password-stdin``), never from the command line (it shows in ``ps`` and shell history).
Every change is audited. Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridwatch.console.accounts import Accounts
    from gridwatch.core.audit import AuditLog
    from gridwatch.core.config.loader import LoadedConfig

EXIT_REFUSED = 1
EXIT_CONFIG = 2


def add_commands(commands: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `users ACTION` and `tokens create` on the `gridwatch` subparsers (``config_arg`` adds ``-c``)."""
    from gridwatch.console.roles import ROLES

    users = commands.add_parser("users", help="console users").add_subparsers(metavar="ACTION")
    add = users.add_parser("add", help="add a console user (password from stdin)")
    config_arg(add)
    add.add_argument("name")
    add.add_argument("--role", required=True, help=f"one of {', '.join(ROLES)}")
    add.add_argument(
        "--grid", dest="grids", metavar="GRID", action="append", default=[], help="a grid of the user (repeatable)"
    )
    add.add_argument(
        "--registry",
        dest="registries",
        metavar="REGISTRY",
        action="append",
        default=[],
        help="a registry of the user (repeatable)",
    )
    add.add_argument("--staff-id", default=None, help="the staff member (staff:) this user is")
    _password_arg(add)
    _actor_arg(add)
    add.set_defaults(handler=cmd_add)

    listing = users.add_parser("list", help="list console users as JSON lines (never hashes)")
    config_arg(listing)
    listing.set_defaults(handler=cmd_list)

    disable = users.add_parser("disable", help="stop a user signing in; ends their sessions and tokens")
    config_arg(disable)
    disable.add_argument("name")
    _actor_arg(disable)
    disable.set_defaults(handler=cmd_disable)

    passwd = users.add_parser("passwd", help="set a user's password (from stdin); ends their sessions")
    config_arg(passwd)
    passwd.add_argument("name")
    _password_arg(passwd)
    _actor_arg(passwd)
    passwd.set_defaults(handler=cmd_passwd)

    tokens = commands.add_parser("tokens", help="console API tokens").add_subparsers(metavar="ACTION")
    create = tokens.add_parser(
        "create",
        help="create a bearer token acting as user NAME; printed once, alone on the last line",
    )
    config_arg(create)
    create.add_argument("name", metavar="NAME", help="the user the token acts as")
    _actor_arg(create)
    create.set_defaults(handler=cmd_token_create)


def _password_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin", action="store_true", required=True, help="read the password from stdin (one line)"
    )


def _actor_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", default=os.environ.get("USER", "cli"), help="who is doing this (audit log)")


def _load(path: Any) -> LoadedConfig:
    from gridwatch.core.config.loader import load_config

    if path is None:
        print("error: no config given: pass -c PATH or set GRIDWATCH_CONFIG", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)
    return load_config(path)


def _read_password() -> str:
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


class _Open:
    """The accounts on the service database and the audit log, closed together."""

    def __init__(self, loaded: LoadedConfig) -> None:
        from gridwatch.console.accounts import Accounts
        from gridwatch.core.audit import AuditLog
        from gridwatch.wiring import build_database, data_paths

        self.database = build_database(loaded)
        self.database.open()
        self.accounts: Accounts = Accounts(self.database)
        self.audit: AuditLog = AuditLog(data_paths(loaded).audit_log)

    def __enter__(self) -> _Open:
        return self

    def __exit__(self, *exc: object) -> None:
        self.audit.close()
        self.database.close()


def cmd_add(args: argparse.Namespace) -> int:
    from gridwatch.console.accounts import AccountError
    from gridwatch.console.roles import ROLES

    loaded = _load(args.config)
    config = loaded.config
    problems = []
    if args.role not in ROLES:
        problems.append(f"unknown role {args.role!r} (one of {', '.join(ROLES)})")
    grid_ids = {g.id for g in config.grids}
    problems += [f"unknown grid {g!r} (not in grids:)" for g in args.grids if g not in grid_ids]
    registry_names = {r.name for r in config.registries}
    problems += [f"unknown registry {r!r} (not in registries:)" for r in args.registries if r not in registry_names]
    if args.staff_id is not None and args.staff_id not in {p.id for p in config.staff}:
        problems.append(f"unknown staff id {args.staff_id!r} (not in staff:)")
    # A user of these roles without their scope would see nothing at all: refused rather than added.
    if args.role == "operator" and not args.grids:
        problems.append("an operator needs at least one --grid")
    if args.role == "registrar" and not args.registries:
        problems.append("a registrar needs at least one --registry")
    if args.role == "staff" and args.staff_id is None:
        problems.append("a staff user needs --staff-id")
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    password = _read_password()
    with _Open(loaded) as site:
        try:
            user = site.accounts.add_user(
                args.name,
                args.role,
                password,
                grids=args.grids,
                registries=args.registries,
                staff_id=args.staff_id,
            )
        except AccountError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        site.audit.append("console.user.added", actor=args.actor, target=user.name, details=_listing(user))
    print(f"added user {user.name} ({user.role})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with _Open(_load(args.config)) as site:
        for user in site.accounts.list_users():
            print(json.dumps(_listing(user), ensure_ascii=False))
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    return _change(args, "console.user.disabled", lambda accounts: accounts.disable(args.name))


def cmd_passwd(args: argparse.Namespace) -> int:
    password = _read_password()
    return _change(args, "console.user.password_set", lambda accounts: accounts.set_password(args.name, password))


def _change(args: argparse.Namespace, action: str, change: Callable[[Accounts], None]) -> int:
    from gridwatch.console.accounts import AccountError

    with _Open(_load(args.config)) as site:
        try:
            change(site.accounts)
        except AccountError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        site.audit.append(action, actor=args.actor, target=args.name)
    print(f"{action.rsplit('.', 1)[-1].replace('_', ' ')}: {args.name}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    from gridwatch.console.accounts import AccountError

    with _Open(_load(args.config)) as site:
        try:
            token = site.accounts.create_token(args.name)
        except AccountError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        site.audit.append("console.token.created", actor=args.actor, target=args.name)
    print(f"token for {args.name} (shown once; send it as 'Authorization: Bearer <token>'):")
    print(token)
    return 0


def _listing(user: Any) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "grids": list(user.grids),
        "registries": list(user.registries),
        "staff_id": user.staff_id,
        "disabled": user.disabled,
    }
