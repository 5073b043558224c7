"""``isapi_stream`` and ``dahua_stream`` against a real emulated terminal that is killed and restarted."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gridwatch.core.config.gates import DahuaStreamGateConfig, IsapiStreamGateConfig
from gridwatch.core.db import Database
from gridwatch.core.interfaces import GateEvent, SourceState
from ingest.gates.common import PayloadRejected
from ingest.gates.dahua_stream import DahuaStreamSource
from ingest.gates.http_stream import HttpStreamSource
from ingest.gates.isapi_history import picture_url
from ingest.gates.isapi_stream import IsapiStreamSource
from ingest.gates.watermarks import DatabaseWatermarks
from tests.ingest.polling import eventually
from tests.support.db import Databases
from tests.support.gate_device import Dialect, GateDevice
from tests.support.gate_payloads import face_jpeg
from tests.support.rtsp import free_port

DEVICE_PASSWORD = "Dev1ce-Secret-pw"
FACES = [face_jpeg(name) for name in ("obama", "biden", "kit")]  # the emulator's picture of serial n: FACES[n % 3]
SOURCES: dict[Dialect, tuple[type[HttpStreamSource], type[Any]]] = {
    "isapi": (IsapiStreamSource, IsapiStreamGateConfig),
    "dahua": (DahuaStreamSource, DahuaStreamGateConfig),
}


class Collected:
    def __init__(self) -> None:
        self.events: list[GateEvent] = []

    async def __call__(self, event: GateEvent) -> None:
        self.events.append(event)

    @property
    def serials(self) -> list[int | None]:
        return [event.serial for event in self.events]


def make_source(
    dialect: Dialect, url: str, handler: Collected, *, watermarks: Database | None = None, **overrides: Any
) -> HttpStreamSource:
    source_type, config_type = SOURCES[dialect]
    values: dict[str, Any] = {
        "id": f"{dialect}-gate",
        "kind": f"{dialect}_stream",
        "url": url,
        "username": "admin",
        "password": DEVICE_PASSWORD,
        "doors": [{"door": "1", "direction": "in"}],
        "idle_timeout_s": 5.0,
        "connect_timeout_s": 2.0,
        "backoff": {"initial_s": 0.05, "max_s": 0.3},
    }
    values.update(overrides)
    kept = None if watermarks is None else DatabaseWatermarks(watermarks)
    return source_type(config_type.model_validate(values), handler, watermarks=kept)  # type: ignore[no-any-return]


@pytest.fixture
def devices() -> Iterator[list[GateDevice]]:
    started: list[GateDevice] = []
    try:
        yield started
    finally:
        for device in started:
            device.stop()


@pytest.fixture
async def sources() -> AsyncIterator[list[HttpStreamSource]]:
    started: list[HttpStreamSource] = []
    try:
        yield started
    finally:
        for source in started:
            await source.stop()


def extra(source: HttpStreamSource, name: str) -> int:
    value = source.status.extra[name]
    assert isinstance(value, int)
    return value


@pytest.mark.parametrize("dialect", ["isapi", "dahua"])
async def test_the_source_reconnects_after_a_device_restart_drops_replays_and_reports_the_gap(
    dialect: Dialect,
    devices: list[GateDevice],
    sources: list[HttpStreamSource],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    device = GateDevice(dialect, port=free_port(), password=DEVICE_PASSWORD, serials="1-5", inject_bad=True)
    devices.append(device)
    device.start()
    handler = Collected()
    source = make_source(dialect, device.url, handler)
    sources.append(source)
    await source.start()
    await source.start()  # idempotent

    await eventually(lambda: handler.serials == [1, 2, 3, 4, 5], 15, "events 1-5")
    assert source.status.state is SourceState.ONLINE
    assert [event.face_image for event in handler.events] == [FACES[n % 3] for n in range(1, 6)]
    first = handler.events[0]
    assert (first.gate_id, first.door, first.direction) == (f"{dialect}-gate", "1", "in")
    assert first.device_time.tzinfo is not None
    assert first.verify_mode == "face"
    assert first.device_person_id == "1001"
    # The malformed parts the device sent after event 1 were counted; the stream went on.
    assert extra(source, "rejected") == (2 if dialect == "isapi" else 1)
    await eventually(lambda: extra(source, "heartbeats") >= 1, 10, "a heartbeat")

    device.kill()  # mid-stream: the connection is open, heartbeats flowing
    await eventually(lambda: source.status.state is SourceState.OFFLINE, 10, "OFFLINE after the kill")
    # The restarted device replays 4 and 5 (duplicates) and has skipped 6-8 (the gap).
    device.start(serials="4-5,9-11", inject_bad=False)
    await eventually(lambda: handler.serials[-1:] == [11], 15, "events after the restart")

    assert source.status.state is SourceState.ONLINE
    assert source.status.reconnects >= 1
    assert handler.serials == [1, 2, 3, 4, 5, 9, 10, 11]
    assert extra(source, "duplicates") == 2
    assert extra(source, "serial_gaps") == 1
    assert extra(source, "missed_events") == 3
    assert "3 event(s) missed between 5 and 9" in caplog.text
    assert DEVICE_PASSWORD not in caplog.text
    assert DEVICE_PASSWORD not in repr(source)

    await source.stop()
    await source.stop()  # idempotent
    assert source.status.state.value == "stopped"


@pytest.mark.parametrize("dialect", ["isapi", "dahua"])
async def test_wrong_credentials_keep_the_gate_offline_with_a_clear_reason(
    dialect: Dialect, devices: list[GateDevice], sources: list[HttpStreamSource], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    device = GateDevice(dialect, port=free_port(), password=DEVICE_PASSWORD)
    devices.append(device)
    device.start()
    handler = Collected()
    source = make_source(dialect, device.url, handler, password="not-the-password")
    sources.append(source)
    await source.start()

    await eventually(lambda: len(device.requests) >= 4, 10, "several attempts")

    assert source.status.state is SourceState.OFFLINE
    assert "authentication failed" in (source.status.last_error or "")
    assert handler.events == []
    assert "not-the-password" not in caplog.text


async def test_an_idle_stream_is_reconnected(devices: list[GateDevice], sources: list[HttpStreamSource]) -> None:
    # No events, and heartbeats far apart: the connection stays open but silent.
    device = GateDevice("isapi", port=free_port(), password=DEVICE_PASSWORD, serials="", heartbeat_s=3600)
    devices.append(device)
    device.start()
    source = make_source("isapi", device.url, Collected(), idle_timeout_s=0.3)
    sources.append(source)
    await source.start()

    await eventually(lambda: source.status.reconnects >= 2, 10, "reconnects after idle timeouts")

    assert "nothing received" in (source.status.last_error or "")


# --- backfill from the terminal's event log (AcsEvent) -----------------------------------------------


def in_order(handler: Collected) -> list[int]:
    return sorted(serial for serial in handler.serials if serial is not None)


def acs_event_requests(device: GateDevice) -> int:
    return sum(1 for path in device.requests if path.startswith("/ISAPI/AccessControl/AcsEvent"))


async def _stream_until_ten_then_drop(device: GateDevice, handler: Collected, source: HttpStreamSource) -> None:
    await source.start()
    await eventually(lambda: handler.serials == list(range(1, 11)), 15, "events 1-10")
    device.kill()
    await eventually(lambda: source.status.state is SourceState.OFFLINE, 10, "OFFLINE after the kill")


async def test_events_missed_while_disconnected_are_backfilled_from_the_event_log_once_each(
    devices: list[GateDevice], sources: list[HttpStreamSource]
) -> None:
    device = GateDevice("isapi", port=free_port(), password=DEVICE_PASSWORD, serials="1-10", history="1-10")
    devices.append(device)
    device.start()
    handler = Collected()
    source = make_source("isapi", device.url, handler, id="isapi-backfilled")
    sources.append(source)
    await _stream_until_ten_then_drop(device, handler, source)

    # Meanwhile the terminal logged 11-15; the stream resumes at 16.
    device.start(serials="16-17", history="1-15")
    await eventually(lambda: in_order(handler) == list(range(1, 18)), 15, "events 11-17")

    assert len(handler.serials) == 17  # each once, whether the log or the stream told it first
    assert extra(source, "backfilled") == 5
    assert extra(source, "unrecovered") == 0
    recovered = {event.serial: event for event in handler.events if event.serial is not None and event.serial >= 11}
    # The face comes from pictureURL's path on the configured device (not the LAN address it names).
    assert all(recovered[n].face_image == FACES[n % 3] for n in range(11, 16))
    assert recovered[11].verify_mode == "face"
    assert recovered[11].door == "1"
    assert any(path.startswith("/LOCALS/pic/acsLinkCap/11.jpeg") for path in device.requests)
    assert REGISTRY.get_sample_value("gridwatch_gate_backfilled_total", {"gate": "isapi-backfilled"}) == 5


async def test_after_a_restart_of_gridwatch_the_search_resumes_from_the_saved_watermark(
    devices: list[GateDevice], sources: list[HttpStreamSource], databases: Databases
) -> None:
    """The serials in memory die with the process; the watermark in the database does not."""
    device = GateDevice("isapi", port=free_port(), password=DEVICE_PASSWORD, serials="1-10", history="1-10")
    devices.append(device)
    device.start()
    before = Collected()
    source = make_source("isapi", device.url, before, id="isapi-restarted", watermarks=databases())
    await source.start()
    await eventually(lambda: before.serials == list(range(1, 11)), 15, "events 1-10")
    await source.stop()  # gridwatch stops (or dies: the watermark is saved as events are handed over)
    device.kill()

    # While gridwatch was down the terminal logged 11-15; when it is back its stream goes on at 16.
    device.start(serials="16-17", history="1-15")
    after = Collected()
    restarted = make_source("isapi", device.url, after, id="isapi-restarted", watermarks=databases())
    sources.append(restarted)
    await restarted.start()
    await eventually(lambda: in_order(after) == list(range(11, 18)), 15, "events 11-17 after the restart")
    assert extra(restarted, "backfilled") == 5
    assert extra(restarted, "unrecovered") == 0


async def test_a_terminal_without_an_event_log_counts_the_gap_unrecovered_and_is_not_asked_again(
    devices: list[GateDevice], sources: list[HttpStreamSource], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    device = GateDevice("isapi", port=free_port(), password=DEVICE_PASSWORD, serials="1-10", acs_event=False)
    devices.append(device)
    device.start()
    handler = Collected()
    source = make_source("isapi", device.url, handler, id="isapi-no-log")
    sources.append(source)
    await _stream_until_ten_then_drop(device, handler, source)

    device.start(serials="16-17")
    await eventually(lambda: extra(source, "unrecovered") == 5, 15, "11-15 counted unrecovered")
    asked = acs_event_requests(device)
    assert 1 <= asked <= 2  # one search (and its digest challenge)

    device.kill()  # another reconnect, another gap: the terminal is not asked again
    device.start(serials="20")
    await eventually(lambda: extra(source, "unrecovered") == 7, 15, "18-19 counted unrecovered")

    assert acs_event_requests(device) == asked
    assert handler.serials == [*range(1, 11), 16, 17, 20]
    assert extra(source, "backfilled") == 0
    assert caplog.text.count("no backfill of missed events: the event log search (AcsEvent) answered HTTP 404") == 1


async def test_a_gap_beyond_the_backfill_limit_recovers_the_oldest_and_counts_the_rest(
    devices: list[GateDevice], sources: list[HttpStreamSource]
) -> None:
    device = GateDevice("isapi", port=free_port(), password=DEVICE_PASSWORD, serials="1-10", page_cap=2)
    devices.append(device)
    device.start()
    handler = Collected()
    source = make_source("isapi", device.url, handler, id="isapi-bounded", backfill_max_events=3)
    sources.append(source)
    await _stream_until_ten_then_drop(device, handler, source)

    device.start(serials="20-21", history="1-19")
    await eventually(lambda: extra(source, "unrecovered") == 6, 15, "14-19 counted unrecovered")
    await eventually(lambda: 21 in handler.serials, 15, "the live events")

    assert in_order(handler) == [*range(1, 14), 20, 21]
    assert extra(source, "backfilled") == 3
    assert REGISTRY.get_sample_value("gridwatch_gate_unrecovered_total", {"gate": "isapi-bounded"}) == 6


@pytest.mark.parametrize(
    ("picture", "expected"),
    [
        ("http://192.168.1.64/LOCALS/pic/1.jpeg@WEB01", "http://10.0.0.5:8080/LOCALS/pic/1.jpeg@WEB01"),
        ("https://elsewhere.example/pic?id=3", "http://10.0.0.5:8080/pic?id=3"),
        ("/LOCALS/pic/2.jpeg", "http://10.0.0.5:8080/LOCALS/pic/2.jpeg"),
        ("pic.jpeg", None),
    ],
)
def test_a_logged_pictures_url_is_only_ever_fetched_from_the_configured_device(
    picture: str, expected: str | None
) -> None:
    if expected is None:
        with pytest.raises(PayloadRejected):
            picture_url("http://10.0.0.5:8080/", picture)
    else:
        assert picture_url("http://10.0.0.5:8080/", picture) == expected
