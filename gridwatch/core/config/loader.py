"""Load a gridwatch config from YAML: one file, or a directory of files, one or more sections each.

``load_config(path)`` reads ``path`` (a ``.yaml``/``.yml`` file, or a directory whose ``*.yaml`` and
``*.yml`` files are read in name order; dot-files are ignored) and joins their top-level sections: a
section defined in two files is an error, top-level ``x-*`` keys are ignored. It then substitutes
``${ENV}`` placeholders (see ``placeholders``), checks that no secret is written literally, validates the
result against ``GridwatchConfig`` and returns a ``LoadedConfig``. Any problem raises ``ConfigError``
whose issues read ``FILE:LINE: KEY.PATH: reason``; a reason never quotes a config value, so a secret
cannot leak through an error message.

Relative paths in the config (``service.data_dir``, ``model.path``, file cameras' ``path``) keep their
relative value in ``LoadedConfig.config``; they mean "relative to the config directory", and
``LoadedConfig.resolve()`` / ``LoadedConfig.data_dir`` give the absolute path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from gridwatch.core.config.issues import ConfigError, ConfigIssue, KeyPath, format_key_path
from gridwatch.core.config.placeholders import substitute_placeholders
from gridwatch.core.config.root import ConfigReferenceError, GridwatchConfig
from gridwatch.core.config.yamlsource import Position, locate, parse_yaml_file

__all__ = ["ConfigError", "ConfigIssue", "LoadedConfig", "load_config"]

logger = logging.getLogger(__name__)

CONFIG_SUFFIXES = (".yaml", ".yml")
# Top-level keys with this prefix are ignored: a place for YAML anchors (`x-defaults: &defaults`) that
# sections merge with `<<: *defaults`, as in docker compose files. Anchors do not cross files.
EXTENSION_PREFIX = "x-"

_REASON_PREFIXES = ("Value error, ", "Assertion failed, ")


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and where it came from.

    ``config`` holds values as written: relative paths stay relative. They are relative to ``root``
    (the config directory: the directory given, or the directory of the single file given), and
    ``resolve()`` makes them absolute; ``data_dir`` is ``service.data_dir`` resolved that way.
    """

    config: GridwatchConfig
    root: Path  # absolute
    files: tuple[Path, ...]  # absolute, in the order they were read
    positions: Mapping[KeyPath, Position] = field(default_factory=dict, repr=False, compare=False)
    # What the placeholders put into secret places; the service registers them with the redaction.
    secrets: tuple[str | tuple[str, str], ...] = field(default=(), repr=False, compare=False)

    def resolve(self, p: Path) -> Path:
        """``p`` if absolute (after ``~`` expansion), else ``root / p``."""
        p = p.expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def data_dir(self) -> Path:
        """``service.data_dir`` as an absolute path."""
        return self.resolve(self.config.service.data_dir)

    def issue(self, key_path: KeyPath, reason: str) -> ConfigIssue:
        """An issue about a value of this config (e.g. a model folder that is missing), at its file:line."""
        position = locate(self.positions, key_path)
        file, line = position if position is not None else (self.files[0] if self.files else self.root, None)
        return ConfigIssue(file, line, format_key_path(key_path), reason)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, substitute and validate the config at ``path``; raise ``ConfigError`` listing every issue.

    ``env`` provides the ``${ENV}`` values (default: ``os.environ``).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    path = Path(path)
    files = _config_files(path)
    root = path.resolve() if path.is_dir() else path.resolve().parent

    issues: list[ConfigIssue] = []
    sections: dict[str, Any] = {}
    positions: dict[KeyPath, Position] = {}
    unreadable = False
    for file in files:
        parsed = parse_yaml_file(file)
        issues += parsed.issues
        unreadable = unreadable or parsed.syntax_error
        if parsed.data is None:  # empty (only comments) or unparsable
            continue
        if not isinstance(parsed.data, dict):
            expected = ", ".join(f"{name}:" for name in GridwatchConfig.model_fields)
            issues.append(ConfigIssue(file, 1, "", f"the top level must be a mapping of sections ({expected})"))
            continue
        _join_sections(file, parsed.data, parsed.positions, sections, positions, issues)

    substituted = substitute_placeholders(sections, positions, environ, files[0])
    issues += substituted.issues
    if unreadable:  # sections are missing: validating the rest would report noise
        raise _sorted_error(issues, files)

    try:
        config = GridwatchConfig.model_validate(substituted.data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            for issue_path, issue in _issues_from_error(error, substituted.data, positions, files[0]):
                if not any(issue_path[: len(bad)] == bad for bad in substituted.unusable):
                    issues.append(issue)
    if issues:
        raise _sorted_error(issues, files)
    logger.debug("config loaded from %d file(s) under %s", len(files), root)
    return LoadedConfig(
        config=config,
        root=root,
        files=tuple(f.resolve() for f in files),
        positions=positions,
        secrets=tuple(substituted.secrets),
    )


def _sorted_error(issues: list[ConfigIssue], files: list[Path]) -> ConfigError:
    """Issues in reading order: by file, then line (stable, so one line's issues keep their order)."""
    order = {file: index for index, file in enumerate(files)}
    return ConfigError(sorted(issues, key=lambda i: (order.get(i.file, len(order)), i.line or 0)))


def _config_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.suffix in CONFIG_SUFFIXES and p.is_file() and not p.name.startswith(".")),
            key=lambda p: p.name,
        )
        if not files:
            raise ConfigError([ConfigIssue(path, None, "", "no *.yaml or *.yml files in this directory")])
        return files
    if path.is_file():
        return [path]
    raise ConfigError([ConfigIssue(path, None, "", "no such file or directory")])


