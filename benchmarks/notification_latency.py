"""Alert → first notification latency, and escalation timing accuracy, with Apache Kafka.

The service's own alert path after the rules: ``NotifierPort.put`` (routing names the recipients, the
alert and its case are committed together in the service database — a SQLite file as the service
makes it: WAL, every commit to disk), the case desk's timer loop (``CaseStage``), the notification
dispatcher with the ``kafka`` channel (``gridwatch.notifications``), and the alert notifier with the
Kafka alert sink (``gridwatch.alerts``), all publishing to a single Apache Kafka node of the test
harness. Real aiokafka consumers note when each record arrives.

Routing: grid ``g1`` (on duty: ``worker``) under ``community`` (on duty: ``officer``); one route,
``notify: [on_duty]``, ``escalate: [{after_s: E, notify: [on_duty_parent]}]``, nobody acknowledges.

- latency = ``put`` started → the consumer received the worker's notification; ``--alerts`` alerts, one
  at a time (each waits for its notification and its alert record);
- baseline (same run, same puts): ``put`` started → the consumer received the alert itself on the alert
  topic (the path that existed before routing); printed with the ratio notification / alert;
- escalation accuracy: for every alert, the officer's level-1 notification's ``created_at`` minus (the
  worker's notification's ``created_at`` + E): how late the timer loop made the step; and the same on
  arrival at the consumer: how late the step reached Kafka.

Printed: p50/p99 of each, and last one JSON line with the figures. Nothing is asserted.

    .venv/bin/python benchmarks/notification_latency.py [--alerts 200] [--escalate-after 2]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def config_dict(bootstrap: str, escalate_after_s: int) -> dict[str, Any]:
    always = [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "from": "00:00", "to": "24:00"}]
    return {
        "cameras": [
            {
                "id": "cam-1",
                "kind": "rtsp",
                "location_class": "lobby",
                "signage_verified_at": "2026-01-15",
                "url": "rtsp://127.0.0.1:1/x",
                "grid": "g1",
            }
        ],
        "registries": [{"name": "welfare", "purpose": "benchmark", "legal_basis": "benchmark", "retention_days": 1}],
        "rules": [{"id": "seen-welfare", "kind": "seen", "registries": ["welfare"]}],
        "grids": [{"id": "community", "name": "Community"}, {"id": "g1", "name": "Grid 1", "parent": "community"}],
        "staff": [
            {"id": "worker", "name": "Worker", "grids": ["g1"], "channels": ["push"]},
            {"id": "officer", "name": "Officer", "grids": ["community"], "channels": ["push"]},
        ],
        "duty": [
            {"grid": "g1", "timezone": "UTC", "shifts": [{**always[0], "staff": ["worker"]}]},
            {"grid": "community", "timezone": "UTC", "shifts": [{**always[0], "staff": ["officer"]}]},
        ],
        "routes": [
            {
                "notify": ["on_duty"],
                "require_ack": True,
                "escalate": [{"after_s": escalate_after_s, "notify": ["on_duty_parent"]}],
            }
        ],
        "channels": [{"id": "push", "type": "kafka", "topic": "bench.notifications"}],
        "notifier": {
            "console": {"enabled": False},
            "kafka": {"enabled": True, "bootstrap_servers": bootstrap, "topic": "bench.alerts"},
            "acks": {"signing_secret": "benchmark-secret-0123456789abcdef"},
            "outbox": {"retry_initial_s": 0.1, "retry_max_s": 1.0},
        },
    }


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "max_ms": round(1000 * ordered[-1], 2),
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer
    from sqlalchemy import URL

    from gridwatch.core.config.root import GridwatchConfig
    from gridwatch.core.db import Database
    from gridwatch.core.events import Alert, Notification, Severity, SourceKind, event_id_for
    from gridwatch.service import NotifierPort
    from gridwatch.wiring import ack_base_url, build_router, registry_confirmations
    from notifier.ack_links import AckLinks
    from notifier.case_stage import CaseStage
    from notifier.channels import build_channels
    from notifier.desk import Desk, Steps
    from notifier.dispatcher import NotificationDispatcher
    from notifier.notification_outbox import NotificationOutbox
    from notifier.notifier import Notifier, build_sinks
    from notifier.outbox import Outbox
    from tests.support.kafka import KafkaBroker, create_topic

    with KafkaBroker() as broker, tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
        config = GridwatchConfig.model_validate(config_dict(broker.bootstrap, args.escalate_after))
        for topic in ("bench.notifications", "bench.alerts"):
            await create_topic(broker.bootstrap, topic, partitions=1)
        database = Database(URL.create("sqlite", database=str(Path(tmp) / "gridwatch.sqlite3")))
        database.open()
        outbox = Outbox(database)
        outbox.open()
        notifier = Notifier(config.notifier, outbox, build_sinks(config.notifier, Path(tmp), "bench"), None)
        acks = config.notifier.acks
        assert acks.signing_secret is not None
        links = AckLinks(acks.signing_secret, acks.link_ttl_s, ack_base_url(config))
        desk = Desk(database, build_router(config), confirmations=registry_confirmations(config), links=links)
        dispatcher = NotificationDispatcher(
            NotificationOutbox(database), build_channels(config, "bench"), config.notifier.outbox, None
        )

        def on_steps(steps: Steps) -> None:
            for channel in {n.channel for n in steps.notifications}:
                dispatcher.wake(channel)

        cases = CaseStage(desk, on_steps=on_steps)
        port = NotifierPort(notifier, cases)
        received: dict[tuple[str, str], tuple[float, Any]] = {}  # (alert id, staff or "alert") -> (time, record)

        async def consume(topic: str) -> None:
            consumer = AIOKafkaConsumer(
                topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=10
            )
            await consumer.start()
            try:
                async for record in consumer:
                    now = time.perf_counter()
                    if topic == "bench.alerts":
                        alert = Alert.model_validate_json(record.value)
                        received[(alert.alert_id, "alert")] = (now, alert)
                    else:
                        note = Notification.model_validate_json(record.value)
                        received[(note.alert_id, note.staff_id)] = (now, note)
            finally:
                await consumer.stop()

        readers = [asyncio.create_task(consume(t)) for t in ("bench.alerts", "bench.notifications")]
        await notifier.start()
        await dispatcher.start()
        await cases.start()
        await asyncio.sleep(2.0)  # consumers assigned, producers connected

        started: dict[str, float] = {}
        total = args.warmup + args.alerts
        for n in range(total):
            alert = Alert(
                alert_id=event_id_for("bench", str(n)),
                rule="seen-welfare",
                severity=Severity.WARNING,
                person_id=f"p-{n}",
                registry="welfare",
                source="cam-1",
                source_kind=SourceKind.CAMERA,
                grid="g1",
                created_at=dt.datetime.now(dt.UTC),
                sightings=[f"s-{n}"],
                similarity=0.6,
                explanation="benchmark",
            )
            started[alert.alert_id] = time.perf_counter()
            await port.put(alert)
            deadline = time.monotonic() + 30
            while not ((alert.alert_id, "worker") in received and (alert.alert_id, "alert") in received):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"alert {n}: no notification within 30 s")
                await asyncio.sleep(0.001)
        measured = list(started)[args.warmup :]
        deadline = time.monotonic() + args.escalate_after + 60
        while not all((a, "officer") in received for a in measured):
            if time.monotonic() > deadline:
                raise RuntimeError("escalations missing")
            await asyncio.sleep(0.05)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await cases.stop()
        await dispatcher.stop()
        await notifier.stop()
        database.close()

    notified = [received[(a, "worker")][0] - started[a] for a in measured]
    alerted = [received[(a, "alert")][0] - started[a] for a in measured]
    timer_lateness = [
        (received[(a, "officer")][1].created_at - received[(a, "worker")][1].created_at).total_seconds()
        - args.escalate_after
        for a in measured
    ]
    arrival_lateness = [
        received[(a, "officer")][0] - received[(a, "worker")][0] - args.escalate_after for a in measured
    ]
    return {
        "alerts": len(measured),
        "escalate_after_s": args.escalate_after,
        "alert_to_notification": quantiles(notified),
        "baseline_alert_to_kafka_alert": quantiles(alerted),
        "ratio_p50": round(statistics.median(notified) / statistics.median(alerted), 2),
        "escalation_step_late": quantiles(timer_lateness),
        "escalation_arrival_late": quantiles(arrival_lateness),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--escalate-after", type=int, default=2, help="after_s of the escalation step")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    figures = asyncio.run(measure(args))
    first, base = figures["alert_to_notification"], figures["baseline_alert_to_kafka_alert"]
    late = figures["escalation_step_late"]
    print(f"alert → first notification on Kafka: p50 {first['p50_ms']} ms, p99 {first['p99_ms']} ms")
    print(f"baseline alert → alert record on Kafka: p50 {base['p50_ms']} ms, p99 {base['p99_ms']} ms")
    print(f"ratio (p50): {figures['ratio_p50']}")
    print(
        f"escalation step made after its due time (after_s {args.escalate_after}): "
        f"p50 {late['p50_ms']} ms, p99 {late['p99_ms']} ms, max {late['max_ms']} ms"
    )
    arrival = figures["escalation_arrival_late"]
    print(
        f"escalation notification on Kafka after (first notification on Kafka + after_s): "
        f"p50 {arrival['p50_ms']} ms, p99 {arrival['p99_ms']} ms"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
