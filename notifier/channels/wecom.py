"""WeCom (企业微信) group robot channel: a markdown message with the one-click acknowledgement link.

The robot answers HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; any other ``errcode`` is a refusal.
45009 (calls too frequent: the robot takes 20 messages a minute) is retried with backoff; 40058 (an
invalid parameter, e.g. a message the robot will not take) is about that message and parks it; every
other code (a wrong key, a system error) is retried.
"""

from __future__ import annotations

import json

from gridwatch.core.config.channels import WecomChannelConfig
from gridwatch.core.events import Notification
from notifier.channels.http import HttpChannel
from notifier.channels.message import notification_markdown

# markdown.content is at most 4096 bytes (UTF-8).
MAX_CONTENT_BYTES = 4096
RATE_LIMITED = frozenset({45009})
REJECTED = frozenset({40058})


def wecom_payload(notification: Notification) -> dict[str, object]:
    """The robot's markdown message of one notification."""
    return {
        "msgtype": "markdown",
        "markdown": {"content": notification_markdown(notification, max_bytes=MAX_CONTENT_BYTES)},
    }


class WecomChannel(HttpChannel):
    kind = "wecom"

    def __init__(self, config: WecomChannelConfig) -> None:
        super().__init__(config.id, config.url, config.timeout_s)

    async def send(self, notification: Notification) -> None:
        what = f"notification {notification.notification_id}"
        body = json.dumps(wecom_payload(notification), ensure_ascii=False).encode("utf-8")
        response = await self._post(self._url, body, {}, what)
        self._check_robot_answer(response, what, rate_limited=RATE_LIMITED, rejected=REJECTED)
