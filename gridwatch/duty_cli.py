"""`gridwatch duty who`: who is on duty for a grid at an instant."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any


def add_commands(commands: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `duty who` on the `gridwatch` subparsers (``config_arg`` adds ``-c``)."""
    duty = commands.add_parser("duty", help="duty rosters").add_subparsers(metavar="ACTION")
    who = duty.add_parser(
        "who",
        help="print the staff ids on duty for a grid (a JSON list)",
        description="Print, as a JSON list, the staff ids on duty for a grid at an instant (default: now), as the "
        "service reads the config's duty rosters: overrides, shifts and rotation. Nobody: [].",
    )
    config_arg(who)
    who.add_argument("--grid", required=True, help="grid id")
    who.add_argument(
        "--at",
        default=None,
        metavar="ISO8601",
        help="the instant, with an offset or Z, e.g. 2026-12-02T22:30+08:00 (default: now)",
    )
    who.set_defaults(handler=cmd_duty_who)


def cmd_duty_who(args: argparse.Namespace) -> int:
    from gridwatch.cli import EXIT_CONFIG, _StandInEnv
    from gridwatch.core.config.loader import load_config
    from notifier.duty import DutyRoster

    try:
        at = parse_instant(args.at) if args.at is not None else dt.datetime.now(dt.UTC)
    except ValueError as exc:
        print(f"error: --at: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.config is None:
        print("error: no config given: pass -c PATH or set GRIDWATCH_CONFIG", file=sys.stderr)
        return EXIT_CONFIG
    # Rosters need no secrets: read the config as `config check` does, with stand-ins for unset ${ENV}s.
    config = load_config(args.config, env=_StandInEnv()).config
    roster = DutyRoster.from_config(config)
    try:
        staff = roster.on_duty(args.grid, at)
    except KeyError:
        known = ", ".join(roster.grids()) or "none"
        print(f"error: unknown grid {args.grid!r} (grids: {known})", file=sys.stderr)
        return EXIT_CONFIG
    print(json.dumps(staff))
    return 0


def parse_instant(text: str) -> dt.datetime:
    """ISO 8601 with an offset or ``Z``; a time without one is refused (whose clock would it be?)."""
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date and time: {text!r}") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{text!r} has no offset: give one, e.g. {text}+08:00 or {text}Z")
    return at
