"""YAML → plain Python, remembering the file and line of every key path.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two equal keys, so the file is
composed into nodes (SafeLoader) and converted here: scalars through the SafeLoader's own constructors
(YAML 1.1 types as usual), mappings and sequences by hand so that each key path gets its line and
duplicate keys become issues. Mapping keys are taken as written (``on:`` stays the string ``"on"``).
Merge keys (``<<: *defaults``) are supported; explicit keys win over merged ones.

Two YAML 1.1 types are kept as the strings written, for the models to validate: base-60 numbers
(``from: 22:00`` is the clock time "22:00", not 1320; YAML 1.2 dropped them too) and timestamps
(``2026-02-30`` is then a validation error at its line, not a crash of the parser).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from gridwatch.core.config.issues import ConfigIssue, KeyPath, format_key_path

# Where a key path was written: its file and 1-based line.
Position = tuple[Path, int]

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass
class ParsedFile:
    """One YAML file as plain data. ``data`` is None for a file that failed to parse or is empty."""

    file: Path
    data: Any = None
    positions: dict[KeyPath, Position] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)
    syntax_error: bool = False


def locate(positions: Mapping[KeyPath, Position], key_path: KeyPath) -> Position | None:
    """The position of the deepest recorded prefix of ``key_path`` (a missing key → its mapping)."""
    for length in range(len(key_path), -1, -1):
        position = positions.get(key_path[:length])
        if position is not None:
            return position
    return None


def parse_yaml_file(file: Path) -> ParsedFile:
    parsed = ParsedFile(file)
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raw = file.read_bytes()
        line = raw[: exc.start].count(b"\n") + 1
        parsed.issues.append(ConfigIssue(file, line, "", "not UTF-8 text"))
        parsed.syntax_error = True
        return parsed
    except OSError as exc:
        parsed.issues.append(ConfigIssue(file, None, "", f"cannot read: {exc.strerror or exc}"))
        parsed.syntax_error = True
        return parsed

    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            parsed.data = _Converter(file, loader, parsed).convert(root, ())
    except yaml.YAMLError as exc:
        parsed.issues.append(_syntax_issue(file, exc))
        parsed.syntax_error = True
        parsed.data = None
    finally:
        loader.dispose()
    return parsed


def _syntax_issue(file: Path, exc: yaml.YAMLError) -> ConfigIssue:
    # str(exc) would quote a snippet of the file, which may hold a secret: use only the mark and the words.
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        words = [w for w in (exc.context, exc.problem) if w]
        reason = "YAML syntax error: " + (", ".join(words) or "malformed")
        return ConfigIssue(file, mark.line + 1 if mark is not None else None, "", reason)
    if isinstance(exc, yaml.reader.ReaderError):
        return ConfigIssue(file, None, "", f"YAML syntax error: {exc.reason}")
    return ConfigIssue(file, None, "", "YAML syntax error")


def _kept_as_written(node: ScalarNode) -> bool:
    """A plain timestamp or base-60 number: left to the model (see the module docstring)."""
    if node.style is not None:  # quoted: a string anyway
        return False
    return node.tag == _TIMESTAMP_TAG or (node.tag in _NUMBER_TAGS and ":" in node.value)


class _Converter:
    def __init__(self, file: Path, loader: yaml.SafeLoader, parsed: ParsedFile) -> None:
        self._file = file
        self._loader = loader
        self._parsed = parsed

    def _record(self, path: KeyPath, node: Node) -> None:
        self._parsed.positions[path] = (self._file, node.start_mark.line + 1)

    def _issue(self, path: KeyPath, node: Node, reason: str) -> None:
        self._parsed.issues.append(ConfigIssue(self._file, node.start_mark.line + 1, format_key_path(path), reason))

    def convert(self, node: Node, path: KeyPath) -> Any:
        if not path:
            self._record(path, node)
        if isinstance(node, ScalarNode):
            if _kept_as_written(node):
                return node.value
            return self._loader.construct_object(node, deep=True)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ_TAG:
                self._issue(path, node, f"unsupported YAML tag {node.tag!r}")
            items = []
            for index, child in enumerate(node.value):
                self._record((*path, index), child)
                items.append(self.convert(child, (*path, index)))
            return items
        if isinstance(node, MappingNode):
            if node.tag != _MAP_TAG:
                self._issue(path, node, f"unsupported YAML tag {node.tag!r}")
            return self._mapping(node, path)
        raise yaml.constructor.ConstructorError(None, None, "unexpected node", node.start_mark)

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merge_sources: list[Node] = []
        explicit: list[tuple[ScalarNode, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merge_sources.extend(value_node.value if isinstance(value_node, SequenceNode) else [value_node])
            elif isinstance(key_node, ScalarNode):
                explicit.append((key_node, value_node))
            else:
                self._issue(path, key_node, "mapping keys must be plain strings")

        # YAML merge: the first source wins among sources, explicit keys win over all of them.
        for source in reversed(merge_sources):
            if not isinstance(source, MappingNode):
                self._issue(path, source, "a merge key (<<) needs a mapping or a list of mappings")
                continue
            result.update(self._mapping(source, path))

        first_line: dict[str, int] = {}
        for key_node, value_node in explicit:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first_line:
                self._issue((*path, key), key_node, f"duplicate key (first defined at line {first_line[key]})")
                continue
            first_line[key] = line
            if merge_sources and key in result:
                self._forget_below((*path, key))
            self._record((*path, key), key_node)
            result[key] = self.convert(value_node, (*path, key))
        return result

    def _forget_below(self, prefix: KeyPath) -> None:
        """Drop positions recorded for a merged value that an explicit key replaces (rare: merges only)."""
        stale = [p for p in self._parsed.positions if p[: len(prefix)] == prefix]
        for p in stale:
            del self._parsed.positions[p]
