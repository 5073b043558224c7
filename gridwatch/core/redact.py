"""Mask credentials (``user:pass@`` in URLs) in text and log records.

Camera URLs carry passwords (``rtsp://admin:secret@10.0.0.7/stream``) and they turn up in our own
messages, in exception texts and in ffmpeg's messages. Everything that may reach a log line goes
through ``redact_text``; ``install_redaction`` adds a filter to the logging handlers as a last line of
defence.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

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


def redact_text(text: str) -> str:
    """``text`` (a message, an exception text, ffmpeg output) with every URL's credentials masked."""
    if "://" not in text:
        return text
    return mask_url(text)


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
