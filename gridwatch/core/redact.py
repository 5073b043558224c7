"""Mask credentials (``user:pass@`` in URLs, and every configured secret) in text and log records.

Camera URLs carry passwords (``rtsp://admin:secret@10.0.0.7/stream``) and they turn up in our own
messages, in exception texts and in ffmpeg's messages. Everything that may reach a log line goes
through ``redact_text``; ``install_redaction`` adds a filter to the logging handlers as a last line of
defence.

Besides URL userinfo, ``redact_text`` masks the *configured secrets*: every value the config loader
substituted into a secret place (a password-like key, a URL's password), registered with
``register_secrets`` at each load, so the set grows with config reloads and a password printed without
its URL (``method DESCRIBE failed: ... p@ss!``) is masked too — raw, percent-encoded (either hex case)
and base64-encoded (alone and as HTTP Basic ``user:password``).
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

MASK = "***"
# Shorter secrets are not masked on their own (masking "abc" everywhere would garble every log line);
# they are still masked inside URLs.
MIN_SECRET_LENGTH = 4
# Characters a percent-encoder may leave alone in a URL's userinfo (RFC 3986 sub-delims, and ":").
_USERINFO_SAFE = ("", "!$&'()*+,;=", "!$&'()*+,;=:", "/")

# scheme "://" userinfo "@". The userinfo runs to the *last* "@" before the end of the authority, so a
# password with a raw "@" in it ("p@ss") is masked whole. It never crosses whitespace, '"', "<", ">",
# "/", "?" or "#" (those end the authority), so "@" in a path or in "[rtsp @ 0x55d0]" is left alone.
_USERINFO = re.compile(r'(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#"<>]*)@')


def mask_url(url: str) -> str:
    """``url`` with the userinfo of every URL in it replaced by ``***``.

    >>> mask_url("rtsp://admin:secret@10.0.0.7:554/Streaming/101")
    'rtsp://***@10.0.0.7:554/Streaming/101'
    """
    return _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", url)


class SecretSet:
    """The configured secrets and their encodings, as one regular expression (thread-safe, only grows)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, secrets: Iterable[str | tuple[str, str]]) -> int:
        """Register secrets: a value, or ``(user, password)`` (whose Basic-auth form is masked too).

        Returns the number of new forms; recompiles only when there are some.
        """
        forms: set[str] = set()
        for secret in secrets:
            user, password = secret if isinstance(secret, tuple) else (None, secret)
            forms |= _encodings(password)
            if user and len(password) >= MIN_SECRET_LENGTH:
                for plain in {password, unquote(password)}:  # HTTP Basic sends the decoded password
                    forms |= _base64_forms(f"{user}:{plain}")
        with self._lock:
            new = forms - self._forms
            if new:
                self._forms |= new
                self._pattern = re.compile(_trie_pattern(self._forms))
            return len(new)

    def mask(self, text: str) -> str:
        pattern = self._pattern  # read once: a concurrent add swaps it whole
        return text if pattern is None else pattern.sub(MASK, text)

    def __len__(self) -> int:
        return len(self._forms)


def _trie_pattern(forms: Iterable[str]) -> str:
    """One regular expression matching any of ``forms``, the longest at a position, as a prefix trie.

    A flat alternation of hundreds of literals makes ``re`` try each at every position; the trie tests
    one character class per position, so masking native output stays fast with many secrets.
    """
    trie: dict[str, Any] = {}
    for form in forms:
        node = trie
        for char in form:
            node = node.setdefault(char, {})
        node[""] = {}  # the end of a form

    def build(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        # Greedy: a longer form wins over the shorter one it extends.
        return f"(?:{body})?" if ends else body

    return build(trie)


def _encodings(secret: str) -> set[str]:
    forms: set[str] = set()
    for raw in {secret, unquote(secret)}:  # the environment may hold the password already encoded
        if len(raw) < MIN_SECRET_LENGTH:
            continue
        forms.add(raw)
        for safe in _USERINFO_SAFE:
            encoded = quote(raw, safe=safe)
            forms.add(encoded)
            forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
        forms.add(quote(raw, safe="").replace("%20", "+"))  # form encoding
        forms |= _base64_forms(raw)
    return forms


def _base64_forms(text: str) -> set[str]:
    data = text.encode("utf-8")
    forms = set()
    for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
        value = encoded.decode("ascii")
        forms.add(value)
        forms.add(value.rstrip("="))
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


# The process's configured secrets: the config loader registers them, every redaction masks them.
SECRETS = SecretSet()


def register_secrets(secrets: Iterable[str | tuple[str, str]]) -> int:
    """Add configured secrets to the process-wide set that ``redact_text`` masks (see ``SecretSet.add``)."""
    return SECRETS.add(secrets)


def redact_text(text: str) -> str:
    """``text`` (a message, an exception text, ffmpeg output) with every URL's credentials and every
    configured secret masked."""
    if "://" in text:
        text = mask_url(text)
    return SECRETS.mask(text)


class RedactingFilter(logging.Filter):
    """Rewrites a record so that its message, exception text and stack hold no URL credentials.

    The message is formatted once (``msg % args``) and stored back with ``args = None``, so
    handlers downstream see the masked text only. Never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A malformed format call: the handler will report it; mask what we can see.
            message = redact_text(str(record.msg))
            record.msg, record.args = message, None
        else:
            masked = redact_text(message)
            if masked != message or record.args:
                record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def install_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Add one ``RedactingFilter`` to ``logger`` (default: the root logger) and to each of its handlers.

    Handler filters see records propagated from child loggers; the logger filter covers records
    logged on it directly. Idempotent: a second call adds nothing.
    """
    target = logger if logger is not None else logging.getLogger()
    existing = next((f for f in target.filters if isinstance(f, RedactingFilter)), None)
    redacting = existing if existing is not None else RedactingFilter()
    if existing is None:
        target.addFilter(redacting)
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redacting)
    return redacting
