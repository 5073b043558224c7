from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gridwatch.core.audit import AuditLog, verify
from gridwatch.core.config.notifier import NotifierConfig, OutboxConfig
from gridwatch.core.events import Alert
from notifier.delivery_loop import retry_delay
from notifier.notifier import Notifier, NotifierStoppedError, build_sinks
from notifier.sinks import ConsoleSink, JsonlSink, KafkaSink
from tests.notifier.conftest import AlertFactory
from tests.notifier.helpers import wait_until
from tests.support.db import sqlite_outbox as Outbox  # an outbox alone on a SQLite file

FAST_RETRY = NotifierConfig(outbox=OutboxConfig(retry_initial_s=0.02, retry_max_s=0.1))


class FlakySink:
    """A unit-test sink that raises while ``failing`` is set (stands in for a sink that is down)."""

    def __init__(self, name: str = "flaky", *, failing: bool = True) -> None:
        self.name = name
        self.failing = failing
        self.attempts = 0
        self.delivered: list[Alert] = []
        self.started = self.stopped = 0

    async def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        self.stopped += 1

    async def deliver(self, alert: Alert) -> None:
        self.attempts += 1
        if self.failing:
            raise ConnectionError("down: kafka://user:pw@host:9092")
        self.delivered.append(alert)


def _actions(path: Path) -> list[tuple[str, str, dict[str, object]]]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(r["action"], r["target"], r["details"]) for r in records]


async def test_a_failing_sink_does_not_hold_up_the_console(tmp_path: Path, make_alert: AlertFactory) -> None:
    out = io.StringIO()
    flaky = FlakySink()
    audit_path = tmp_path / "audit.jsonl"
    with Outbox(tmp_path / "outbox.sqlite3") as outbox, AuditLog(audit_path) as audit:
        notifier = Notifier(FAST_RETRY, outbox, [ConsoleSink(out), flaky], audit)
        await notifier.start()
        try:
            alert = make_alert()
            assert await notifier.submit(alert) is True
            await wait_until(lambda: outbox.count_pending("console") == 0, what="console delivery")
            assert alert.alert_id in out.getvalue()
            await wait_until(lambda: flaky.attempts >= 3, what="retries of the failing sink")
            assert outbox.count_pending("flaky") == 1
            flaky.failing = False
            await wait_until(lambda: outbox.count_pending("flaky") == 0, what="delivery after recovery")
            assert flaky.delivered == [alert]
        finally:
            await notifier.stop()
    assert flaky.started == 1
    assert flaky.stopped == 1
    actions = _actions(audit_path)
    assert actions[0][:2] == ("alert.created", alert.alert_id)
    assert ("alert.delivered", alert.alert_id, {"sink": "console", "attempt": 1}) in actions
    failures = [details for action, _, details in actions if action == "alert.delivery_failed"]
    assert len(failures) >= 3
    assert all(d["sink"] == "flaky" for d in failures)
    assert all("pw@" not in str(d["error"]) for d in failures)
    delivered_flaky = [d for action, _, d in actions if action == "alert.delivered" and d["sink"] == "flaky"]
    assert len(delivered_flaky) == 1
    assert verify(audit_path).ok


async def test_replayed_alert_is_not_delivered_twice(tmp_path: Path, make_alert: AlertFactory) -> None:
    jsonl = tmp_path / "alerts.jsonl"
    alert = make_alert()
    path = tmp_path / "outbox.sqlite3"
    with Outbox(path) as outbox:
        async with Notifier(FAST_RETRY, outbox, [JsonlSink(jsonl)], None) as notifier:
            assert await notifier.submit(alert) is True
            assert await notifier.submit(alert) is False
            await wait_until(lambda: outbox.count_pending() == 0, what="delivery")
    # After a restart too: the outbox remembers the alert_id.
    with Outbox(path) as outbox:
        async with Notifier(FAST_RETRY, outbox, [JsonlSink(jsonl)], None) as notifier:
            assert await notifier.submit(alert.model_copy(update={"explanation": "replay"})) is False
    assert [Alert.model_validate_json(line) for line in jsonl.read_text().splitlines()] == [alert]


