"""The service serves the console on its own listener when ``service.console.enabled``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from gridwatch.console.accounts import Accounts
from gridwatch.core.config.loader import load_config
from gridwatch.service import Service
from gridwatch.wiring import build_database

CONFIG = """
service:
  name: console-test
  data_dir: {data}
  http: {{enabled: true, host: 127.0.0.1, port: 0}}
  console: {{enabled: true, host: 127.0.0.1, port: 0}}
grids:
  - {{id: g1, name: Grid 1}}
registries:
  - name: watch
    purpose: console test
    legal_basis: test fixture
    retention_days: 1
    threshold: 0.45
rules:
  - {{id: seen-watch, kind: seen, registries: [watch], cooldown_s: 600}}
notifier:
  console: {{enabled: true}}
  kafka: {{enabled: false}}
"""


async def test_the_console_listens_apart_from_the_device_port(tmp_path: Path) -> None:
    (tmp_path / "gridwatch.yaml").write_text(CONFIG.format(data=tmp_path / "data"))
    loaded = load_config(tmp_path / "gridwatch.yaml")
    with build_database(loaded) as database:
        Accounts(database).add_user("admin1", "admin", "a long admin password")
    service = Service(loaded)
    await service.start()
    try:
        assert service.console_port is not None
        assert service.console_port != service.http_port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.console_port}", timeout=30) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/api/status")).status_code == 401
            signed = await client.post("/api/session", json={"username": "admin1", "password": "a long admin password"})
            assert signed.status_code == 200
            status = await client.get("/api/status")
            assert status.status_code == 200
            assert status.json()["service"] == "console-test"
            assert (await client.get("/api/users")).json()["users"][0]["name"] == "admin1"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.http_port}", timeout=30) as device:
            assert (await device.get("/api/me")).status_code == 404  # the device port has no console
    finally:
        await asyncio.wait_for(service.stop(), 30)
