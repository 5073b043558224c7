"""A stream gate's serial watermark: what it may pass, where it is kept, and a restart that resumes from it."""

from __future__ import annotations

import asyncio

from gridwatch.core.db import Database
from ingest.gates.watermarks import DatabaseWatermarks, GateWatermark
from tests.support.db import Databases


class Saved:
    """A ``SerialWatermarks`` in memory that records every save."""

    def __init__(self, value: int | None = None) -> None:
        self.value = value
        self.saves: list[int] = []

    def load(self, gate_id: str) -> int | None:
        return self.value

    def save(self, gate_id: str, serial: int) -> None:
        self.value = serial
        self.saves.append(serial)


async def settled(mark: GateWatermark) -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)  # the writer saves off the event loop


async def test_an_event_in_flight_holds_the_watermark_below_it() -> None:
    store = Saved()
    mark = GateWatermark("g", store)
    for serial in (1, 2, 3):
        mark.begin(serial)
    mark.end(1)
    mark.end(3)  # 2 is still being handed over: a crash now must not skip it
    assert mark.value == 1
    await settled(mark)
    assert store.value == 1
    mark.end(2)
    await settled(mark)
    assert (mark.value, store.value) == (3, 3)


async def test_a_range_to_search_holds_the_watermark_until_it_was_searched() -> None:
    store = Saved()
    mark = GateWatermark("g", store)
    mark.begin(5)
    mark.end(5)
    mark.hold(6)  # a gap 6-9 revealed by live event 10
    mark.begin(10)
    mark.end(10)
    assert mark.value == 5
    mark.settle(6)
    assert mark.value == 10
    await mark.stop()
    assert store.value == 10


async def test_saves_are_coalesced_and_never_go_back() -> None:
    store = Saved(value=40)
    mark = GateWatermark("g", store)
    assert await mark.load() == 40
    for serial in range(30, 60):
        mark.begin(serial)
        mark.end(serial)
    await mark.stop()
    assert store.value == 59
    assert len(store.saves) < 30  # a burst costs a few writes, not one per event
    assert all(serial > 40 for serial in store.saves)


async def test_without_a_store_the_watermark_is_kept_in_memory_only() -> None:
    mark = GateWatermark("g", None)
    assert await mark.load() is None
    mark.begin(1)
    mark.end(1)
    await mark.stop()
    assert mark.value == 1


def test_the_database_keeps_one_watermark_per_gate(databases: Databases) -> None:
    database: Database = databases()
    first = DatabaseWatermarks(database)
    assert first.load("gate-a") is None
    first.save("gate-a", 17)
    first.save("gate-a", 18)
    first.save("gate-b", 3)
    other_process = DatabaseWatermarks(databases())
    assert (other_process.load("gate-a"), other_process.load("gate-b")) == (18, 3)
