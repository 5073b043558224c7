"""``isapi_stream``: gridwatch long-polls ``GET /ISAPI/Event/notification/alertStream`` (digest auth).

The body is an endless multipart stream (boundary from the Content-Type, usually ``MIME_boundary``):
a JSON event part, then the ``picturesNumber`` JPEG parts named ``Picture`` that belong to it;
heartbeats in between. ``serialNo`` drops the events a device replays after a reconnect and reveals
the ones it skipped.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import ClassVar

from gridwatch.core.config.gates import IsapiStreamGateConfig
from gridwatch.core.interfaces import GateEventHandler
from ingest.gates.common import PayloadRejected
from ingest.gates.http_stream import HttpStreamSource
from ingest.gates.images import check_jpeg
from ingest.gates.isapi import IsapiNotification, parse_notification, to_gate_event
from ingest.gates.multipart import Part

ALERT_STREAM_PATH = "/ISAPI/Event/notification/alertStream"
# In XML mode the device's keep-alive is an inactive "videoloss" notification.
_XML_HEARTBEAT = re.compile(rb"<eventType>\s*videoloss\s*</eventType>.*<eventState>\s*inactive\s*</eventState>", re.S)


@dataclass(slots=True)
class _PendingEvent:
    """An event whose picture parts are still to come."""

    notification: IsapiNotification
    received_at: dt.datetime
    duplicate: bool
    pictures: list[bytes] = field(default_factory=list)
    parts_seen: int = 0


def _is_picture(part: Part) -> bool:
    return (part.name or "").lower() == "picture" or part.content_type.startswith("image/")


class IsapiStreamSource(HttpStreamSource):
    kind: ClassVar[str] = "isapi_stream"

    def __init__(self, config: IsapiStreamGateConfig, on_event: GateEventHandler) -> None:
        super().__init__(config, on_event)
        self._pending: _PendingEvent | None = None

    @property
    def stream_url(self) -> str:
        return self._config.url.rstrip("/") + ALERT_STREAM_PATH

    def _connection_lost(self) -> None:
        # Pictures of a half-received event will not come on the next connection.
        if self._pending is not None and not self._pending.duplicate:
            self._health.rejected("connection lost before the event's pictures arrived")
        self._pending = None

    async def _handle_part(self, part: Part) -> None:
        if _is_picture(part):
            await self._picture(part.body)
            return
        body = part.body.strip()
        if body.startswith(b"<"):
            if _XML_HEARTBEAT.search(body):
                self._health.heartbeat()
                return
            raise PayloadRejected("XML event notification ignored: configure the device for JSON events")
        notification = parse_notification(body)
        self._drop_incomplete()
        if notification.is_heartbeat:
            self._health.heartbeat()
            return
        received_at = dt.datetime.now(dt.UTC)
        if not notification.is_access_event:
            self._health.event(received_at)
            return
        serial = notification.access.serial_no if notification.access is not None else None
        pending = _PendingEvent(notification, received_at, duplicate=self._drop_duplicate(serial))
        if notification.pictures_expected == 0:
            await self._complete(pending)
        else:
            self._pending = pending

    async def _picture(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            raise PayloadRejected("picture part without a preceding event")
        pending.parts_seen += 1
        if not pending.duplicate:
            pending.pictures.append(data)
        if pending.parts_seen >= pending.notification.pictures_expected:
            self._pending = None
            await self._complete(pending)

    def _drop_incomplete(self) -> None:
        """A new event arrived while the previous one still waited for pictures: that one is incomplete."""
        pending, self._pending = self._pending, None
        if pending is not None and not pending.duplicate:
            self._health.rejected(
                f"event announced {pending.notification.pictures_expected} picture(s), "
                f"the stream sent {pending.parts_seen}"
            )

    async def _complete(self, pending: _PendingEvent) -> None:
        if pending.duplicate:
            return
        for picture in pending.pictures:
            check_jpeg(picture, max_bytes=self._config.max_image_bytes)
        event = to_gate_event(
            pending.notification, self._config, received_at=pending.received_at, pictures=pending.pictures
        )
        await self._emit(event)
