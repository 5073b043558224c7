"""Console sink: one readable line per alert on standard output (or an injected stream)."""

from __future__ import annotations

import sys
from typing import TextIO

from gridwatch.core.events import Alert
from notifier.format import format_alert_line


class ConsoleSink:
    """Writes :func:`notifier.format.format_alert_line` for each alert and flushes."""

    def __init__(self, out: TextIO | None = None, *, name: str = "console") -> None:
        self.name = name
        self._out = out

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def deliver(self, alert: Alert) -> None:
        # Resolved per call so that a replaced sys.stdout (tests, daemons) is honoured.
        out = self._out if self._out is not None else sys.stdout
        out.write(format_alert_line(alert) + "\n")
        out.flush()
