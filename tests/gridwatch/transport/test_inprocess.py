"""The in-process driver: delivery per group, taps, back-pressure, retries, drain at stop."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from gridwatch.core.config.transport import TransportConfig
from gridwatch.core.events import Quality, Sighting, SourceKind
from gridwatch.core.transport import SIGHTINGS
from gridwatch.transport import transport_for
from gridwatch.transport.inprocess import InProcessTransport


def sighting(person: str = "p1") -> Sighting:
    now = dt.datetime.now(dt.UTC)
    return Sighting(
        source="cam",
        source_kind=SourceKind.CAMERA,
        captured_at=now,
        received_at=now,
        person_id=person,
        registry="watch",
        similarity=0.6,
        threshold=0.45,
        model="test",
        quality=Quality(det_score=0.9, face_px=80.0),
    )


async def wait_for(predicate, deadline_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(deadline_s):
        while not predicate():
            await asyncio.sleep(0.01)


def test_the_embedded_default_is_the_in_process_driver() -> None:
    assert transport_for(TransportConfig(), service_name="t").driver == "inprocess"


async def test_every_group_gets_every_event_and_taps_see_them() -> None:
    transport = InProcessTransport(queue_size=4)
    rules: list[str] = []
    console: list[str] = []
    tapped: list[str] = []

    async def to_rules(s: Sighting) -> None:
        rules.append(s.person_id)

    async def to_console(s: Sighting) -> None:
        console.append(s.person_id)

    async def tap(s: Sighting) -> None:
        tapped.append(s.person_id)

    transport.subscribe(SIGHTINGS, to_rules, group="rules")
    transport.subscribe(SIGHTINGS, to_console, group="console")
    remove = transport.tap(SIGHTINGS, tap)
    await transport.start()
    try:
        port = transport.publisher(SIGHTINGS)
        for person in ("a", "b", "c"):
            await port.put(sighting(person))
        remove()
        await port.put(sighting("d"))
        await wait_for(lambda: len(rules) == 4 and len(console) == 4)
    finally:
        await transport.stop()
    assert rules == console == ["a", "b", "c", "d"]
    assert tapped == ["a", "b", "c"]


async def test_a_group_subscribes_once() -> None:
    transport = InProcessTransport()

    async def handler(s: Sighting) -> None: ...

    transport.subscribe(SIGHTINGS, handler, group="rules")
    with pytest.raises(ValueError, match="already consumes"):
        transport.subscribe(SIGHTINGS, handler, group="rules")


async def test_a_full_queue_makes_the_publisher_wait() -> None:
    transport = InProcessTransport(queue_size=2)
    release = asyncio.Event()
    handled: list[str] = []

    async def slow(s: Sighting) -> None:
        await release.wait()
        handled.append(s.person_id)

    transport.subscribe(SIGHTINGS, slow, group="rules")
    await transport.start()
    try:
        port = transport.publisher(SIGHTINGS)
        taken = []
        for person in ("a", "b", "c"):  # one in the handler, two queued
            taken.append(asyncio.create_task(port.put(sighting(person))))
            await asyncio.sleep(0.01)
        blocked = asyncio.create_task(port.put(sighting("d")))
        await asyncio.sleep(0.1)
        assert not any(task.done() for task in [*taken, blocked])  # put returns once handled
        assert transport.depths() == {"gridwatch.sightings/rules": 2}
        release.set()
        await asyncio.wait_for(asyncio.gather(*taken, blocked), 5)
    finally:
        await transport.stop()
    assert handled == ["a", "b", "c", "d"]


async def test_a_failing_handler_gets_the_event_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gridwatch.transport.inprocess.RETRY_PAUSE_S", 0.01)
    transport = InProcessTransport()
    attempts: list[str] = []

    async def flaky(s: Sighting) -> None:
        attempts.append(s.person_id)
        if len(attempts) < 3:
            raise ConnectionError("database went away")

    transport.subscribe(SIGHTINGS, flaky, group="rules")
    await transport.start()
    try:
        await transport.publisher(SIGHTINGS).put(sighting("a"))
        await wait_for(lambda: len(attempts) == 3)
    finally:
        await transport.stop()
    assert attempts == ["a", "a", "a"]


async def test_stop_handles_what_was_queued_then_refuses_events() -> None:
    transport = InProcessTransport()
    handled: list[str] = []

    async def handler(s: Sighting) -> None:
        await asyncio.sleep(0.01)
        handled.append(s.person_id)

    transport.subscribe(SIGHTINGS, handler, group="rules")
    await transport.start()
    port = transport.publisher(SIGHTINGS)
    for person in "abcde":
        await port.put(sighting(person))
    await transport.stop()
    await transport.stop()  # safe twice
    assert handled == list("abcde")
    with pytest.raises(RuntimeError, match="stopped"):
        await port.put(sighting("f"))


async def test_put_returns_once_the_handler_returned_and_fails_when_stopped_first() -> None:
    transport = InProcessTransport(drain_s=0.05)
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(s: Sighting) -> None:
        await release.wait()
        handled.append(s.person_id)

    transport.subscribe(SIGHTINGS, handler, group="rules")
    await transport.start()
    port = transport.publisher(SIGHTINGS)
    first = asyncio.create_task(port.put(sighting("a")))
    await asyncio.sleep(0.05)
    assert not first.done()
    release.set()
    await asyncio.wait_for(first, 5)
    assert handled == ["a"]  # handled before put returned: the in-process "acks=all"

    release.clear()
    stuck = asyncio.create_task(port.put(sighting("b")))
    await asyncio.sleep(0.05)
    await transport.stop()  # the drain deadline passes with "b" in the handler
    with pytest.raises(RuntimeError, match="transport stopped"):
        await stuck
