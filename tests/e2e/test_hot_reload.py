"""Hot reload against the running service: edits apply by id, a broken edit keeps the last good config."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridwatch.core.config.loader import load_config
from gridwatch.core.events import Sighting
from gridwatch.service import Service
from tests.support.e2e import enrol
from tests.support.paths import CLIP, TESTDATA

pytestmark = pytest.mark.e2e

PERFORMER = TESTDATA / "faces" / "lin_manuel_miranda" / "lin1.png"
DEADLINE_S = 60.0

MAIN = """
service:
  name: reload
  data_dir: {data}
  http: {{enabled: true, host: 127.0.0.1, port: 0}}
registries:
  - name: watch
    purpose: hot reload test
    legal_basis: test fixture
    retention_days: 1
    threshold: {threshold}
rules:
  - {{id: seen-watch, kind: seen, registries: [watch], cooldown_s: 3600}}
notifier:
  console: {{enabled: false}}
"""

CAMERA = (
    '  - {{id: {id}, kind: file, path: "{clip}", loop: true, fps: 3,'
    " location_class: lobby, signage_verified_at: 2026-01-15}}\n"
)


def write_main(config: Path, data: Path, threshold: float) -> None:
    (config / "gridwatch.yaml").write_text(MAIN.format(data=data, threshold=threshold))


def write_cameras(config: Path, *ids: str) -> None:
    text = "cameras:\n" + "".join(CAMERA.format(id=i, clip=CLIP) for i in ids)
    # Write and rename, as editors do: the watcher never reads a half-written file.
    tmp = config / ".cameras.yaml.tmp"
    tmp.write_text(text)
    tmp.replace(config / "cameras.yaml")


async def until(predicate: Callable[[], Any], what: str, deadline_s: float = DEADLINE_S) -> Any:
    try:
        async with asyncio.timeout(deadline_s):
            while not (value := predicate()):
                await asyncio.sleep(0.1)
            return value
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def camera(status: dict[str, Any], camera_id: str) -> dict[str, Any] | None:
    return next((c for c in status.get("cameras", ()) if c["id"] == camera_id), None)


async def test_edits_apply_without_a_restart_and_a_broken_edit_keeps_the_last_good_config(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    data = tmp_path / "data"
    write_main(config, data, 0.45)
    write_cameras(config, "cam-a")
    enrol(config, PERFORMER, "Performer")

    service = Service(load_config(config), watch_config=True)
    sightings: list[Sighting] = []

    async def on_sighting(sighting: Sighting) -> None:
        sightings.append(sighting)

    service.tap_sightings(on_sighting)
    await service.start()
    try:
        base = f"http://127.0.0.1:{service.http_port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:

            async def status() -> dict[str, Any]:
                response = await http.get("/status")
                response.raise_for_status()
                body: dict[str, Any] = response.json()
                return body

            first = await status()
            assert first["config"]["version"] == 1
            assert first["config"]["last_error"] is None
            worker_a = service.sources.camera_worker("cam-a")
            await until(lambda: worker_a is not None and worker_a.status.frames_out > 0, "cam-a analysing")

            # 1. A camera added by editing a file: it appears in /status and analyses frames.
            edited = time.monotonic()
            write_cameras(config, "cam-a", "cam-b")
            latest: dict[str, Any] = {}

            async def poll() -> None:
                while True:
                    latest.update(await status())
                    await asyncio.sleep(0.1)

            poller = asyncio.create_task(poll())
            try:
                await until(
                    lambda: (cam := camera(latest, "cam-b")) is not None and cam["frames_out"] > 0,
                    "cam-b in /status, analysing frames",
                )
                print(f"config edit → new camera analysing frames: {time.monotonic() - edited:.2f} s")
                assert latest["config"]["version"] == 2

                # 2. A registry threshold changed: the next decision uses it.
                write_main(config, data, 0.40)
                await until(lambda: any(s.threshold == 0.40 for s in sightings), "a sighting at threshold 0.40")

                # 3. Broken YAML: the service keeps running the last good config; /status shows file and line.
                (config / "cameras.yaml").write_text("cameras:\n  - {id: cam-a, kind: file\n")
                await until(lambda: latest["config"]["last_error"], "the error in /status")
                print(f"error shown in /status: {latest['config']['last_error']}")
                assert "cameras.yaml:" in latest["config"]["last_error"]
                frames_before = worker_a.status.frames_out if worker_a else 0
                await until(
                    lambda: worker_a is not None and worker_a.status.frames_out > frames_before + 2,
                    "cam-a still analysing after the broken edit",
                )
                assert camera(latest, "cam-b") is not None  # the last good config still runs
                version = latest["config"]["version"]

                # 4. Fixed: applied; cam-b removed.
                write_cameras(config, "cam-a")
                await until(lambda: latest["config"]["version"] > version, "the fixed config applied")
                await until(lambda: camera(latest, "cam-b") is None, "cam-b removed")
                assert latest["config"]["last_error"] is None
            finally:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)

            # The unchanged camera never reconnected through all of this.
            assert service.sources.camera_worker("cam-a") is worker_a
            assert worker_a is not None
            assert worker_a.status.reconnects == 0
    finally:
        await service.stop()
    audit = (data / "audit.jsonl").read_text()
    assert audit.count('"config.reload') >= 3
