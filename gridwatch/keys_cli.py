"""The `keys` subcommands: rotate the master key over the registries' data keys, list them.

Rotation without downtime: put the new master key in ``GRIDWATCH_DATA_KEY`` and the old one in
``GRIDWATCH_DATA_KEYS_OLD``, run ``gridwatch keys rotate -c DIR`` (it re-wraps every registry's data key
under the new master key; the objects sealed by those data keys are not touched), then restart the
service with the new key when convenient. A running service keeps its unwrapped data keys, and a
process started with either key configured opens both wrappings (the key id says which master key
wrapped each data key). Once ``keys list`` shows every registry under the new key, the old master key
may be dropped from ``GRIDWATCH_DATA_KEYS_OLD``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gridwatch.core.config.loader import LoadedConfig

EXIT_REFUSED = 1
EXIT_CONFIG = 2


def add_commands(commands: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `keys ACTION` on the `gridwatch` subparsers (``config_arg`` adds ``-c``)."""
    keys = commands.add_parser("keys", help="rotate and list the registries' data keys")
    actions = keys.add_subparsers(metavar="ACTION")

    rotate = actions.add_parser(
        "rotate",
        help="re-wrap every registry's data key under the current master key (GRIDWATCH_DATA_KEY)",
        description="Re-wrap every registry's data key under the master key of GRIDWATCH_DATA_KEY; keys wrapped "
        "by an earlier master key are opened with GRIDWATCH_DATA_KEYS_OLD. Templates and evidence are not "
        "touched; the running service goes on. Audited.",
    )
    config_arg(rotate)
    rotate.add_argument("--actor", default=os.environ.get("USER", "cli"), help="who is doing this (audit log)")
    rotate.set_defaults(handler=cmd_rotate)

    listing = actions.add_parser("list", help="list the registries' data key ids and the master key wrapping each")
    config_arg(listing)
    listing.set_defaults(handler=cmd_list)


def cmd_rotate(args: argparse.Namespace) -> int:
    from gridwatch.core.audit import AuditLog
    from gridwatch.core.crypto import DecryptError
    from gridwatch.wiring import data_paths, registry_keys

    loaded = _load(args.config)
    keys = registry_keys(loaded)
    try:
        rotation = keys.rotate()
    except DecryptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    with AuditLog(data_paths(loaded).audit_log) as audit:
        audit.append(
            "keys.rotate",
            actor=args.actor,
            target="*",
            details={
                "master_key_id": rotation.master_key_id,
                "rewrapped": list(rotation.rewrapped),
                "already_current": list(rotation.current),
            },
        )
    print(
        f"re-wrapped {len(rotation.rewrapped)} registry key(s) under master key {rotation.master_key_id}; "
        f"{len(rotation.current)} already under it"
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from gridwatch.wiring import registry_keys

    wrapped = registry_keys(_load(args.config)).wrapped_keys()
    print(f"{'registry':<24} {'data key id':<18} {'master key id':<18} {'wrapped at'}")
    for name, key in sorted(wrapped.items()):
        print(f"{name:<24} {key.key_id:<18} {key.master_key_id:<18} {key.wrapped_at}")
    return 0


def _load(path: Path | None) -> LoadedConfig:
    from gridwatch.core.config.loader import load_config

    if path is None:
        print("error: no config given: pass -c PATH or set GRIDWATCH_CONFIG", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)
    return load_config(path)
