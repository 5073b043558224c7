"""``isapi_push``: a Hikvision-style terminal POSTs its events to gridwatch's HTTP endpoint.

The terminal's "HTTP listening" host is set to gridwatch and its path to ``/gates/{gate_id}/isapi``.
Each POST is a ``multipart/form-data`` body: a JSON part (``AccessControllerEvent`` or ``event_log``,
else the first part), then ``picturesNumber`` JPEG parts named ``Picture``; heartbeats are the same
JSON with ``eventType: heartBeat``. The endpoint answers 200 with an ISAPI ``ResponseStatus`` only once
the event is durable (the handler returned: recognised, sightings stored or acknowledged by Kafka).
When recognition is saturated it answers 503 with ``Retry-After`` and keeps nothing: the terminal
keeps the event and sends it again. A serial already answered 200 is answered 200 again (the
answer was lost; nothing is handed on twice); one still in recognition gets 409.

Bad input gets a 4xx with ``{"error": reason}`` and is counted; the endpoint keeps serving. The body
is parsed by ``python-multipart``'s streaming parser while it is read, with the size limits enforced
on the way in (a body is never buffered beyond ``max_body_bytes``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import logging
from typing import ClassVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState
from starlette.requests import ClientDisconnect

from gridwatch.core.config.gates import IsapiPushGateConfig
from gridwatch.core.interfaces import GateBusy, GateEvent, GateEventHandler, SourceState, SourceStatus
from ingest.gates.common import GateHealth, PayloadRejected
from ingest.gates.images import check_jpeg
from ingest.gates.isapi import MAX_EVENT_JSON_BYTES, MAX_PICTURES, IsapiNotification, parse_notification, to_gate_event
from ingest.gates.multipart import MultipartError, Part, boundary_from_content_type
from ingest.gates.serials import SerialTracker

log = logging.getLogger(__name__)

EVENT_PART_NAMES = frozenset({"accesscontrollerevent", "event_log"})
PICTURE_PART_NAME = "picture"
MAX_PARTS = MAX_PICTURES + 8
OK_STATUS = {"statusCode": 1, "statusString": "OK", "subStatusCode": "ok"}


class _PartCollector:
    """``python-multipart`` callbacks that collect whole parts, enforcing a per-part size cap."""

    def __init__(self, max_part_bytes: int) -> None:
        self.parts: list[Part] = []
        self.ended = False
        self._max_part_bytes = max_part_bytes
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._body = bytearray()

    def parser(self, boundary: str) -> MultipartParser:
        return MultipartParser(
            boundary.encode("latin-1"),
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
            max_header_count=16,
        )

    def _on_part_begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise PayloadRejected(f"more than {MAX_PARTS} parts")
        self._headers = {}
        self._body = bytearray()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").strip().lower()] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if len(self._body) + (end - start) > self._max_part_bytes:
            raise PayloadRejected(f"a part exceeds the limit of {self._max_part_bytes} bytes", status_code=413)
        self._body += data[start:end]

    def _on_part_end(self) -> None:
        self.parts.append(Part(self._headers, bytes(self._body)))
        self._body = bytearray()

    def _on_end(self) -> None:
        self.ended = True


def _error(reason: str, status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status_code, headers=headers)


class IsapiPushSource:
    """One pushing terminal: its FastAPI route, its health, its recent serials."""

    kind: ClassVar[str] = "isapi_push"

    def __init__(self, config: IsapiPushGateConfig, on_event: GateEventHandler) -> None:
        self._config = config
        self._on_event = on_event
        self._health = GateHealth(config.id, self.kind)
        self._serials = SerialTracker(self._health.status)
        self._health.status.extra.update({"handler_errors": 0, "busy": 0})
        self._in_flight: set[int] = set()  # serials in recognition, not yet answered
        self._user = config.username.encode()
        self._password = config.password.encode()
        self._running = False
        self._router = APIRouter()
        self._router.add_api_route(
            self.path, self._receive, methods=["POST"], include_in_schema=False, name=f"gate-{config.id}-isapi"
        )

    def __repr__(self) -> str:
        return f"IsapiPushSource(gate_id={self._config.id!r}, path={self.path!r})"

    @property
    def path(self) -> str:
        return f"/gates/{self._config.id}/isapi"

    @property
    def router(self) -> APIRouter:
        """The route ``POST /gates/{gate_id}/isapi``; the service includes it in its app."""
        return self._router

    @property
    def status(self) -> SourceStatus:
        return self._health.status

    async def start(self) -> None:
        # Push: nothing to connect. The state turns ONLINE when the terminal first posts.
        self._running = True

    async def stop(self) -> None:
        self._running = False
        if self._health.status.state is not SourceState.STOPPED:
            self._health.stopped()

    # --- the endpoint --------------------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, colon, password = decoded.partition(b":")
        # Both compared in constant time, always both: no timing hint about which one was wrong.
        user_ok = hmac.compare_digest(user, self._user)
        password_ok = hmac.compare_digest(password, self._password)
        return bool(colon) and user_ok and password_ok

    def _reject(self, reason: str, status_code: int, headers: dict[str, str] | None = None) -> JSONResponse:
        self._health.rejected(reason)
        return _error(reason, status_code, headers)

    async def _receive(self, request: Request) -> JSONResponse:
        if not self._running:
            return _error("gate is not running", 503)
        if not self._authorized(request.headers.get("authorization")):
            return self._reject(
                "authentication required", 401, {"WWW-Authenticate": f'Basic realm="gridwatch gate {self._config.id}"'}
            )
        self._health.connected()
        received_at = dt.datetime.now(dt.UTC)
        try:
            notification, pictures = await self._read(request)
            return await self._accept(notification, pictures, received_at)
        except PayloadRejected as rejected:
            return self._reject(rejected.reason, rejected.status_code)
        except ClientDisconnect:
            return self._reject("client disconnected before the body was complete", 400)

    async def _read(self, request: Request) -> tuple[IsapiNotification, list[bytes]]:
        limit = self._config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                raise PayloadRejected("invalid Content-Length")
            if int(declared) > limit:
                raise PayloadRejected(
                    f"body of {int(declared)} bytes exceeds the limit of {limit} bytes", status_code=413
                )
        content_type = request.headers.get("content-type", "")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type == "application/json":
            # Some firmwares push picture-less events as bare JSON.
            body = await self._read_limited(request, limit)
            return parse_notification(body), []
        if not media_type.startswith("multipart/"):
            raise PayloadRejected("expected a multipart/form-data body", status_code=415)
        try:
            boundary = boundary_from_content_type(content_type)
        except MultipartError as error:
            raise PayloadRejected(str(error)) from None
        collector = _PartCollector(max(self._config.max_image_bytes, MAX_EVENT_JSON_BYTES))
        try:
            parser = collector.parser(boundary)
        except (ValueError, MultipartParseError):
            raise PayloadRejected("unusable multipart boundary") from None
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise PayloadRejected(f"body exceeds the limit of {limit} bytes", status_code=413)
            try:
                parser.write(chunk)
            except MultipartParseError:
                raise PayloadRejected("malformed multipart body") from None
        if not collector.ended or parser.state is not MultipartState.END:
            raise PayloadRejected("malformed multipart body (incomplete, no closing boundary)")
        return self._event_and_pictures(collector.parts)

    @staticmethod
    async def _read_limited(request: Request, limit: int) -> bytes:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise PayloadRejected(f"body exceeds the limit of {limit} bytes", status_code=413)
        return bytes(body)

    def _event_and_pictures(self, parts: list[Part]) -> tuple[IsapiNotification, list[bytes]]:
        if not parts:
            raise PayloadRejected("multipart body has no parts")
        named = [part for part in parts if (part.name or "").lower() in EVENT_PART_NAMES]
        event_part = named[0] if named else parts[0]
        notification = parse_notification(event_part.body)
        pictures = [
            part.body
            for part in parts
            if part is not event_part
            and (
                (part.name or "").lower() == PICTURE_PART_NAME
                or (part.name is None and part.content_type.startswith("image/"))
            )
        ]
        return notification, pictures

    async def _accept(
        self, notification: IsapiNotification, pictures: list[bytes], received_at: dt.datetime
    ) -> JSONResponse:
        if notification.is_heartbeat:
            self._health.heartbeat()
            return JSONResponse(OK_STATUS)
        if not notification.is_access_event:
            # Another event type (door status, alarms): acknowledged, nothing to recognise.
            self._health.event(received_at)
            return JSONResponse(OK_STATUS)
        expected = notification.pictures_expected
        if len(pictures) < expected:
            raise PayloadRejected(f"event announces {expected} picture(s), the body has {len(pictures)}")
        serial = notification.access.serial_no if notification.access is not None else None
        if serial is not None and (replayed := self._replayed(serial)) is not None:
            return replayed
        for picture in pictures:
            check_jpeg(picture, max_bytes=self._config.max_image_bytes)
        event = to_gate_event(notification, self._config, received_at=received_at, pictures=pictures)
        # Re-checked after the awaits above: two concurrent posts of one serial make one event.
        if serial is not None:
            if (replayed := self._replayed(serial)) is not None:
                return replayed
            self._in_flight.add(serial)
        try:
            return await self._hand_over(event, serial, received_at)
        finally:
            if serial is not None:
                self._in_flight.discard(serial)

    def _replayed(self, serial: int) -> JSONResponse | None:
        """The answer to a serial seen before: 200 if it was taken (our answer was lost), 409 while in recognition."""
        if self._serials.is_duplicate(serial):
            self._serials.duplicate(serial)
            return JSONResponse(OK_STATUS)
        if serial in self._in_flight:
            self._serials.duplicate(serial)
            raise PayloadRejected(f"serialNo {serial} is being processed; send it again later", status_code=409)
        return None

    async def _hand_over(self, event: GateEvent, serial: int | None, received_at: dt.datetime) -> JSONResponse:
        if event.reaches_recognition:
            extra = self._health.status.extra
            try:
                await self._on_event(event)
            except GateBusy as busy:
                # Not kept: the terminal keeps the event and sends it again; not a rejection of its payload.
                extra["busy"] = int(extra["busy"]) + 1  # type: ignore[call-overload]
                return JSONResponse(
                    {"error": f"busy: {busy.reason}"},
                    status_code=503,
                    headers={"Retry-After": str(busy.retry_after_s)},
                )
            except Exception as exc:
                # Not recognised, so not durable: not "OK". The serial is not recorded, so a resend is tried again.
                extra["handler_errors"] = int(extra["handler_errors"]) + 1  # type: ignore[call-overload]
                log.error("gate %s: event handler failed: %s", self._config.id, type(exc).__name__)
                return JSONResponse({"error": "the event could not be processed"}, status_code=500)
        # Recorded only now: a serial refused above is new again when the terminal resends it.
        if serial is not None:
            self._serials.record(serial)
        self._health.event(received_at)
        return JSONResponse(OK_STATUS)
