"""``isapi_stream``: gridwatch long-polls ``GET /ISAPI/Event/notification/alertStream`` (digest auth).

The body is an endless multipart stream (boundary from the Content-Type, usually ``MIME_boundary``):
a JSON event part, then the ``picturesNumber`` JPEG parts named ``Picture`` that belong to it;
heartbeats in between. ``serialNo`` drops the events a device replays after a reconnect and reveals
the ones it skipped; those are searched in the terminal's event log (``AcsEvent``, same digest
credentials) and handed on like live ones.

A logged event's picture is fetched from its ``pictureURL`` when the terminal kept one. Without a
picture the event still counts, and a refusal (a denied verdict) still reaches recognition as a
stranger attempt; a granted event without a face has nothing to recognise and goes no further, as
on the live stream (``GateEvent.reaches_recognition``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import ValidationError

from gridwatch.core.config.gates import IsapiStreamGateConfig
from gridwatch.core.interfaces import GateEvent, GateEventHandler, SerialWatermarks
from ingest.gates.backfill import EventHistory, HistoryUnavailable
from ingest.gates.common import PayloadRejected
from ingest.gates.http_stream import HttpStreamSource
from ingest.gates.images import check_jpeg
from ingest.gates.isapi import IsapiNotification, parse_notification, to_gate_event, validation_reason
from ingest.gates.isapi_history import (
    ACS_EVENT_PATH,
    MAX_ANSWER_BYTES,
    AcsEventAnswer,
    AcsEventInfo,
    AcsEventPage,
    picture_url,
    search_body,
)
from ingest.gates.multipart import Part

log = logging.getLogger(__name__)

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

    def __init__(
        self, config: IsapiStreamGateConfig, on_event: GateEventHandler, *, watermarks: SerialWatermarks | None = None
    ) -> None:
        super().__init__(config, on_event, watermarks=watermarks)
        self._pending: _PendingEvent | None = None

    @property
    def stream_url(self) -> str:
        return self._config.url.rstrip("/") + ALERT_STREAM_PATH

    def _event_history(self) -> EventHistory:
        return _AcsEventHistory(self)

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


class _AcsEventHistory:
    """The terminal's event log, searched through the source's client (``EventHistory``)."""

    def __init__(self, source: IsapiStreamSource) -> None:
        config = source._config
        assert isinstance(config, IsapiStreamGateConfig)  # the base class types it as either stream config
        self._source = source
        self._config = config

    @property
    def max_events(self) -> int:
        return self._config.backfill_max_events

    async def latest_serial(self) -> int | None:
        page = await self._page(search_body(uuid.uuid4().hex, 0, 1))
        serials = [info.serial_no for info in page.info_list if info.serial_no is not None]
        return max(serials, default=None)

    async def search(self, first: int, last: int) -> AsyncIterator[GateEvent]:
        search_id = uuid.uuid4().hex
        size = self._config.backfill_page_size
        position = 0
        # Bounded: a page that adds nothing, or more events than the range holds, ends the search.
        while position <= last - first:
            page = await self._page(search_body(search_id, position, size, first=first, last=last))
            for info in page.info_list:
                if info.serial_no is None:
                    continue
                try:
                    event = await self._event(info)
                except PayloadRejected as rejected:  # one unusable entry (e.g. its time); the rest still counts
                    self._source._health.rejected(f"logged event {info.serial_no}: {rejected.reason}")
                    continue
                yield event
            position += len(page.info_list)
            if page.status != "MORE" or not page.info_list:
                return

    async def _page(self, body: dict[str, object]) -> AcsEventPage:
        client = self._source._client
        if client is None:
            raise HistoryUnavailable("the gate is stopped")
        url = self._config.url.rstrip("/") + ACS_EVENT_PATH
        response = await client.post(url, params={"format": "json"}, json=body)
        if response.status_code != 200:
            # 404: no such API (not an access terminal); 401/403: the account may not search events.
            raise HistoryUnavailable(f"the event log search (AcsEvent) answered HTTP {response.status_code}")
        if len(response.content) > MAX_ANSWER_BYTES:
            raise PayloadRejected(f"AcsEvent answer exceeds {MAX_ANSWER_BYTES} bytes")
        try:
            return AcsEventAnswer.model_validate(json.loads(response.content)).page
        except (ValueError, RecursionError) as error:
            if isinstance(error, ValidationError):
                raise PayloadRejected(validation_reason(error, "AcsEvent answer")) from None
            raise PayloadRejected("AcsEvent answer is not valid JSON") from None

    async def _event(self, info: AcsEventInfo) -> GateEvent:
        received_at = dt.datetime.now(dt.UTC)
        pictures: list[bytes] = []
        if info.picture_url:
            try:
                picture = await self._source._fetch_picture(picture_url(self._config.url, info.picture_url))
                check_jpeg(picture, max_bytes=self._config.max_image_bytes)
                pictures.append(picture)
            except PayloadRejected as rejected:
                # The event is still worth having without its face; the failure is counted.
                self._source._health.rejected(f"picture of logged event {info.serial_no}: {rejected.reason}")
        return to_gate_event(info.notification(), self._config, received_at=received_at, pictures=pictures)
