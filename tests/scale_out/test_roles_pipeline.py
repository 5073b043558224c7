"""A rule worker and a notifier as separate processes (``--role rules``, ``--role notifier``): the rule worker
writes alerts to the shared outbox, the notifier process finds and delivers them (it polls: nobody wakes it
across processes) and starts the rules' cooldowns from the delivery in the shared rule state."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from gridwatch.core.config.loader import load_config
from gridwatch.core.crypto import DATA_KEY_ENV
from gridwatch.core.db.schema import cooldowns
from gridwatch.core.events import Quality, Sighting, SourceKind
from gridwatch.core.transport import SIGHTINGS
from gridwatch.transport.kafka import KafkaTransport
from tests.scale_out.support import RuleWorker, free_port, wait_until, watch_registry, write_rules_config
from tests.support.keys import TEST_MASTER_KEY_B64

pytestmark = pytest.mark.e2e

WALKERS = 5


def delivered_cooldowns(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            query = select(cooldowns.c.person_id).where(cooldowns.c.delivered_at.is_not(None))
            return len(conn.execute(query).all())
    finally:
        engine.dispose()


async def test_a_notifier_process_delivers_what_a_rule_worker_stored(
    tmp_path: Path, kafka: Any, postgres_cluster: Any
) -> None:
    database_url = postgres_cluster.create_database()
    group_prefix = f"roles{uuid.uuid4().hex[:8]}"
    sink = tmp_path / "alerts.jsonl"
    # One site config (the same sinks everywhere: a rule worker queues a delivery per configured sink).
    notifier = f'{{console: {{enabled: false}}, jsonl: {{enabled: true, path: "{sink}"}}}}'
    processes = []
    for role in ("rules", "notifier"):
        port = free_port()
        root = tmp_path / role
        config = write_rules_config(
            root,
            bootstrap=kafka.bootstrap,
            database_url=database_url,
            group_prefix=group_prefix,
            port=port,
            notifier=notifier,
        )
        processes.append(RuleWorker(root, config, port, role=role))
    rules, delivery = processes
    transport = KafkaTransport(load_config(rules.config).config.service.transport.kafka, service_name="roles-test")
    publisher = transport.publisher(SIGHTINGS)
    await transport.start()
    try:
        for process in processes:
            process.start({DATA_KEY_ENV: TEST_MASTER_KEY_B64})
        await asyncio.to_thread(wait_until, rules.partitions, 45, "the rule worker to own partitions", 0.2, processes)
        await asyncio.to_thread(
            wait_until, lambda: delivery.status() is not None, 45, "the notifier to serve", 0.2, processes
        )
        assert delivery.status()["role"] == "notifier"  # type: ignore[index]
        assert delivery.get("/healthz").status_code == 200
        walkers = [f"walker-{uuid.uuid4().hex[:10]}" for _ in range(WALKERS)]
        now = dt.datetime.now(dt.UTC)
        for walker in walkers:
            await publisher.put(
                Sighting(
                    source="gate-1",
                    source_kind=SourceKind.GATE,
                    captured_at=now,
                    received_at=now,
                    person_id=walker,
                    registry=watch_registry(group_prefix),
                    similarity=0.7,
                    threshold=0.45,
                    model="test@0",
                    quality=Quality(det_score=0.9, face_px=120),
                )
            )

        def delivered() -> list[str]:
            if not sink.exists():
                return []
            return [json.loads(line)["person_id"] for line in sink.read_text().splitlines() if line.strip()]

        await asyncio.to_thread(
            wait_until, lambda: len(delivered()) >= WALKERS, 30, "the alerts in the sink", 0.3, processes
        )
        await asyncio.to_thread(
            wait_until, lambda: delivered_cooldowns(database_url) >= WALKERS, 15, "cooldowns from delivery", 0.3
        )
        assert sorted(delivered()) == sorted(walkers)  # once each
        # A rule worker's /metrics: the partitions it owns, and its consumer lag per partition.
        owned = rules.partitions()
        assert owned
        assert rules.metric("gridwatch_rules_partitions_owned") == len(owned)
        lag = [line for line in rules.get("/metrics").text.splitlines() if line.startswith("gridwatch_consumer_lag{")]
        assert lag
        assert all('topic="gridwatch.sightings"' in line or "stranger-attempts" in line for line in lag)
    finally:
        for process in processes:
            await asyncio.to_thread(process.stop)
        await transport.stop()
