"""Config problems as integrators read them: ``FILE:LINE: KEY.PATH[0].SUB: reason``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# A position inside the config: mapping keys (str) and sequence indexes (int), from the top.
KeyPath = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def format_key_path(key_path: KeyPath) -> str:
    """``("cameras", 0, "url")`` → ``cameras[0].url``; keys that are not plain names are quoted."""
    text = ""
    for part in key_path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem of a config: where it is and why it is wrong. Never carries a config value."""

    file: Path
    line: int | None  # 1-based; None when the problem has no line (a missing file, an unreadable one)
    key_path: str  # as formatted by format_key_path; "" for the file as a whole
    reason: str

    def __str__(self) -> str:
        where = str(self.file) if self.line is None else f"{self.file}:{self.line}"
        parts = [where, self.key_path, self.reason] if self.key_path else [where, self.reason]
        return ": ".join(parts)


class ConfigError(Exception):
    """A config that cannot be used; ``str()`` lists every issue, one per line."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)
