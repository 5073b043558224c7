"""``${ENV}`` placeholders, and the rule that secrets come only from the environment.

Syntax, in any string value (not in keys):
- ``${NAME}``: the variable's value; an unset variable is an error.
- ``${NAME:-default}``: the default when the variable is unset or empty.
- ``$${`` writes a literal ``${``.

Secrets: a password-like key (``password``, ``sasl_password``, ``*_secret``, ``*_token``, ``api_key``…),
a channel's ``url`` and a staff member's ``contact`` values must hold a single placeholder (an empty
default is allowed) or nothing, and a URL's
``scheme://user:password@`` may only carry its password as a placeholder. Either check runs on the text
as written in the YAML, so a value substituted from the environment is never looked at or echoed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridwatch.core.config.issues import ConfigIssue, KeyPath, format_key_path
from gridwatch.core.config.yamlsource import Position, locate

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# Alternatives, in order: the escape, a placeholder, and a `${` that is neither (malformed).
_TOKEN = re.compile(r"\$\$\{|\$\{(?P<name>" + _NAME + r")(?::-(?P<default>[^}]*))?\}|\$\{")
_ENV_ONLY = re.compile(r"\$\{" + _NAME + r"(?::-)?\}")
_SECRET_KEY = re.compile(r"(?:^|_)(?:password|passwd|secret|token|api_?key)$", re.IGNORECASE)
_URL_USERINFO = re.compile(r"^\s*(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<userinfo>[^/@\s]*)@")
# The same on a substituted value: the userinfo runs to the *last* "@" of the authority, so a password
# with a raw "@" in it (from the environment) is taken whole.
_SUBSTITUTED_USERINFO = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://(?P<userinfo>[^\s/?#]*)@")


@dataclass
class Substituted:
    data: Any
    issues: list[ConfigIssue] = field(default_factory=list)
    # Key paths whose value could not be built (a missing variable): validation errors there are noise.
    unusable: set[KeyPath] = field(default_factory=set)
    # Values substituted into secret places (a password-like key, a secret path, a URL's password, as
    # ``(user, password)``): what the redaction must mask wherever it turns up.
    secrets: list[str | tuple[str, str]] = field(default_factory=list)


def substitute_placeholders(
    data: Any, positions: Mapping[KeyPath, Position], env: Mapping[str, str], fallback: Path
) -> Substituted:
    """Replace placeholders in every string value of ``data``, checking the secrets rule on the way."""
    result = Substituted(data=None)
    walker = _Walker(positions, env, fallback, result)
    result.data = walker.walk(data, ())
    return result


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def is_secret_path(path: KeyPath) -> bool:
    """Values that are secrets by where they are: a channel's URL (a robot's URL is its credential) and
    staff contact details (personal data)."""
    if len(path) == 3 and path[0] == "channels" and path[2] == "url":
        return True
    return len(path) == 4 and path[0] == "staff" and path[2] == "contact"


class _Walker:
    def __init__(
        self, positions: Mapping[KeyPath, Position], env: Mapping[str, str], fallback: Path, out: Substituted
    ) -> None:
        self._positions = positions
        self._env = env
        self._fallback = fallback
        self._out = out

    def walk(self, value: Any, path: KeyPath) -> Any:
        if isinstance(value, dict):
            return {k: self.walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, (*path, i)) for i, v in enumerate(value)]
        key = path[-1] if path and isinstance(path[-1], str) else None
        if key is not None and (is_secret_key(key) or is_secret_path(path)) and _is_literal_secret(value):
            self._issue(
                path,
                "literal secret: secrets come only from the environment; "
                "write a ${ENV_VAR} placeholder here and set that variable",
            )
        if not isinstance(value, str):
            return value
        self._check_url(value, path)
        substituted = self._substitute(value, path)
        self._collect_secrets(substituted, secret=key is not None and (is_secret_key(key) or is_secret_path(path)))
        return substituted

    def _collect_secrets(self, value: str, *, secret: bool) -> None:
        if secret and value:
            self._out.secrets.append(value)
        match = _SUBSTITUTED_USERINFO.match(value)
        if match is not None:
            user, colon, password = match["userinfo"].partition(":")
            if colon and password:
                self._out.secrets.append((user, password))

    def _check_url(self, text: str, path: KeyPath) -> None:
        match = _URL_USERINFO.match(text)
        if match is None:
            return
        _user, colon, password = match["userinfo"].partition(":")
        if colon and password and not _ENV_ONLY.fullmatch(password):
            scheme = match["scheme"].lower()
            self._issue(
                path,
                f"literal password in the URL: write {scheme}://user:${{ENV_VAR}}@host "
                "and set that variable in the environment",
            )

    def _substitute(self, text: str, path: KeyPath) -> str:
        if "${" not in text:
            return text
        pieces: list[str] = []
        end = 0
        for match in _TOKEN.finditer(text):
            pieces.append(text[end : match.start()])
            end = match.end()
            name = match["name"]
            if match.group(0) == "$${":
                pieces.append("${")
            elif name is None:
                self._issue(path, "malformed placeholder: write ${NAME} or ${NAME:-default}")
                self._out.unusable.add(path)
            elif match["default"] is not None:
                pieces.append(self._env.get(name) or match["default"])
            elif name in self._env:
                pieces.append(self._env[name])
            else:
                self._issue(path, f"environment variable {name} is not set")
                self._out.unusable.add(path)
        pieces.append(text[end:])
        return "".join(pieces)

    def _issue(self, path: KeyPath, reason: str) -> None:
        position = locate(self._positions, path)
        file, line = position if position is not None else (self._fallback, None)
        self._out.issues.append(ConfigIssue(file, line, format_key_path(path), reason))


def _is_literal_secret(value: Any) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, str):
        return not _ENV_ONLY.fullmatch(value)
    return not isinstance(value, dict | list)
