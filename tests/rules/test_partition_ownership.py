"""Rule state tagged by partition: a rule worker arms, fires and counts only the timers of the partitions
it owns; a new owner finds them (also those one process wrote, all tagged 0); a revoked partition's timers
stop firing there. Two engines on one database stand for two rule workers. Both backends."""

from __future__ import annotations

import asyncio
import datetime as dt

from pydantic import TypeAdapter
from sqlalchemy import select

from gridwatch.core.config.rules import RuleConfig
from gridwatch.core.db import Database
from gridwatch.core.db.schema import rule_timers
from gridwatch.core.events import Alert
from rules.engine import RuleEngine
from rules.stage import RulesStage
from rules.state import RuleState
from tests.rules.support import T0, Clock, Directory, Entry
from tests.support.db import Databases

RULES = TypeAdapter(list[RuleConfig]).validate_python(
    [{"id": "welfare", "kind": "not_seen", "registries": ["watch"], "after_s": 3600}]
)
PERSONS = [f"p_{i}" for i in range(12)]
PARTITIONS = 3


def partition_of(person_id: str) -> int:
    """A stand-in for the producers' partitioner (the Kafka driver's murmur2 in the service)."""
    return int(person_id.removeprefix("p_")) % PARTITIONS


def worker(database: Database, clock: Clock) -> RuleEngine:
    return RuleEngine(RULES, RuleState(database), clock, directory=Directory(*(Entry(p) for p in PERSONS)))


def fire(engine: RuleEngine) -> list[Alert]:
    engine.arm()
    firings = engine.due()
    engine.commit(firings)
    return [f.alert for f in firings]


def tags(database: Database) -> dict[str, int]:
    t = rule_timers.c
    query = select(t.person_id, t.partition).where(t.person_id != "*")
    return database.transaction(lambda conn: {row[0]: row[1] for row in conn.execute(query)}, what="test read")


def test_each_worker_arms_and_fires_only_its_partitions(databases: Databases) -> None:
    clock = Clock()
    a, b = worker(databases(), clock), worker(databases(), clock)
    a.state.own(frozenset({0, 1}), partition_of)
    b.state.own(frozenset({2}), partition_of)
    a.arm()
    assert set(tags(a.state.database)) == {p for p in PERSONS if partition_of(p) in {0, 1}}
    b.arm()
    assert tags(a.state.database) == {p: partition_of(p) for p in PERSONS}
    clock.now = T0 + dt.timedelta(hours=1)
    fired_a, fired_b = fire(a), fire(b)
    assert sorted(x.person_id for x in fired_a) == sorted(p for p in PERSONS if partition_of(p) != 2)
    assert sorted(x.person_id for x in fired_b) == sorted(p for p in PERSONS if partition_of(p) == 2)
    assert fire(a) == fire(b) == []  # once


def test_a_revoked_partition_moves_to_its_new_owner_with_its_due_timers(databases: Databases) -> None:
    clock = Clock()
    a, b = worker(databases(), clock), worker(databases(), clock)
    a.state.own(frozenset({0, 1, 2}), partition_of)
    a.arm()
    assert a.next_due() == T0 + dt.timedelta(hours=1)
    # A rebalance: partition 2 goes to b (revoked from a first, as the group protocol does).
    a.state.disown(frozenset({2}))
    b.state.own(frozenset({2}), partition_of)
    assert b.state.timer_persons("welfare") == {p for p in PERSONS if partition_of(p) == 2}
    clock.now = T0 + dt.timedelta(hours=2)  # overdue while it moved
    assert sorted(x.person_id for x in fire(b)) == sorted(p for p in PERSONS if partition_of(p) == 2)
    assert {x.person_id for x in fire(a)} == {p for p in PERSONS if partition_of(p) != 2}
    a.state.disown(frozenset({0, 1}))
    assert a.next_due() is None
    assert a.state.due_timers(clock.now) == []


def test_timers_one_process_wrote_are_retagged_for_their_owners(databases: Databases) -> None:
    clock = Clock()
    single = worker(databases(), clock)
    single.arm()  # one process: every row tagged 0
    assert set(tags(single.state.database).values()) == {0}
    b = worker(databases(), clock)
    b.state.own(frozenset({1}), partition_of)
    assert tags(b.state.database) == {p: partition_of(p) for p in PERSONS}
    clock.now = T0 + dt.timedelta(hours=1)
    assert sorted(x.person_id for x in fire(b)) == sorted(p for p in PERSONS if partition_of(p) == 1)


def test_the_stage_follows_assignments_and_a_revocation_waits_for_a_timer_pass(databases: Databases) -> None:
    clock = Clock()
    engine = worker(databases(), clock)
    stored: list[Alert] = []

    class Outbox:
        async def put(self, alert: Alert) -> None:
            await asyncio.sleep(0.01)  # the revocation below must wait for this pass
            stored.append(alert)

    async def run() -> None:
        stage = RulesStage(engine, Outbox())
        await stage.assigned(frozenset({0}), partition_of)
        await stage.run_timers_once()  # arms partition 0's timers
        clock.advance(3600)
        await stage.run_timers_once()
        assert sorted(x.person_id for x in stored) == sorted(p for p in PERSONS if partition_of(p) == 0)
        await stage.assigned(frozenset({1}), partition_of)
        passing = asyncio.create_task(stage.run_timers_once())
        await asyncio.sleep(0)
        await stage.revoked(frozenset({0, 1}))
        assert passing.done()  # the pass in flight stored its alerts before the partitions left
        assert len(stored) == len([p for p in PERSONS if partition_of(p) in {0, 1}])
        stored.clear()
        await stage.run_timers_once()
        assert stored == []  # owns nothing now

    asyncio.run(run())
