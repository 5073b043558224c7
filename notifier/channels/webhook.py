"""Webhook channel: the notification JSON, POSTed and (with ``signing_secret``) signed.

Signature, as the receiver checks it (``verify_signature`` below does exactly that)::

    X-Gridwatch-Timestamp: <unix seconds>
    X-Gridwatch-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

The timestamp is inside what is signed, so a receiver that refuses old timestamps (``tolerance_s``)
also refuses a replayed request; deliveries are at least once, so receivers deduplicate on
``X-Gridwatch-Notification-Id`` (also the body's ``notification_id``). Error handling: see
``notifier.channels.http``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from gridwatch.core.config.channels import WebhookChannelConfig
from gridwatch.core.events import Notification
from notifier.channels.http import HttpChannel

TIMESTAMP_HEADER = "X-Gridwatch-Timestamp"
SIGNATURE_HEADER = "X-Gridwatch-Signature"
NOTIFICATION_ID_HEADER = "X-Gridwatch-Notification-Id"
SIGNATURE_PREFIX = "sha256="


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Gridwatch-Signature`` value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify_signature(
    secret: str, timestamp: str, body: bytes, header: str, *, now: float, tolerance_s: float = 300
) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp`` with ``secret``, and the timestamp is within
    ``tolerance_s`` of ``now``. For receivers (and tests); constant-time in the signature."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body).encode(), header.strip().encode())


class WebhookChannel(HttpChannel):
    """POSTs each notification's JSON to ``config.url``."""

    kind = "webhook"

    def __init__(self, config: WebhookChannelConfig) -> None:
        super().__init__(config.id, config.url, config.timeout_s)
        self._secret = config.signing_secret

    async def send(self, notification: Notification) -> None:
        body = notification.to_json().encode("utf-8")
        headers = {NOTIFICATION_ID_HEADER: notification.notification_id}
        if self._secret is not None:
            timestamp = int(time.time())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = sign(self._secret, timestamp, body)
        await self._post(self._url, body, headers, f"notification {notification.notification_id}")
