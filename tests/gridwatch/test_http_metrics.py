"""``/metrics`` on a real uvicorn: the exposition parses, every family is there, counters move between scrapes."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gridwatch.core.config.cameras import FileCameraConfig
from gridwatch.core.config.notifier import NotifierConfig
from gridwatch.core.events import Alert, Severity, SourceKind, alert_id_for
from gridwatch.core.interfaces import Frame
from gridwatch.core.metrics import register_outbox_probe, unregister_outbox_probe
from gridwatch.http import HttpServer, create_app
from ingest.camera import CameraWorker
from ingest.sources import source_for
from notifier.notifier import Notifier
from notifier.sinks import ConsoleSink
from tests.ingest.polling import eventually
from tests.support.cameras import LOCATION_CLASS, SIGNAGE_CHECKED
from tests.support.db import sqlite_outbox
from tests.support.metrics import scrape_async, value
from tests.support.paths import CLIP

FAMILIES = {
    "gridwatch_frames_in",
    "gridwatch_frames_analysed",
    "gridwatch_frames_dropped",
    "gridwatch_faces_detected",
    "gridwatch_faces_gated",
    "gridwatch_faces_embedded",
    "gridwatch_sightings",
    "gridwatch_alerts",
    "gridwatch_delivery_attempts",
    "gridwatch_delivery_failures",
    "gridwatch_deliveries_parked",
    "gridwatch_gate_busy",
    "gridwatch_gate_events",
    "gridwatch_gate_rejections",
    "gridwatch_gate_duplicates",
    "gridwatch_gate_backfilled",
    "gridwatch_gate_unrecovered",
    "gridwatch_queue_depth",
    "gridwatch_config_reloads",
    "gridwatch_inference_seconds",
    "gridwatch_outbox_depth",
    "gridwatch_outbox_oldest_age_seconds",
}


@pytest.fixture
async def metrics_url() -> AsyncIterator[str]:
    """The ``/metrics`` URL of the HTTP API, served by uvicorn in this test's event loop on a free port."""
    server = HttpServer(create_app(status=dict), "127.0.0.1", 0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}/metrics"
    finally:
        await server.stop()


def an_alert(source: str) -> Alert:
    at = dt.datetime.now(dt.UTC)
    return Alert(
        alert_id=alert_id_for("seen", "p-0001", source, at, 300),
        rule="seen",
        severity=Severity.WARNING,
        person_id="p-0001",
        registry="watch",
        source=source,
        source_kind=SourceKind.CAMERA,
        created_at=at,
        sightings=["s-1"],
        similarity=0.61,
        explanation="Person of registry watch seen (similarity 0.61 >= 0.45).",
    )


async def test_metrics_parse_with_every_family_and_the_prometheus_content_type(metrics_url: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(metrics_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    parsed = list(text_string_to_metric_families(response.text))  # raises on a malformed exposition
    assert not FAMILIES - {family.name for family in parsed}, "families missing"
    kinds = {family.name: family.type for family in parsed}
    assert kinds["gridwatch_frames_in"] == "counter"
    assert kinds["gridwatch_queue_depth"] == "gauge"
    assert kinds["gridwatch_inference_seconds"] == "histogram"
    assert kinds["gridwatch_outbox_depth"] == "gauge"


async def test_counters_move_between_two_scrapes_as_frames_and_alerts_flow(metrics_url: str, tmp_path: Path) -> None:
    camera = f"metrics-{uuid.uuid4().hex[:8]}"  # series of this test alone: the registry is process-global
    sink = ConsoleSink(io.StringIO(), name=f"console-{uuid.uuid4().hex[:8]}")
    first = await scrape_async(metrics_url)

    # Frames: a real file camera (the shared test clip) feeding a handler that stands in for recognition.
    analysed: list[Frame] = []

    async def on_frame(frame: Frame) -> None:
        analysed.append(frame)

    config = FileCameraConfig(
        id=camera, kind="file", location_class=LOCATION_CLASS, signage_verified_at=SIGNAGE_CHECKED, path=CLIP, fps=10
    )
    async with CameraWorker(config, source_for(config, Path.cwd()), on_frame):
        await eventually(lambda: len(analysed) >= 3, 20, "3 frames analysed")

    # Alerts: through the outbox to a real console sink; the outbox is measured by its probe.
    with sqlite_outbox(tmp_path / "outbox.sqlite3") as outbox:

        def probe() -> tuple[int, float | None]:
            return outbox.count_pending(), None

        register_outbox_probe(probe)
        try:
            async with Notifier(NotifierConfig(), outbox, [sink], None) as notifier:
                await notifier.submit(an_alert(camera))
                await eventually(lambda: outbox.count_pending() == 0, 10, "the alert delivered")
            second = await scrape_async(metrics_url)
        finally:
            unregister_outbox_probe(probe)
    third = await scrape_async(metrics_url)

    def moved(name: str, **labels: str) -> float:
        return value(second, name, **labels) - value(first, name, **labels)

    assert moved("gridwatch_frames_in_total", camera=camera) >= 3
    assert moved("gridwatch_frames_analysed_total", camera=camera) >= 3
    assert moved("gridwatch_delivery_attempts_total", sink=sink.name) == 1
    assert moved("gridwatch_delivery_failures_total", sink=sink.name) == 0
    assert value(second, "gridwatch_outbox_depth") == 0.0  # present while the probe is registered
    assert ("gridwatch_outbox_depth", ()) not in third  # and gone with it