def _join_sections(
    file: Path,
    data: dict[str, Any],
    file_positions: Mapping[KeyPath, Position],
    sections: dict[str, Any],
    positions: dict[KeyPath, Position],
    issues: list[ConfigIssue],
) -> None:
    accepted: set[str] = set()
    for name, value in data.items():
        if name.startswith(EXTENSION_PREFIX):
            continue
        first = positions.get((name,))
        if first is not None:
            line = file_positions[(name,)][1]
            other_file, other_line = first
            issues.append(
                ConfigIssue(
                    file,
                    line,
                    format_key_path((name,)),
                    f"section defined in two files (also at {other_file}:{other_line}); keep it in one",
                )
            )
            continue
        accepted.add(name)
        sections[name] = value
    for key_path, position in file_positions.items():
        if key_path and key_path[0] in accepted:
            positions[key_path] = position


def _issues_from_error(
    error: ErrorDetails, data: Any, positions: Mapping[KeyPath, Position], fallback: Path
) -> list[tuple[KeyPath, ConfigIssue]]:
    """One pydantic error → issues at file:line. Cross-reference errors carry one key path per problem."""
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ConfigReferenceError):
        return [(loc, _issue_at(loc, reason, positions, fallback)) for loc, reason in cause.problems]

    key_path = _data_path(error["loc"], data)
    if error["type"] == "union_tag_invalid":
        # Point at the discriminator key itself (`kind: nope`) rather than the whole item.
        discriminator = str(error.get("ctx", {}).get("discriminator", "")).strip("'\"")
        if isinstance(_value_at(data, key_path), dict) and discriminator in _value_at(data, key_path):
            key_path = (*key_path, discriminator)
    reason = error["msg"]
    for prefix in _REASON_PREFIXES:
        reason = reason.removeprefix(prefix)
    return [(key_path, _issue_at(key_path, reason, positions, fallback))]


def _issue_at(key_path: KeyPath, reason: str, positions: Mapping[KeyPath, Position], fallback: Path) -> ConfigIssue:
    position = locate(positions, key_path)
    file, line = position if position is not None else (fallback, None)
    return ConfigIssue(file, line, format_key_path(key_path), reason)


def _data_path(loc: tuple[int | str, ...], data: Any) -> KeyPath:
    """A pydantic ``loc`` without the parts that are not in the data.

    Tagged unions add their tag (``('cameras', 0, 'rtsp', 'url')``) and plain unions the member's name;
    walking the data tells them apart: a part that is neither a key nor an index is dropped, except as
    the last part of a mapping's path, where it names a missing (or unknown) key.
    """
    kept: list[str | int] = []
    node: Any = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(node, dict) and isinstance(part, str):
            if part in node:
                kept.append(part)
                node = node[part]
            elif last:
                kept.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            kept.append(part)
            node = node[part]
    return tuple(kept)


def _value_at(data: Any, key_path: KeyPath) -> Any:
    node = data
    for part in key_path:
        if isinstance(node, dict) and isinstance(part, str):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node
