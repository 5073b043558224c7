"""The gate intake of the service: sources never wait, the oldest event gives way, failures stay local."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from gridwatch.core.config.gates import MqttGateConfig
from gridwatch.core.interfaces import GateEvent
from gridwatch.gate_intake import GateIntake
from ingest.gates.factory import SOURCES, GateSourceUnavailable, gate_source_for
from ingest.gates.mqtt import MqttGateSource
from recognition.stage import decode_jpeg
from tests.support.gate_payloads import face_jpeg

NOW = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def event(gate_id: str, serial: int, image: bytes | None = b"\xff\xd8\xff") -> GateEvent:
    return GateEvent(gate_id=gate_id, received_at=NOW, device_time=NOW, serial=serial, face_image=image)


async def test_full_queue_drops_the_oldest_and_counts_it() -> None:
    release = asyncio.Event()
    processed: list[int | None] = []

    async def slow(item: GateEvent) -> None:
        await release.wait()
        processed.append(item.serial)

    intake = GateIntake(slow, capacity=2)
    await intake.start()
    try:
        await intake.put(event("a", 1))
        await asyncio.sleep(0)  # the worker takes event 1 and waits on it
        for serial in (2, 3, 4):
            await intake.put(event("a" if serial < 4 else "b", serial))
        assert intake.dropped == {"a": 1}  # event 2 gave way to event 4
        assert intake.pending == 2
        release.set()
    finally:
        await intake.stop()
    assert processed == [1, 3, 4]
    assert intake.processed == 3


async def test_a_failing_event_does_not_stop_the_worker() -> None:
    done = asyncio.Event()

    async def process(item: GateEvent) -> None:
        if item.serial == 1:
            raise ValueError("bad snapshot \xff\xd8")
        done.set()

    intake = GateIntake(process)
    await intake.start()
    try:
        await intake.put(event("a", 1))
        await intake.put(event("a", 2))
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await intake.stop()
    assert (intake.failed, intake.processed) == (1, 1)


async def test_stopped_intake_and_faceless_events_are_ignored() -> None:
    seen: list[GateEvent] = []

    async def process(item: GateEvent) -> None:
        seen.append(item)

    intake = GateIntake(process)
    await intake.put(event("a", 1))  # not started
    await intake.start()
    await intake.put(event("a", 2, image=None))  # a heartbeat-like event: nothing to recognise
    await intake.stop()
    await intake.stop()  # idempotent
    assert seen == []
    assert intake.pending == 0


async def test_a_refusal_without_a_face_is_processed() -> None:
    seen: list[int | None] = []
    done = asyncio.Event()

    async def process(item: GateEvent) -> None:
        seen.append(item.serial)
        done.set()

    intake = GateIntake(process)
    await intake.start()
    try:
        # The gate's own "no" is a stranger attempt even without a picture; a "yes" without one is nothing.
        await intake.put(GateEvent(gate_id="a", received_at=NOW, device_time=NOW, serial=5, verdict="granted"))
        await intake.put(GateEvent(gate_id="a", received_at=NOW, device_time=NOW, serial=6, verdict="denied"))
        await asyncio.wait_for(done.wait(), 5)
    finally:
        await intake.stop()
    assert seen == [6]


def test_decode_jpeg() -> None:
    image = decode_jpeg(face_jpeg("obama"))
    assert image is not None
    assert image.ndim == 3
    assert image.shape[2] == 3
    assert decode_jpeg(b"not an image") is None


async def test_factory_picks_the_source_of_the_kind() -> None:
    async def ignore(item: GateEvent) -> None:
        return None

    config = MqttGateConfig(id="door-1", kind="mqtt", topic="t")
    source = gate_source_for(config, ignore)
    assert isinstance(source, MqttGateSource)
    assert set(SOURCES) == {"isapi_push", "isapi_stream", "dahua_stream", "mqtt"}


async def test_factory_reports_a_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    async def ignore(item: GateEvent) -> None:
        return None

    monkeypatch.setitem(SOURCES, "mqtt", ("ingest.gates.no_such_dialect", "Nothing"))
    with pytest.raises(GateSourceUnavailable, match=r"gate door-1: kind 'mqtt' needs 'ingest.gates.no_such_dialect'"):
        gate_source_for(MqttGateConfig(id="door-1", kind="mqtt", topic="t"), ignore)
