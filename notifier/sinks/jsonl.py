"""JSON-lines file sink: one alert JSON per line, flushed and fsynced before ``deliver`` returns."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import TextIO

from gridwatch.core.events import Alert


class JsonlSink:
    """Appends ``alert.to_json()`` lines to ``path`` (parents created at start)."""

    def __init__(self, path: Path, *, name: str = "jsonl") -> None:
        self.name = name
        self._path = path
        self._file: TextIO | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._path

    async def start(self) -> None:
        await asyncio.to_thread(self._open)

    async def stop(self) -> None:
        await asyncio.to_thread(self._close)

    async def deliver(self, alert: Alert) -> None:
        await asyncio.to_thread(self._write, alert.to_json() + "\n")

    def _open(self) -> TextIO:
        with self._lock:
            if self._file is None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self._path, "a", encoding="utf-8")  # noqa: SIM115 - closed in stop()
            return self._file

    def _write(self, line: str) -> None:
        handle = self._open()
        with self._lock:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
