"""``build_channels``: one channel per ``channels:`` entry, Kafka on ``notifier.kafka``'s connection."""

from __future__ import annotations

from gridwatch.core.config.root import GridwatchConfig
from notifier.channels import (
    ConsoleChannel,
    DingtalkChannel,
    KafkaChannel,
    WebhookChannel,
    WecomChannel,
    build_channels,
)


def test_one_channel_per_entry_in_order() -> None:
    config = GridwatchConfig.model_validate(
        {
            "notifier": {"kafka": {"bootstrap_servers": "kafka-1:9093", "request_timeout_ms": 3000}},
            "channels": [
                {"id": "push", "type": "kafka"},
                {"id": "hook", "type": "webhook", "url": "https://hooks.example.org/x"},
                {"id": "wx", "type": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"},
                {"id": "dd", "type": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=T"},
                {"id": "console", "type": "console"},
            ],
        }
    )
    channels = build_channels(config, "site-a")
    assert [type(c) for c in channels] == [KafkaChannel, WebhookChannel, WecomChannel, DingtalkChannel, ConsoleChannel]
    assert [c.name for c in channels] == ["push", "hook", "wx", "dd", "console"]
    push = channels[0]
    assert isinstance(push, KafkaChannel)
    assert push.topic == "gridwatch.notifications"
    assert "kafka-1:9093" in repr(push)
    # No repr shows a URL (robot URLs are credentials).
    assert all("key=K" not in repr(c) and "access_token" not in repr(c) for c in channels)
    assert build_channels(GridwatchConfig(), "site-a") == []
