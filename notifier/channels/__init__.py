"""Notification channels: the ways a notification reaches staff (``channels:`` of the config).

Each implements ``gridwatch.core.interfaces.NotificationChannel``: ``send`` delivers one notification
or raises; the notification outbox retries what raised, except ``RecordRejectedError`` (parked).
"""

from __future__ import annotations

from typing import assert_never

from gridwatch.core.config.channels import (
    ConsoleChannelConfig,
    DingtalkChannelConfig,
    KafkaChannelConfig,
    WebhookChannelConfig,
    WecomChannelConfig,
)
from gridwatch.core.config.root import GridwatchConfig
from gridwatch.core.interfaces import NotificationChannel
from notifier.channels.console import ConsoleChannel
from notifier.channels.dingtalk import DingtalkChannel
from notifier.channels.kafka import KafkaChannel
from notifier.channels.webhook import WebhookChannel, verify_signature
from notifier.channels.wecom import WecomChannel

__all__ = [
    "ConsoleChannel",
    "DingtalkChannel",
    "KafkaChannel",
    "WebhookChannel",
    "WecomChannel",
    "build_channels",
    "verify_signature",
]


def build_channels(config: GridwatchConfig, service_name: str) -> list[NotificationChannel]:
    """One channel per ``channels:`` entry, in config order. Kafka channels use ``notifier.kafka``'s connection."""
    channels: list[NotificationChannel] = []
    for entry in config.channels:
        if isinstance(entry, KafkaChannelConfig):
            channels.append(KafkaChannel(entry, config.notifier.kafka, service_name))
        elif isinstance(entry, WebhookChannelConfig):
            channels.append(WebhookChannel(entry))
        elif isinstance(entry, WecomChannelConfig):
            channels.append(WecomChannel(entry))
        elif isinstance(entry, DingtalkChannelConfig):
            channels.append(DingtalkChannel(entry))
        elif isinstance(entry, ConsoleChannelConfig):
            channels.append(ConsoleChannel(entry))
        else:
            assert_never(entry)
    return channels
