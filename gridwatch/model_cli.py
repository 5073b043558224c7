"""`gridwatch model pin`: record the SHA-256 of the model pack's files in the config, or check them.

The service refuses to start when the pack no longer matches ``model.sha256`` (see
``recognition.modelpack.verify_pins``); this command writes those pins. The file that holds the
``model:`` section is edited in place with ruamel.yaml's round-trip mode (comments, order and layout
stay, as `gridwatch calibrate` does), and the edited config is validated before it stays. When no file
can be edited safely (a config directory without a ``model:`` section, a section the loader does not
read back as written), the YAML block to paste is printed instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

EXIT_DIFFERS = 1
EXIT_NOT_WRITTEN = 1


def add_commands(commands: Any, config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register `model pin` on the `gridwatch` subparsers (``config_arg`` adds ``-c``)."""
    model = commands.add_parser("model", help="the face model pack").add_subparsers(metavar="ACTION")
    pin = model.add_parser(
        "pin",
        help="record the SHA-256 of the configured pack's model files in the config (model.sha256), or --check",
        description="Hash the model files of the configured pack (detector and recogniser) and write them to "
        "model.sha256 in the config file that holds the `model:` section. With pins set, `gridwatch run` refuses "
        "to start when a file differs. --check compares instead and changes nothing.",
    )
    config_arg(pin)
    pin.add_argument(
        "--check", action="store_true", help="exit 0 if the pack matches model.sha256, 1 listing the differences"
    )
    pin.add_argument("--actor", default=os.environ.get("USER", "cli"), help="who is doing this (audit log)")
    pin.set_defaults(handler=cmd_model_pin)


def cmd_model_pin(args: argparse.Namespace) -> int:
    from gridwatch.cli import EXIT_CONFIG, _StandInEnv
    from gridwatch.core.config.loader import load_config
    from recognition.backends import resolve_pack
    from recognition.modelpack import pin_mismatches

    if args.config is None:
        print("error: no config given: pass -c PATH or set GRIDWATCH_CONFIG", file=sys.stderr)
        return EXIT_CONFIG
    # Pins need no secrets: read the config as `config check` does, with stand-ins for unset ${ENV}s.
    loaded = load_config(args.config, env=_StandInEnv())
    model = loaded.config.model
    # The pack as it is now, whatever is pinned (re-pinning a changed pack is the point).
    pack = resolve_pack(model.model_copy(update={"sha256": None}), config_dir=loaded.root)
    if args.check:
        if model.sha256 is None:
            print(f"{args.config}: model.sha256 is not set: the pack {pack.directory} is not pinned", file=sys.stderr)
            return EXIT_DIFFERS
        problems = pin_mismatches(pack, model.sha256)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return EXIT_DIFFERS
        print(f"{args.config}: ok, {len(model.sha256)} pinned file(s) of {pack.model_id} match ({pack.directory})")
        return 0

    pins = dict(sorted(pack.sha256.items()))
    if model.sha256 == pins:
        print(f"{args.config}: already pinned ({pack.model_id}, {pack.directory})")
        return 0
    file = _model_file(loaded, args.config)
    if file is None or not _write_pins(file, pins, args.config, env=_StandInEnv()):
        print(
            f"{args.config}: cannot edit the config safely; add this to its `model:` section:\n{_pins_block(pins)}",
            file=sys.stderr,
        )
        return EXIT_NOT_WRITTEN
    from gridwatch.core.audit import AuditLog
    from gridwatch.wiring import data_paths

    # What the service trusts changed: an auditor asks who pinned which files, and when.
    with AuditLog(data_paths(loaded).audit_log) as audit:
        details = {"file": str(file), "pack": str(pack.directory), "sha256": pins, "previous": model.sha256}
        audit.append("model.pinned", actor=args.actor, target=pack.model_id, details=details)
    listed = ", ".join(f"{name} {digest[:16]}…" for name, digest in pins.items())
    print(f"{file}: pinned {pack.model_id} ({pack.directory}): {listed}")
    return 0


def _model_file(loaded: Any, config_path: Path) -> Path | None:
    """The file that holds the `model:` section; a single-file config without one gets it appended."""
    position = loaded.positions.get(("model",))
    if position is not None:
        return Path(position[0])
    return config_path if config_path.is_file() else None


def _write_pins(file: Path, pins: Mapping[str, str], config_path: Path, *, env: Mapping[str, str]) -> bool:
    """Set ``model.sha256`` in ``file``; False (file unchanged) when the loader would not read it back as written."""
    from ruamel.yaml.comments import CommentedMap

    from gridwatch.core.config.loader import load_config
    from gridwatch.evaluate.calibrate import replace_checked, round_trip_yaml

    original = file.read_text(encoding="utf-8")
    yaml = round_trip_yaml(original)
    document = yaml.load(original)
    if document is None:
        document = CommentedMap()
    if not isinstance(document, CommentedMap):
        return False
    section = document.get("model")
    if section is None:
        section = document["model"] = CommentedMap()
    if not isinstance(section, CommentedMap):
        return False
    section["sha256"] = CommentedMap(pins)
    section.yaml_add_eol_comment(f"pinned {dt.date.today()} by `gridwatch model pin`", "sha256")
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    replace_checked(file, buffer.getvalue(), original, config_path, env=env)
    # An anchor, a merge key or another file's `model:` could make the edit mean something else.
    if load_config(config_path, env=env).config.model.sha256 != dict(pins):
        file.write_text(original, encoding="utf-8")
        return False
    return True


def _pins_block(pins: Mapping[str, str]) -> str:
    lines = ["model:", "  sha256:", *(f"    {name}: {digest}" for name, digest in pins.items())]
    return "\n".join(lines)
