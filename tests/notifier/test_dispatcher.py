"""The notification dispatcher on a real SQLite outbox: per-row backoff, per-channel independence,
parking, and delivery of what a restart found pending."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import update

from gridwatch.core.audit import AuditLog, verify
from gridwatch.core.config.notifier import OutboxConfig
from gridwatch.core.db.schema import notifications
from gridwatch.core.events import Notification
from gridwatch.core.interfaces import RecordRejectedError
from notifier.dispatcher import NotificationDispatcher
from notifier.notification_outbox import NotificationOutbox
from tests.notifier.helpers import wait_until
from tests.notifier.notification_support import audit_records, notification_factory, sqlite_database, store


def _config(park_after_attempts: int = 1000) -> OutboxConfig:
    return OutboxConfig(retry_initial_s=0.05, retry_max_s=0.2, park_after_attempts=park_after_attempts)


class RecordingChannel:
    """A channel in memory: down while ``down`` is set; fails (or refuses) the staff in ``failing`` (``refused``)."""

    def __init__(self, name: str, *, fail_start: bool = False) -> None:
        self.name = name
        self.sent: list[Notification] = []
        self.attempts: list[str] = []
        self.down = False
        self.failing: set[str] = set()
        self.refused: set[str] = set()
        self.fail_start = fail_start
        self.stopped = 0

    async def start(self) -> None:
        if self.fail_start:
            raise ConnectionError("cannot reach http://user:pw@robot.example/hook")

    async def stop(self) -> None:
        self.stopped += 1

    async def send(self, notification: Notification) -> None:
        self.attempts.append(notification.staff_id)
        if self.down:
            raise ConnectionError(f"{self.name} is down")
        if notification.staff_id in self.refused:
            # Echoes the link, as a receiver quoting the body it refused may.
            raise RecordRejectedError(f"{self.name} refuses {notification.staff_id} ({notification.ack_url})")
        if notification.staff_id in self.failing:
            raise ConnectionError(f"{self.name}: HTTP 503 for {notification.staff_id} ({notification.ack_url})")
        self.sent.append(notification)

    def sent_ids(self) -> set[str]:
        return {n.notification_id for n in self.sent}


def _metric(name: str, channel: str) -> float:
    return REGISTRY.get_sample_value(name, {"channel": channel}) or 0.0


async def test_a_restart_delivers_the_pending_rows(tmp_path: Path) -> None:
    make = notification_factory()
    batch = [make(f"s-{i}") for i in range(3)]
    with sqlite_database(tmp_path / "gw.sqlite3") as database:
        outbox = NotificationOutbox(database)
        store(database, *batch, now=time.time())
        down = RecordingChannel("hook")
        down.down = True
        first = NotificationDispatcher(outbox, [down], _config(), None)
        await first.start()
        await wait_until(lambda: all(p.attempts >= 1 for p in outbox.pending("hook")), what="failed attempts")
        await first.stop()
        await first.stop()
        assert down.stopped == 1
        assert outbox.count_pending("hook") == 3
        # Their next attempts are far off (as after long backoff): a new process tries them at once anyway.
        database.transaction(
            lambda conn: conn.execute(update(notifications).values(next_attempt_at=time.time() + 3600)), what="test"
        )

        up = RecordingChannel("hook")
        delivered: list[Notification] = []

        async def report(notification: Notification) -> None:
            delivered.append(notification)

        async with NotificationDispatcher(outbox, [up], _config(), None, on_delivered=report):
            await wait_until(lambda: outbox.count_pending("hook") == 0, what="delivery after the restart")
        assert up.sent == batch  # oldest first
        assert delivered == batch
        assert outbox.count_delivered("hook") == 3


async def test_a_channel_that_is_down_blocks_no_other_channel_and_parks_nothing(tmp_path: Path) -> None:
    make = notification_factory()
    to_hook = [make(f"s-{i}", channel="hook") for i in range(3)]
    to_console = [make(f"s-{i}", channel="console") for i in range(3)]
    hook, console = RecordingChannel("hook", fail_start=True), RecordingChannel("console")
    hook.down = True
    failures_before = _metric("gridwatch_notification_failures_total", "hook")
    with sqlite_database(tmp_path / "gw.sqlite3") as database:
        outbox = NotificationOutbox(database)
        dispatcher = NotificationDispatcher(outbox, [hook, console], _config(park_after_attempts=2), None)
        async with dispatcher:  # the hook's failing start() stops nothing
            store(database, *to_hook, *to_console, now=time.time())
            dispatcher.wake()
            await wait_until(lambda: outbox.count_pending("console") == 0, what="console deliveries")
            await wait_until(
                lambda: all(p.attempts >= 4 for p in outbox.pending("hook")), what="repeated hook failures"
            )
            assert outbox.count_parked() == 0  # the hook delivered nothing: it is down, the rows are fine
            hook.down = False
            await wait_until(lambda: outbox.count_pending("hook") == 0, what="hook deliveries once it is back")
        assert console.sent == to_console
        assert hook.sent_ids() == {n.notification_id for n in to_hook}
        assert outbox.count_parked() == 0
        assert _metric("gridwatch_notification_failures_total", "hook") >= failures_before + 12


async def test_a_failing_row_holds_back_no_other_row_and_is_parked_once_others_go_through(tmp_path: Path) -> None:
    make = notification_factory()
    bad, *good = [make("s-bad")] + [make(f"s-{i}") for i in range(4)]
    channel = RecordingChannel("hook")
    channel.failing.add("s-bad")
    audit_path = tmp_path / "audit.jsonl"
    with sqlite_database(tmp_path / "gw.sqlite3") as database, AuditLog(audit_path) as audit:
        outbox = NotificationOutbox(database)
        store(database, bad, *good, now=time.time())  # the bad row is the oldest
        dispatcher = NotificationDispatcher(outbox, [channel], _config(park_after_attempts=2), audit)
        async with dispatcher:
            await wait_until(lambda: channel.sent_ids() >= {n.notification_id for n in good}, what="good rows")
            await wait_until(lambda: outbox.pending("hook")[0].attempts >= 2, what="the bad row failing twice")
            assert outbox.count_parked() == 0  # nothing went through since its last failure
            later = make("s-later")
            store(database, later, now=time.time())
            dispatcher.wake("hook")
            await wait_until(lambda: outbox.count_parked("hook") == 1, what="the bad row parked")
            await wait_until(lambda: outbox.count_pending("hook") == 0, what="the later row delivered")
        assert [p.notification_id for p in outbox.parked("hook")] == [bad.notification_id]
        assert channel.sent_ids() == {n.notification_id for n in [*good, later]}
    [(target, details)] = audit_records(audit_path, "notification.parked")
    assert target == bad.alert_id
    assert (details["notification_id"], details["channel"], details["staff"], details["level"]) == (
        bad.notification_id,
        "hook",
        "s-bad",
        0,
    )
    failed = audit_records(audit_path, "notification.delivery_failed")
    assert len(failed) >= 2
    assert {d["staff"] for _, d in failed} == {"s-bad"}
    assert len(audit_records(audit_path, "notification.delivered")) == 5
    assert verify(audit_path).ok
    assert "tok-SECRET-LINK" not in audit_path.read_text()


async def test_a_refused_notification_is_parked_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make = notification_factory()
    refused, fine = make("s-refused"), make("s-fine")
    channel = RecordingChannel("hook")
    channel.refused.add("s-refused")
    parked_before = _metric("gridwatch_notifications_parked_total", "hook")
    delivered_before = _metric("gridwatch_notifications_delivered_total", "hook")
    audit_path = tmp_path / "audit.jsonl"
    caplog.set_level(logging.DEBUG)
    with sqlite_database(tmp_path / "gw.sqlite3") as database, AuditLog(audit_path) as audit:
        outbox = NotificationOutbox(database)
        store(database, refused, fine, now=time.time())
        async with NotificationDispatcher(outbox, [channel], _config(), audit):
            await wait_until(lambda: outbox.count_pending() == 0, what="both rows done")
        [parked] = outbox.parked()
        assert (parked.notification_id, parked.attempts) == (refused.notification_id, 1)
        assert parked.error == "RecordRejectedError: hook refuses s-refused (<ack link>)"
    assert channel.attempts == ["s-refused", "s-fine"]
    assert _metric("gridwatch_notifications_parked_total", "hook") == parked_before + 1
    assert _metric("gridwatch_notifications_delivered_total", "hook") == delivered_before + 1
    assert [t for t, _ in audit_records(audit_path, "notification.parked")] == [refused.alert_id]
    assert "tok-SECRET-LINK" not in caplog.text
    assert "tok-SECRET-LINK" not in audit_path.read_text()


async def test_a_row_whose_json_no_longer_validates_is_parked(tmp_path: Path) -> None:
    make = notification_factory()
    broken, fine = make("s-broken"), make("s-fine")
    channel = RecordingChannel("hook")
    with sqlite_database(tmp_path / "gw.sqlite3") as database:
        outbox = NotificationOutbox(database)
        store(database, broken, fine, now=time.time())
        database.transaction(
            lambda conn: conn.execute(
                update(notifications)
                .where(notifications.c.notification_id == broken.notification_id)
                .values(notification_json='{"schema": "gridwatch.notification/v0"}')
            ),
            what="test",
        )
        async with NotificationDispatcher(outbox, [channel], _config(), None):
            await wait_until(lambda: outbox.count_pending() == 0, what="both rows done")
        assert [p.notification_id for p in outbox.parked()] == [broken.notification_id]
    assert channel.sent == [fine]


async def test_a_channel_start_failure_is_logged_without_credentials(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    channel = RecordingChannel("hook", fail_start=True)
    with sqlite_database(tmp_path / "gw.sqlite3") as database:
        dispatcher = NotificationDispatcher(NotificationOutbox(database), [channel], _config(), None)
        with caplog.at_level(logging.WARNING):
            await dispatcher.start()
        await dispatcher.stop()
    assert "hook failed to start" in caplog.text
    assert "user:pw" not in caplog.text


def test_channel_names_must_be_unique(tmp_path: Path) -> None:
    with sqlite_database(tmp_path / "gw.sqlite3") as database, pytest.raises(ValueError, match="unique"):
        NotificationDispatcher(
            NotificationOutbox(database), [RecordingChannel("a"), RecordingChannel("a")], _config(), None
        )
