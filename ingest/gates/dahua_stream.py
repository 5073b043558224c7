"""``dahua_stream``: gridwatch attaches to ``/cgi-bin/eventManager.cgi?action=attach&codes=[AccessControl]``.

The body is ``multipart/x-mixed-replace``: text parts ``Code=AccessControl;action=Pulse;index=0;data={...}``
and ``Heartbeat`` parts every ``heartbeat_s`` seconds. The face snapshot is fetched from the event's
``SnapURL`` (on the device itself, with the same digest credentials); ``RecNo`` plays the part of
ISAPI's ``serialNo``; ``Type`` Entry/Exit gives the direction when the reader is not configured.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import ClassVar

from gridwatch.core.config.gates import DahuaStreamGateConfig
from gridwatch.core.interfaces import GateEventHandler, SerialWatermarks
from ingest.gates.common import PayloadRejected
from ingest.gates.dahua import (
    ACCESS_CODE,
    DahuaAccessData,
    is_heartbeat,
    parse_access_data,
    parse_events,
    snapshot_url,
    to_gate_event,
)
from ingest.gates.http_stream import HttpStreamSource
from ingest.gates.images import check_jpeg
from ingest.gates.multipart import Part

log = logging.getLogger(__name__)

ATTACH_PATH = "/cgi-bin/eventManager.cgi"
EVENT_ACTIONS = frozenset({"Pulse", "Start"})


class DahuaStreamSource(HttpStreamSource):
    kind: ClassVar[str] = "dahua_stream"

    def __init__(
        self, config: DahuaStreamGateConfig, on_event: GateEventHandler, *, watermarks: SerialWatermarks | None = None
    ) -> None:
        super().__init__(config, on_event, watermarks=watermarks)
        self._heartbeat_s = config.heartbeat_s

    @property
    def stream_url(self) -> str:
        # Brackets unencoded, as devices and their documentation write them.
        return (
            f"{self._config.url.rstrip('/')}{ATTACH_PATH}"
            f"?action=attach&codes=[{ACCESS_CODE}]&heartbeat={self._heartbeat_s}"
        )

    async def _handle_part(self, part: Part) -> None:
        try:
            text = part.body.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadRejected("event part is not UTF-8 text") from None
        if is_heartbeat(text):
            self._health.heartbeat()
            return
        received_at = dt.datetime.now(dt.UTC)
        for event in parse_events(text):
            if event.code == "HeartBeat" or event.code == "Heartbeat":
                self._health.heartbeat()
                continue
            if event.code != ACCESS_CODE or event.action not in EVENT_ACTIONS:
                log.debug("gate %s: ignoring %s/%s", self._config.id, event.code[:40], event.action[:20])
                continue
            data = parse_access_data(event)
            if self._drop_duplicate(data.rec_no):
                continue
            face = await self._snapshot(data)
            gate_event = to_gate_event(
                data, self._config, received_at=received_at, face_image=face, action=event.action
            )
            await self._emit(gate_event)

    async def _snapshot(self, data: DahuaAccessData) -> bytes | None:
        """The face snapshot from ``SnapURL``, or ``None`` (counted as a rejection) when it cannot be had."""
        if not data.snap_url:
            return None
        try:
            url = snapshot_url(self._config.url, data.snap_url)
            picture = await self._fetch_picture(url)
            check_jpeg(picture, max_bytes=self._config.max_image_bytes)
        except PayloadRejected as rejected:
            self._health.rejected(f"snapshot of RecNo {data.rec_no}: {rejected.reason}")
            return None
        return picture
