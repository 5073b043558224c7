"""A service whose start fails part-way leaves nothing running behind it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from gridwatch.core.config.loader import load_config
from gridwatch.service import Service


def write_config(root: Path, http_port: int) -> Path:
    config = root / "config"
    config.mkdir()
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: lifecycle
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: {http_port}}}
registries:
  - name: watch
    purpose: lifecycle test
    legal_basis: test fixture
    retention_days: 1
    threshold: 0.45
rules:
  - {{id: seen-watch, kind: seen, registries: [watch], cooldown_s: 600}}
notifier:
  console: {{enabled: true}}
  kafka: {{enabled: false}}
"""
    )
    return config


async def test_a_start_that_fails_on_a_busy_http_port_stops_what_it_started(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        service = Service(load_config(write_config(tmp_path, busy.getsockname()[1])))
        try:
            with pytest.raises(OSError, match="could not listen"):
                await service.start()
            # The notifier was started before the HTTP server: its delivery tasks must be gone.
            leftover = [
                task.get_name() for task in asyncio.all_tasks() if task.get_name().startswith("notifier.deliver.")
            ]
            assert leftover == []
            assert service.audit._file is None  # the audit log was closed
        finally:
            await service.stop()
