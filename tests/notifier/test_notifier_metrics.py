"""Delivery attempts and failures per sink, as the notifier retries a sink that is down."""

from __future__ import annotations

import uuid
from pathlib import Path

from gridwatch.core.config.notifier import NotifierConfig, OutboxConfig
from gridwatch.core.events import Alert
from notifier.notifier import Notifier
from tests.notifier.conftest import AlertFactory
from tests.notifier.helpers import wait_until
from tests.support.db import sqlite_outbox as Outbox
from tests.support.metrics import sample

FAST_RETRY = NotifierConfig(outbox=OutboxConfig(retry_initial_s=0.02, retry_max_s=0.1))


class SinkDownAtFirst:
    """Raises on its first ``failures`` deliveries, then delivers."""

    def __init__(self, name: str, failures: int) -> None:
        self.name = name
        self.failures = failures
        self.attempts = 0
        self.delivered: list[Alert] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def deliver(self, alert: Alert) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError("down")
        self.delivered.append(alert)


async def test_attempts_and_failures_are_counted_per_sink(tmp_path: Path, make_alert: AlertFactory) -> None:
    # Sink names of this test alone: the metrics registry is shared by the whole test session.
    flaky = SinkDownAtFirst(f"flaky-{uuid.uuid4().hex[:8]}", failures=3)
    steady = SinkDownAtFirst(f"steady-{uuid.uuid4().hex[:8]}", failures=0)
    before = {
        (metric, sink.name): sample(f"gridwatch_delivery_{metric}_total", sink=sink.name)
        for metric in ("attempts", "failures")
        for sink in (flaky, steady)
    }

    def moved(metric: str, sink: SinkDownAtFirst) -> float:
        return sample(f"gridwatch_delivery_{metric}_total", sink=sink.name) - before[metric, sink.name]

    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        async with Notifier(FAST_RETRY, outbox, [flaky, steady], None) as notifier:
            await notifier.submit(make_alert())
            await notifier.submit(make_alert())
            await wait_until(lambda: len(flaky.delivered) == 2 and len(steady.delivered) == 2, what="both delivered")

    assert moved("attempts", flaky) == flaky.attempts == 5  # 3 failed, then the 2 alerts
    assert moved("failures", flaky) == 3
    assert moved("attempts", steady) == 2
    assert moved("failures", steady) == 0
