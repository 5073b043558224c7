"""Two rule workers (``gridwatch run --role rules``, real processes) on real Kafka and PostgreSQL.

Absence timers (`not_seen`) are pending for many persons, spread over both workers' partitions, and a
stream of sightings (`seen`, one alert each) runs while one worker is killed with SIGKILL. The survivor
is assigned the dead worker's partitions after the group's session timeout and must fire every timer
that was still pending there, once; no alert of the stream may be lost. Events the dead worker handled
but had not committed are handled again (at least once): they make the same alert ids, the outbox keeps
one, and the survivor counts them (``gridwatch_alerts_replayed_total``); the test prints that count and
the failover time (kill → the first of the dead worker's timers fired by the survivor).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, select

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.loader import load_config
from gridwatch.core.crypto import DATA_KEY_ENV
from gridwatch.core.db.schema import alerts, rule_timers
from gridwatch.core.events import Alert, Quality, Sighting, SourceKind
from gridwatch.core.transport import SIGHTINGS, Publisher
from gridwatch.transport.kafka import KafkaTransport, partition_for
from gridwatch.wiring import build_database, data_paths, registry_keys
from recognition.store import RegistryStore
from tests.scale_out.support import (
    RuleWorker,
    free_port,
    residents_registry,
    share_registry_keys,
    wait_until,
    watch_registry,
    write_rules_config,
)
from tests.support.keys import TEST_MASTER_KEY_B64

pytestmark = pytest.mark.e2e

PERSONS = 48  # absence timers pending
AFTER_S = 3600  # the rule's absence; the test's sightings put each person's due time a few seconds ahead
FIRST_DUE_S = 4.0  # after both workers own their partitions
DUE_SPREAD_S = 14.0  # timers come due one after another over this long
KILL_AT_S = 7.0  # worker A is killed this long after the timers were set
STREAM_S = 14.0  # sightings of the `seen` rule, from 2 s before the kill
STREAM_PER_S = 4.0


def enrol_residents(config: Path, count: int, registry: str) -> list[str]:
    """``count`` persons of the `residents` registry (conditions only matter to the rules; a unit vector each)."""
    loaded = load_config(config)
    now = dt.datetime.now(dt.UTC)
    database = build_database(loaded)
    with AuditLog(data_paths(loaded).audit_log) as audit:
        store = RegistryStore(database, keys=registry_keys(loaded), owns_database=True, audit=audit)
        vector = np.ones(512, dtype=np.float32) / np.sqrt(512)
        persons = [
            store.add_person(
                registry=registry,
                display_name=f"Resident {i}",
                model_id="test@0",
                embeddings=[(f"{i:064x}", vector)],
                now=now,
                expires_at=now + dt.timedelta(days=1),
                home_sources=["gate-1"],
            )[0].person_id
            for i in range(count)
        ]
        store.close()
    return persons


def sighting(person_id: str, registry: str, received_at: dt.datetime) -> Sighting:
    return Sighting(
        source="gate-1",
        source_kind=SourceKind.GATE,
        captured_at=received_at,
        received_at=received_at,
        person_id=person_id,
        registry=registry,
        similarity=0.7,
        threshold=0.45,
        model="test@0",
        quality=Quality(det_score=0.9, face_px=120),
    )


def stored_alerts(database_url: str) -> list[tuple[Alert, float]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(alerts.c.alert_json, alerts.c.added_at)).all()
    finally:
        engine.dispose()
    return [(Alert.model_validate_json(row[0]), float(row[1])) for row in rows]


def fired_counts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            t = rule_timers.c
            rows = conn.execute(select(t.person_id, t.fired).where(t.rule == "absent", t.person_id != "*")).all()
    finally:
        engine.dispose()
    return {row[0]: int(row[1]) for row in rows}


async def publish_sightings(publisher: Publisher[Sighting], plan: list[tuple[float, Sighting]], t0: float) -> None:
    for at, event in plan:
        delay = t0 + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await publisher.put(event)


async def test_killed_rule_worker_timers_fire_once_on_the_survivor_and_no_alert_is_lost(
    tmp_path: Path, kafka: Any, postgres_cluster: Any
) -> None:
    database_url = postgres_cluster.create_database()
    group_prefix = f"scale{uuid.uuid4().hex[:8]}"
    workers = []
    for name in ("a", "b"):
        port = free_port()
        root = tmp_path / name
        config = write_rules_config(
            root, bootstrap=kafka.bootstrap, database_url=database_url, group_prefix=group_prefix, port=port
        )
        workers.append(RuleWorker(root, config, port))
    a, b = workers
    home = residents_registry(group_prefix)
    residents = enrol_residents(a.config, PERSONS, home)
    share_registry_keys(a.root / "data", b.root / "data")
    env = {DATA_KEY_ENV: TEST_MASTER_KEY_B64}
    loaded = load_config(a.config)
    # The test plays the recognition processes: it publishes sightings to the topic.
    transport = KafkaTransport(loaded.config.service.transport.kafka, service_name="scale-test")
    publisher = transport.publisher(SIGHTINGS)  # its topic is created (or found) at start
    await transport.start()
    try:
        for worker in workers:
            worker.start(env)
        # Both are members: each owns some partitions, together all of them.
        owned = await asyncio.to_thread(
            wait_until, lambda: _split(a, b), 45, "both rule workers to own partitions", 0.2, workers
        )
        a_partitions, count = set(owned[0]), len(owned[0]) + len(owned[1])
        await asyncio.to_thread(
            wait_until, lambda: len(fired_counts(database_url)) == PERSONS, 20, "every timer armed", 0.2, workers
        )
        assert b.get("/healthz").status_code == 200

        t0 = time.monotonic()
        wall0 = time.time()
        now = dt.datetime.now(dt.UTC)
        plan: list[tuple[float, Sighting]] = []
        due_at: dict[str, float] = {}
        for i, person in enumerate(residents):
            lead = FIRST_DUE_S + DUE_SPREAD_S * i / PERSONS
            # A sighting at home `AFTER_S - lead` ago: the timer is due `lead` from now.
            plan.append((0.0, sighting(person, home, now + dt.timedelta(seconds=lead - AFTER_S))))
            due_at[person] = wall0 + lead
        stream_start = KILL_AT_S - 2.0
        stream = [f"walker-{uuid.uuid4().hex[:10]}" for _ in range(int(STREAM_S * STREAM_PER_S))]
        for i, walker in enumerate(stream):
            at = stream_start + i / STREAM_PER_S
            plan.append((at, sighting(walker, watch_registry(group_prefix), now + dt.timedelta(seconds=at))))
        plan.sort(key=lambda item: item[0])

        publishing = asyncio.create_task(publish_sightings(publisher, plan, t0))
        await asyncio.sleep(max(0.0, t0 + KILL_AT_S - time.monotonic()))
        killed_at = time.time()
        await asyncio.to_thread(a.kill)
        await publishing
        expected_seen = len(stream)

        def complete() -> bool:
            fired = fired_counts(database_url)
            seen = sum(1 for alert, _ in stored_alerts(database_url) if alert.rule == "seen-watch")
            return all(fired.get(p) == 1 for p in residents) and seen >= expected_seen

        await asyncio.to_thread(wait_until, complete, 45, "every timer fired, every alert stored", 0.5, [b])
        await asyncio.sleep(1.0)  # a late duplicate would show now
        replayed = b.metric("gridwatch_alerts_replayed_total")
        b_partitions = b.partitions()
    finally:
        for worker in workers:
            await asyncio.to_thread(worker.stop)
        await transport.stop()

    stored = stored_alerts(database_url)
    absent = [(alert, added) for alert, added in stored if alert.rule == "absent"]
    seen = [alert for alert, _ in stored if alert.rule == "seen-watch"]
    # Every timer fired exactly once (one alert per person; the timer says it fired once).
    assert sorted(alert.person_id for alert, _ in absent) == sorted(residents)
    assert set(fired_counts(database_url).values()) == {1}
    # No alert of the stream was lost, none doubled (the outbox keeps one per alert id).
    assert sorted(alert.person_id for alert in seen) == sorted(stream)
    assert len({alert.alert_id for alert, _ in stored}) == len(stored)
    # The survivor took every partition over.
    assert b_partitions is not None
    assert len(b_partitions) == count
    # The dead worker's timers that were still pending at the kill fired on the survivor (A was dead).
    orphaned = [
        (alert, added)
        for alert, added in absent
        if partition_for(alert.person_id, count) in a_partitions and due_at[alert.person_id] > killed_at
    ]
    assert orphaned, "worker A owned no pending timer at the kill: the scenario proved nothing"
    resumed_s = min(added for _, added in orphaned) - killed_at
    latest_s = max(added - due_at[alert.person_id] for alert, added in orphaned)
    print(
        f"\nscale-out: partitions {count} (A owned {sorted(a_partitions)}); {len(orphaned)} of A's timers pending "
        f"at kill -9, all fired once on B; timers resumed {resumed_s:.1f} s after the kill "
        f"(latest firing {latest_s:.1f} s after its due time); stream {expected_seen} sightings -> "
        f"{len(seen)} alerts, lost 0; duplicates (at-least-once replays, same alert_id, dropped by the outbox) "
        f"{replayed:.0f}"
    )


def _split(a: RuleWorker, b: RuleWorker) -> tuple[list[int], list[int]] | None:
    pa, pb = a.partitions(), b.partitions()
    if not pa or not pb or set(pa) & set(pb):
        return None
    return pa, pb


async def test_partitions_handed_over_by_a_joining_and_a_leaving_worker_fire_each_timer_once(
    tmp_path: Path, kafka: Any, postgres_cluster: Any
) -> None:
    """Rebalances without a crash: B joins while A owns every partition with timers pending, then A stops
    (SIGTERM: it leaves the group at once). Each timer fires once, on whoever owns it at its due time."""
    database_url = postgres_cluster.create_database()
    group_prefix = f"handover{uuid.uuid4().hex[:8]}"
    workers = []
    for name in ("a", "b"):
        port = free_port()
        root = tmp_path / name
        config = write_rules_config(
            root, bootstrap=kafka.bootstrap, database_url=database_url, group_prefix=group_prefix, port=port
        )
        workers.append(RuleWorker(root, config, port))
    a, b = workers
    home = residents_registry(group_prefix)
    residents = enrol_residents(a.config, PERSONS, home)
    share_registry_keys(a.root / "data", b.root / "data")
    env = {DATA_KEY_ENV: TEST_MASTER_KEY_B64}
    transport = KafkaTransport(load_config(a.config).config.service.transport.kafka, service_name="handover-test")
    publisher = transport.publisher(SIGHTINGS)
    await transport.start()
    try:
        a.start(env)
        everything = await asyncio.to_thread(wait_until, a.partitions, 45, "A to own partitions", 0.2, workers)
        await asyncio.to_thread(
            wait_until, lambda: len(fired_counts(database_url)) == PERSONS, 20, "every timer armed", 0.2, workers
        )
        wall0 = time.time()
        now = dt.datetime.now(dt.UTC)
        due_at: dict[str, float] = {}
        for i, person in enumerate(residents):
            lead = FIRST_DUE_S + 1.5 * DUE_SPREAD_S * i / PERSONS  # B joins and A leaves meanwhile
            await publisher.put(sighting(person, home, now + dt.timedelta(seconds=lead - AFTER_S)))
            due_at[person] = wall0 + lead
        b.start(env)  # joins: the group takes some of A's partitions and gives them to B
        owned = await asyncio.to_thread(wait_until, lambda: _split(a, b), 45, "B to take partitions", 0.2, workers)
        a_partitions, count = set(owned[0]), len(owned[0]) + len(owned[1])
        assert count == len(everything)
        stopped_at = time.time()
        await asyncio.to_thread(a.stop)  # leaves the group: B is assigned A's partitions without a timeout

        def complete() -> bool:
            return all(fired_counts(database_url).get(p) == 1 for p in residents)

        await asyncio.to_thread(wait_until, complete, 45, "every timer fired", 0.5, [b])
        await asyncio.sleep(1.0)
        replayed = b.metric("gridwatch_alerts_replayed_total")
        b_partitions = b.partitions()
    finally:
        for worker in workers:
            await asyncio.to_thread(worker.stop)
        await transport.stop()

    absent = [(alert, added) for alert, added in stored_alerts(database_url) if alert.rule == "absent"]
    assert sorted(alert.person_id for alert, _ in absent) == sorted(residents)
    assert set(fired_counts(database_url).values()) == {1}
    assert b_partitions is not None
    assert len(b_partitions) == count
    handed = [
        added
        for alert, added in absent
        if partition_for(alert.person_id, count) in a_partitions and due_at[alert.person_id] > stopped_at + 1.0
    ]
    assert handed, "A owned no timer due after it stopped: the scenario proved nothing"
    print(
        f"\nscale-out handover: {len(handed)} of A's timers due after its SIGTERM fired once on B, the first "
        f"{min(handed) - stopped_at:.1f} s after the stop; replays {replayed:.0f}"
    )
