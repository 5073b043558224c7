"""`gridwatch staff token`: the bearer token of one staff member for the acknowledgement API.

Needs the real signing secret, so the config is loaded with the real environment (never with the
stand-in values `config check` may use). Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

EXIT_CONFIG = 2


def add_commands(commands: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `staff token` on the `gridwatch` subparsers (``config_arg`` adds ``-c``)."""
    staff = commands.add_parser("staff", help="staff members").add_subparsers(metavar="ACTION")
    token = staff.add_parser(
        "token",
        help="print a staff member's API token (Authorization: Bearer ...)",
        description="Print the bearer token with which STAFF_ID acknowledges, confirms and resolves alerts "
        "through the API; it is derived from notifier.acks.signing_secret (changing the secret revokes it).",
    )
    config_arg(token)
    token.add_argument("staff_id", metavar="STAFF_ID", help="an id of `staff:`")
    token.set_defaults(handler=_cmd_staff_token)


def _cmd_staff_token(args: argparse.Namespace) -> int:
    from gridwatch.core.config.loader import load_config
    from notifier.ack_links import AckLinks

    if args.config is None:
        print("error: no config given: pass -c PATH or set GRIDWATCH_CONFIG", file=sys.stderr)
        return EXIT_CONFIG
    config = load_config(args.config).config  # os.environ: the real secret or a ConfigError (exit 2)
    if args.staff_id not in {person.id for person in config.staff}:
        print(f"error: no staff member {args.staff_id!r} in the config", file=sys.stderr)
        return EXIT_CONFIG
    acks = config.notifier.acks
    if acks.signing_secret is None:
        print("error: notifier.acks.signing_secret is not set", file=sys.stderr)
        return EXIT_CONFIG
    links = AckLinks(acks.signing_secret, acks.link_ttl_s, acks.public_url or "")
    print(links.staff_token(args.staff_id))
    return 0
