"""Logging for the service: one format, credentials masked in every record, floods rate-limited."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gridwatch.core.redact import RedactingFilter

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Loggers whose lines a client can provoke at will (the listener, the event loop's accept errors, the gate
# endpoints): a probe once wrote 162,841 "Too many open files" lines (73 MB) in 15 s through them.
RATE_LIMITED_LOGGERS = (
    "asyncio",
    "uvicorn",
    "gridwatch.http",
    "gridwatch.http_guard",
    "gridwatch.gate_intake",
    "ingest.gates",
)
RATE_LIMIT_INTERVAL_S = 60.0
# Lines of one logger per interval, whatever their templates: f-strings (a new template each time) must
# not get past the per-template limit.
RATE_LIMIT_PER_LOGGER = 20
# Windows remembered at most; beyond it the oldest are forgotten (their suppressed counts are lost).
_MAX_WINDOWS = 1024
# Set on a record once judged, so several handlers sharing one filter give the same answer.
_DECIDED = "_gridwatch_rate_passed"
_K = TypeVar("_K")


@dataclass(slots=True)
class _Window:
    start: float
    passed: int = 0
    suppressed: int = 0


class RateLimitFilter(logging.Filter):
    """Lets one line per (logger, message template) per interval through, and per logger at most ``per_logger``.

    Suppressed lines are counted; the next line of the same template (or logger) that passes after the
    interval carries the count, e.g. ``... [1234 more like this suppressed in 60 s]``. Add it to handlers
    before the ``RedactingFilter``, which replaces the template by the formatted text.
    """

    def __init__(
        self,
        loggers: Iterable[str] = RATE_LIMITED_LOGGERS,
        interval_s: float = RATE_LIMIT_INTERVAL_S,
        per_logger: int = RATE_LIMIT_PER_LOGGER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = tuple(loggers)
        self._interval_s = interval_s
        self._per_logger = per_logger
        self._clock = clock
        self._templates: dict[tuple[str, str], _Window] = {}
        self._loggers: dict[str, _Window] = {}
        self._lock = threading.Lock()  # handlers run in whichever thread logged

    def _applies(self, name: str) -> bool:
        return any(name == prefix or name.startswith(prefix + ".") for prefix in self._prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        decided = getattr(record, _DECIDED, None)
        if decided is not None:
            return bool(decided)
        passed = not self._applies(record.name) or self._judge(record)
        setattr(record, _DECIDED, passed)
        return passed

    def _judge(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        with self._lock:
            template = self._window(self._templates, (record.name, str(record.msg)), now)
            logger = self._window(self._loggers, record.name, now)
            if template.passed >= 1:
                template.suppressed += 1
                return False
            if logger.passed >= self._per_logger:
                logger.suppressed += 1
                return False
            notes = []
            if template.suppressed:
                notes.append(f"{template.suppressed} more like this suppressed in {self._interval_s:g} s")
            if logger.suppressed:
                notes.append(f"{logger.suppressed} lines of this logger suppressed in {self._interval_s:g} s")
            template.passed += 1
            template.suppressed = 0
            logger.passed += 1
            logger.suppressed = 0
        if notes:
            record.msg = f"{record.msg} [{'; '.join(notes)}]"
        return True

    def _window(self, windows: dict[_K, _Window], key: _K, now: float) -> _Window:
        window = windows.get(key)
        if window is None:
            if len(windows) >= _MAX_WINDOWS:
                for old in list(windows)[: _MAX_WINDOWS // 2]:
                    del windows[old]
            window = windows[key] = _Window(now)
        elif now - window.start >= self._interval_s:
            # A new interval: what was suppressed in the last one is reported by the next line that passes.
            window.start, window.passed = now, 0
        return window


def prepare_handler(handler: logging.Handler, rate_limit: RateLimitFilter) -> logging.Handler:
    """The service's format and filters on ``handler``: rate limit first (it needs the template), then redaction."""
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(rate_limit)
    handler.addFilter(RedactingFilter())
    return handler


def configure_logging(level: str, log_file: Path | None = None) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_gridwatch", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    rate_limit = RateLimitFilter()  # one for all handlers: the console and the file say the same
    for handler in handlers:
        prepare_handler(handler, rate_limit)
        handler._gridwatch = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # Third-party chatter that would drown the service's own lines.
    for noisy in ("aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
