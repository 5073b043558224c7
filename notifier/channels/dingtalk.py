"""DingTalk (钉钉) group robot channel: a markdown message with the one-click acknowledgement link.

With ``signing_secret`` (the robot's 加签 security setting) every request URL carries
``&timestamp=<ms>&sign=<sign>``, where ``sign`` is the URL-encoded base64 of
HMAC-SHA256(secret, "<ms>\\n<secret>"), as DingTalk's robot documentation specifies; DingTalk refuses a
timestamp more than an hour off, so it is taken per request.

The robot answers HTTP 200 with ``{"errcode": 0, "errmsg": "ok"}``; any other ``errcode`` is a refusal.
130101 (sending too fast: 20 messages a minute) is retried with backoff; 460101 (the message is too
long) parks that message; every other code (310000: a wrong signature, keyword or IP allowlist, a
configuration matter true of every message) is retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse

from gridwatch.core.config.channels import DingtalkChannelConfig
from gridwatch.core.events import Notification
from notifier.channels.http import HttpChannel
from notifier.channels.message import notification_markdown, notification_title

# DingTalk takes ~20,000 bytes; stay well inside.
MAX_TEXT_BYTES = 15_000
RATE_LIMITED = frozenset({130101})
REJECTED = frozenset({460101})


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The ``sign`` query value (URL-encoded) for ``timestamp_ms``."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), string_to_sign, hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


def signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """``url`` with DingTalk's ``timestamp`` and ``sign`` query parameters appended."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


def dingtalk_payload(notification: Notification) -> dict[str, object]:
    """The robot's markdown message of one notification."""
    return {
        "msgtype": "markdown",
        "markdown": {
            "title": notification_title(notification),
            "text": notification_markdown(notification, max_bytes=MAX_TEXT_BYTES),
        },
    }


class DingtalkChannel(HttpChannel):
    kind = "dingtalk"

    def __init__(self, config: DingtalkChannelConfig) -> None:
        super().__init__(config.id, config.url, config.timeout_s)
        self._secret = config.signing_secret

    async def send(self, notification: Notification) -> None:
        what = f"notification {notification.notification_id}"
        body = json.dumps(dingtalk_payload(notification), ensure_ascii=False).encode("utf-8")
        url = self._url if self._secret is None else signed_url(self._url, self._secret, int(time.time() * 1000))
        response = await self._post(url, body, {}, what)
        self._check_robot_answer(response, what, rate_limited=RATE_LIMITED, rejected=REJECTED)
