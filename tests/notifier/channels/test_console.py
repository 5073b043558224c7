"""The console channel: one log line without the link, the recent list, subscribers."""

from __future__ import annotations

import logging

import pytest

from gridwatch.core.config.channels import ConsoleChannelConfig
from gridwatch.core.events import Notification
from notifier.channels.console import ConsoleChannel
from tests.notifier.notification_support import notification_factory


async def test_logs_keeps_and_tells_subscribers(caplog: pytest.LogCaptureFixture) -> None:
    channel = ConsoleChannel(ConsoleChannelConfig(id="console", type="console"), keep=2)
    make = notification_factory()
    seen: list[Notification] = []

    async def listener(notification: Notification) -> None:
        seen.append(notification)

    async def broken(_: Notification) -> None:
        raise RuntimeError("console went away")

    unsubscribe = channel.subscribe(listener)
    channel.subscribe(broken)
    await channel.start()
    first, second, third = make("s-1", level=1), make("s-2"), make("s-3", repeat=2)
    with caplog.at_level(logging.INFO, logger="notifier.channels.console"):
        await channel.send(first)
        await channel.send(second)
        unsubscribe()
        unsubscribe()
        await channel.send(third)
    await channel.stop()
    await channel.stop()
    assert seen == [first, second]
    assert list(channel.recent) == [second, third]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines[0] == f"notification for staff s-1: alert {first.alert_id}, rule welfare-absent (warning), level 1"
    assert lines[2].endswith("level 0, reminder 2")
    assert "a subscriber failed" in caplog.text
    assert "tok-SECRET-LINK" not in caplog.text
