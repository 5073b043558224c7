"""The gate intake of the service: senders wait for the processing, full or slow gates are refused, gates take turns."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from gridwatch.core.config.gates import MqttGateConfig
from gridwatch.core.interfaces import GateBusy, GateEvent
from gridwatch.gate_intake import GateIntake
from ingest.gates.factory import SOURCES, GateSourceUnavailable, gate_source_for
from ingest.gates.mqtt import MqttGateSource
from recognition.stage import decode_jpeg
from tests.support.gate_payloads import face_jpeg
from tests.support.metrics import sample

NOW = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


def event(gate_id: str, serial: int, image: bytes | None = b"\xff\xd8\xff") -> GateEvent:
    return GateEvent(gate_id=gate_id, received_at=NOW, device_time=NOW, serial=serial, face_image=image)


async def test_put_returns_once_processed_and_a_full_gate_queue_refuses() -> None:
    release = asyncio.Event()
    processed: list[int | None] = []

    async def slow(item: GateEvent) -> None:
        await release.wait()
        processed.append(item.serial)

    intake = GateIntake(slow, capacity=2, retry_after_s=7)
    busy_before = sample("gridwatch_gate_busy_total", gate="a")
    await intake.start()
    try:
        first = asyncio.create_task(intake.put(event("a", 1)))
        await asyncio.sleep(0.01)  # the worker takes event 1 and waits on it
        queued = [asyncio.create_task(intake.put(event("a", serial))) for serial in (2, 3)]
        await asyncio.sleep(0.01)
        with pytest.raises(GateBusy, match="queue is full") as refused:
            await intake.put(event("a", 4))
        assert refused.value.retry_after_s == 7
        assert sample("gridwatch_gate_busy_total", gate="a") == busy_before + 1
        assert intake.dropped == {"a": 1}
        assert intake.pending == 2
        assert not first.done()  # the sender waits for the processing, not only for the queue
        other = asyncio.create_task(intake.put(event("b", 5)))  # another gate has its own queue
        await asyncio.sleep(0.01)
        assert not other.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *queued, other), 5)
    finally:
        await intake.stop()
    assert processed == [1, 2, 5, 3]  # round-robin: gate b's event goes before gate a's third
    assert intake.processed == 4
    assert intake.stats()["a"].as_dict() == {
        "pending": 0,
        "in_progress": 0,
        "processed": 3,
        "failed": 0,
        "refused": 1,
        "timed_out": 0,
        "poisoned": 0,
        "dropped": 1,
    }


async def test_a_flooding_gate_does_not_starve_another() -> None:
    order: list[str] = []

    async def process(item: GateEvent) -> None:
        await asyncio.sleep(0.01)
        order.append(item.gate_id)

    intake = GateIntake(process, capacity=8)
    await intake.start()
    try:
        flood = [asyncio.create_task(intake.put(event("flood", serial))) for serial in range(8)]
        await asyncio.sleep(0)
        quiet = asyncio.create_task(intake.put(event("quiet", 1)))
        await asyncio.wait_for(quiet, 5)
        assert order.count("flood") <= 2  # at most the one in progress and one turn before it
        await asyncio.gather(*flood)
    finally:
        await intake.stop()


async def test_an_event_waiting_too_long_is_withdrawn_and_refused() -> None:
    release = asyncio.Event()
    processed: list[int | None] = []

    async def slow(item: GateEvent) -> None:
        await release.wait()
        processed.append(item.serial)

    intake = GateIntake(slow, wait_s=0.2)
    await intake.start()
    try:
        first = asyncio.create_task(intake.put(event("a", 1)))
        await asyncio.sleep(0.01)
        with pytest.raises(GateBusy, match="took over"):
            await intake.put(event("a", 2))  # still queued at the deadline: withdrawn
        with pytest.raises(GateBusy):
            await first  # in progress at the deadline: refused, but its recognition is not cut short
        release.set()
        await asyncio.sleep(0.05)
    finally:
        await intake.stop()
    assert processed == [1]
    assert intake.stats()["a"].timed_out == 2


async def test_a_failing_event_raises_to_its_sender_and_does_not_stop_the_worker() -> None:
    async def process(item: GateEvent) -> None:
        if item.serial == 1:
            raise ValueError("bad snapshot \xff\xd8")

    intake = GateIntake(process)
    await intake.start()
    try:
        with pytest.raises(ValueError, match="bad snapshot"):
            await intake.put(event("a", 1))
        await intake.put(event("a", 2))
    finally:
        await intake.stop()
    assert (intake.failed, intake.processed) == (1, 1)


async def test_an_event_that_always_fails_is_dropped_after_poison_after_failures() -> None:
    async def process(item: GateEvent) -> None:
        if item.serial == 1:
            raise ValueError("recognition cannot take this snapshot")

    before = sample("gridwatch_gate_events_poisoned_total", gate="a")
    intake = GateIntake(process, poison_after=3)
    await intake.start()
    try:
        for _ in range(3):  # refused while it may still go through: the device sends it again
            with pytest.raises(ValueError, match="cannot take"):
                await intake.put(event("a", 1))
        await intake.put(event("a", 1))  # the fourth time: answered as taken, not processed
        await intake.put(event("a", 1))
        await intake.put(event("a", 2))  # the gate's other events are not affected
        with pytest.raises(ValueError, match="cannot take"):
            await intake.put(event("b", 1))  # the same serial at another gate is another event
    finally:
        await intake.stop()
    stats = intake.stats()
    assert (stats["a"].failed, stats["a"].poisoned, stats["a"].processed) == (3, 2, 1)
    assert stats["a"].as_dict()["poisoned"] == 2
    assert sample("gridwatch_gate_events_poisoned_total", gate="a") == before + 2


async def test_a_stopped_intake_refuses_and_faceless_events_are_ignored() -> None:
    seen: list[GateEvent] = []

    async def process(item: GateEvent) -> None:
        seen.append(item)

    intake = GateIntake(process)
    with pytest.raises(GateBusy, match="not running"):
        await intake.put(event("a", 1))
    await intake.start()
    await intake.put(event("a", 2, image=None))  # a heartbeat-like event: nothing to recognise
    await intake.stop()
    await intake.stop()  # idempotent
    assert seen == []
    assert intake.pending == 0


async def test_stop_refuses_what_it_could_not_finish() -> None:
    async def stuck(item: GateEvent) -> None:
        await asyncio.Event().wait()

    intake = GateIntake(stuck)
    await intake.start()
    senders = [asyncio.create_task(intake.put(event("a", serial))) for serial in (1, 2)]
    await asyncio.sleep(0.01)
    await intake.stop(drain_s=0.05)
    for sender in senders:
        with pytest.raises(GateBusy, match="stopping"):
            await sender


async def test_a_refusal_without_a_face_is_processed() -> None:
    seen: list[int | None] = []

    async def process(item: GateEvent) -> None:
        seen.append(item.serial)

    intake = GateIntake(process)
    await intake.start()
    try:
        # The gate's own "no" is a stranger attempt even without a picture; a "yes" without one is nothing.
        await intake.put(GateEvent(gate_id="a", received_at=NOW, device_time=NOW, serial=5, verdict="granted"))
        await intake.put(GateEvent(gate_id="a", received_at=NOW, device_time=NOW, serial=6, verdict="denied"))
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