async def test_pending_alerts_are_delivered_after_restart(tmp_path: Path, make_alert: AlertFactory) -> None:
    path = tmp_path / "outbox.sqlite3"
    alerts = [make_alert() for _ in range(3)]
    down = FlakySink("kafka")
    with Outbox(path) as outbox:
        notifier = Notifier(FAST_RETRY, outbox, [down], None, shutdown_flush_s=0.5)
        await notifier.start()
        for alert in alerts:
            await notifier.submit(alert)
        await notifier.stop()
        await notifier.stop()
        with pytest.raises(NotifierStoppedError):
            await notifier.submit(make_alert())
    # A new process: new outbox object, new notifier, a sink of the same name that works now.
    up = FlakySink("kafka", failing=False)
    # A long retry delay proves that a restart does not wait for the stored retry times.
    slow = NotifierConfig(outbox=OutboxConfig(retry_initial_s=60.0, retry_max_s=600.0))
    with Outbox(path) as outbox:
        assert outbox.count_pending("kafka") == 3
        async with Notifier(slow, outbox, [up], None):
            await wait_until(lambda: len(up.delivered) == 3, what="redelivery after restart")
        assert outbox.count_pending() == 0
    assert up.delivered == alerts


async def test_stop_flushes_what_was_submitted(tmp_path: Path, make_alert: AlertFactory) -> None:
    jsonl = tmp_path / "alerts.jsonl"
    alerts = [make_alert() for _ in range(5)]
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        notifier = Notifier(FAST_RETRY, outbox, [JsonlSink(jsonl)], None, batch_size=2)
        await notifier.start()
        for alert in alerts:
            await notifier.submit(alert)
        await notifier.stop()
        assert outbox.count_pending() == 0
    assert len(jsonl.read_text().splitlines()) == 5


async def test_submit_before_start_is_kept(tmp_path: Path, make_alert: AlertFactory) -> None:
    sink = FlakySink(failing=False)
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        notifier = Notifier(FAST_RETRY, outbox, [sink], None)
        alert = make_alert()
        assert await notifier.submit(alert)
        async with notifier:
            await wait_until(lambda: sink.delivered == [alert], what="delivery")


def test_duplicate_sink_names_are_refused(tmp_path: Path) -> None:
    with Outbox(tmp_path / "outbox.sqlite3") as outbox, pytest.raises(ValueError, match="unique"):
        Notifier(FAST_RETRY, outbox, [FlakySink("a"), FlakySink("a")], None)


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (1000, 60.0), (0, 1.0)],
)
def test_retry_delay_is_capped_exponential(failures: int, expected: float) -> None:
    assert retry_delay(failures, 1.0, 60.0) == expected


def test_build_sinks(tmp_path: Path) -> None:
    config = NotifierConfig.model_validate({"jsonl": {"enabled": True}, "kafka": {"enabled": True}})
    sinks = build_sinks(config, tmp_path, "site-a")
    assert [s.name for s in sinks] == ["console", "jsonl", "kafka"]
    assert isinstance(sinks[0], ConsoleSink)
    assert isinstance(sinks[1], JsonlSink)
    assert sinks[1].path == tmp_path / "alerts.jsonl"
    assert isinstance(sinks[2], KafkaSink)
    assert build_sinks(NotifierConfig.model_validate({"console": {"enabled": False}}), tmp_path, "x") == []


async def test_a_failing_delivery_report_is_counted_and_the_delivery_stands(
    tmp_path: Path, make_alert: AlertFactory
) -> None:
    from prometheus_client import REGISTRY

    def errors() -> float:
        return REGISTRY.get_sample_value("gridwatch_loop_errors_total", {"loop": "notifier.delivery_report"}) or 0.0

    async def broken_report(alert_id: str) -> None:
        raise RuntimeError("rule state unavailable")

    before = errors()
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        sink = FlakySink(failing=False)
        async with Notifier(FAST_RETRY, outbox, [sink], None, on_delivered=broken_report) as notifier:
            await notifier.submit(make_alert())
            await wait_until(lambda: outbox.count_pending() == 0, what="delivery")
    assert len(sink.delivered) == 1
    assert errors() == before + 1
