"""/metrics of the running service: parsed by prometheus_client, counters move as frames and alerts flow."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gridwatch.core.config.loader import load_config
from gridwatch.service import Service
from tests.support.e2e import enrol
from tests.support.metrics import scrape_async, value
from tests.support.paths import CLIP, TESTDATA

pytestmark = pytest.mark.e2e

PERFORMER = TESTDATA / "faces" / "lin_manuel_miranda" / "lin1.png"


def write_config(root: Path, camera: str, rule: str) -> Path:
    config = root / "config"
    config.mkdir()
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: metrics
  data_dir: {root / "data"}
  http: {{enabled: true, host: 127.0.0.1, port: 0}}
cameras:
  - {{id: {camera}, kind: file, path: "{CLIP}", loop: true, fps: 4,
      location_class: lobby, signage_verified_at: 2026-01-15}}
registries:
  - {{name: watch, purpose: metrics test, legal_basis: test fixture, retention_days: 1, threshold: 0.45}}
rules:
  - {{id: {rule}, kind: seen, registries: [watch], cooldown_s: 3600, severity: critical}}
notifier:
  console: {{enabled: true}}
"""
    )
    return config


async def test_metrics_parse_and_move_with_frames_and_alerts(tmp_path: Path) -> None:
    camera, rule = f"cam-{uuid.uuid4().hex[:6]}", f"seen-{uuid.uuid4().hex[:6]}"
    config = write_config(tmp_path, camera, rule)
    enrol(config, PERFORMER, "Performer")
    async with Service(load_config(config)) as service:
        url = f"http://127.0.0.1:{service.http_port}/metrics"
        async with httpx.AsyncClient() as http:
            text = (await http.get(url)).text
        names = {family.name for family in text_string_to_metric_families(text)}
        for family in (
            "gridwatch_frames_in",
            "gridwatch_frames_analysed",
            "gridwatch_alerts",
            "gridwatch_outbox_depth",
            "gridwatch_outbox_oldest_age_seconds",
            "gridwatch_queue_depth",
            "gridwatch_config_reloads",
            "gridwatch_inference_seconds",
            "gridwatch_delivery_attempts",
        ):
            assert family in names, f"{family} missing from /metrics"
        first = await scrape_async(url)
        async with asyncio.timeout(60):
            while True:
                later = await scrape_async(url)
                alerts = value(later, "gridwatch_alerts_total", rule=rule, severity="critical")
                delivered = value(later, "gridwatch_delivery_attempts_total", sink="console")
                if alerts >= 1 and delivered > value(first, "gridwatch_delivery_attempts_total", sink="console"):
                    break
                await asyncio.sleep(0.2)
    assert value(later, "gridwatch_frames_analysed_total", camera=camera) > value(
        first, "gridwatch_frames_analysed_total", camera=camera
    )
    assert value(later, "gridwatch_frames_in_total", camera=camera) > 0
    assert value(later, "gridwatch_queue_depth", queue="gridwatch.sightings/rules") >= 0
