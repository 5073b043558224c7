"""What the long-poll stream clients share: one named task that connects, reads the endless
multipart body part by part, and reconnects forever with backoff.

A disconnect, an HTTP error, a read idle for ``idle_timeout_s`` (not even a heartbeat) or the end
of the body all lead to the same place: mark the gate OFFLINE, wait a backoff delay, connect again.
A malformed part is a counted rejection; the stream goes on. Credentials are never logged: the
device URL carries none (config rule) and every error text goes through ``redact_text``.

A stream cannot be asked to send an event again, and reading must not stall while recognition
works (the device would drop the connection): events are handed on without waiting for the
handler. The handler's per-gate queue is bounded; what it refuses (``GateBusy``) is lost and
counted as ``dropped``. Events the stream missed (a reconnect, a serial gap) are searched in the
device's event history where the protocol offers one (``_event_history``; see ``backfill``).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from typing import ClassVar

import httpx

from gridwatch.core.config.gates import DahuaStreamGateConfig, IsapiStreamGateConfig
from gridwatch.core.interfaces import (
    GateBusy,
    GateEvent,
    GateEventHandler,
    SerialWatermarks,
    SourceState,
    SourceStatus,
)
from gridwatch.core.redact import mask_url, redact_text
from ingest.backoff import Backoff
from ingest.gates.backfill import Backfill, EventHistory
from ingest.gates.common import GateHealth, PayloadRejected
from ingest.gates.isapi import MAX_EVENT_JSON_BYTES
from ingest.gates.multipart import (
    MalformedPart,
    MultipartError,
    MultipartStreamReader,
    Part,
    boundary_from_content_type,
)
from ingest.gates.serials import SerialTracker
from ingest.gates.watermarks import GateWatermark

log = logging.getLogger(__name__)

StreamGateConfig = IsapiStreamGateConfig | DahuaStreamGateConfig


class StreamEnded(Exception):
    """The device ended or refused the stream; the message says how (safe to log)."""


class HttpStreamSource(abc.ABC):
    """Base of ``IsapiStreamSource`` and ``DahuaStreamSource``."""

    kind: ClassVar[str]

    def __init__(
        self, config: StreamGateConfig, on_event: GateEventHandler, *, watermarks: SerialWatermarks | None = None
    ) -> None:
        self._config = config
        self._on_event = on_event
        self._health = GateHealth(config.id, self.kind)
        self._serials = SerialTracker(self._health.status)
        self._health.status.extra.update({"handler_errors": 0, "dropped": 0})
        self._watermark = GateWatermark(config.id, watermarks)
        self._backfill = Backfill(
            self._health.status, self._event_history(), self._emit, self._serials.is_duplicate, self._watermark
        )
        # Handler calls in flight; held so they are not garbage-collected (the handler's queue bounds them).
        self._handing_over: set[asyncio.Task[None]] = set()
        self._backoff = Backoff.from_config(config.backoff)
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gate_id={self._config.id!r}, url={mask_url(self._config.url)!r})"

    @property
    def status(self) -> SourceStatus:
        return self._health.status

    @property
    @abc.abstractmethod
    def stream_url(self) -> str:
        """The URL of the endless event stream."""

    @abc.abstractmethod
    async def _handle_part(self, part: Part) -> None:
        """Handle one part; raise ``PayloadRejected`` for unusable content."""

    def _event_history(self) -> EventHistory | None:
        """The device's searchable event log, if the protocol offers one (else gaps are only counted)."""
        return None

    def _connection_lost(self) -> None:  # noqa: B027 - optional hook
        """Forget per-connection state (e.g. an event still waiting for its pictures)."""

    async def start(self) -> None:
        if self._task is not None:
            return
        auth = (
            httpx.DigestAuth(self._config.username, self._config.password or "")
            if self._config.username is not None
            else None
        )
        # The read timeout is the idle timeout: no byte for that long (not even a heartbeat) → reconnect.
        timeout = httpx.Timeout(
            connect=self._config.connect_timeout_s,
            read=self._config.idle_timeout_s,
            write=self._config.connect_timeout_s,
            pool=self._config.connect_timeout_s,
        )
        self._client = httpx.AsyncClient(auth=auth, timeout=timeout, follow_redirects=False, trust_env=False)
        self._health.status.state = SourceState.STARTING
        self._task = asyncio.create_task(self._run(), name=f"gate-{self._config.id}-{self.kind}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._backfill.stop()
        await self._watermark.stop()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        if self._health.status.state is not SourceState.STOPPED:
            self._health.stopped()

    async def _run(self) -> None:
        resumed = await self._watermark.load()
        if resumed is not None:
            # The restart forgot the serials: the reconnect search starts after the last one handed over.
            self._serials.resume(resumed)
            log.info("gate %s: resuming after serial %d", self._config.id, resumed)
        while True:
            try:
                await self._session()
                reason = "the device ended the stream"
            except StreamEnded as ended:
                reason = str(ended)
            except httpx.TimeoutException:
                reason = f"nothing received for {self._config.idle_timeout_s:g} s (or connect timed out)"
            except (httpx.HTTPError, OSError) as error:
                reason = redact_text(f"{type(error).__name__}: {error}") or type(error).__name__
            except Exception as error:
                # Whatever the device sent, the gate must keep reconnecting: a task that dies here
                # leaves the gate silently dead for the life of the process. The type only: the
                # message could quote the stream's bytes (a face picture).
                reason = f"unexpected {type(error).__name__}"
                log.error("gate %s: %s in the event stream", self._config.id, reason)
            self._connection_lost()
            self._health.disconnected(reason)
            delay = self._backoff.next_delay()
            log.info("gate %s: reconnecting in %.1f s (%s)", self._config.id, delay, reason)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        assert self._client is not None
        async with self._client.stream("GET", self.stream_url) as response:
            if response.status_code == 401:
                raise StreamEnded("authentication failed (HTTP 401): check the gate's username and password")
            if response.status_code != 200:
                raise StreamEnded(f"HTTP {response.status_code} from the device")
            try:
                boundary = boundary_from_content_type(response.headers.get("content-type"))
            except MultipartError as error:
                raise StreamEnded(str(error)) from None
            reader = MultipartStreamReader(
                boundary, max_part_bytes=max(self._config.max_image_bytes, MAX_EVENT_JSON_BYTES)
            )
            self._health.connected()
            self._backfill.reconnected(self._serials.highest)
            async for chunk in response.aiter_bytes():
                for item in reader.feed(chunk):
                    if isinstance(item, MalformedPart):
                        self._health.rejected(item.reason)
                        continue
                    # A stream that delivers parts is healthy again: the next failure starts from a short delay.
                    self._backoff.reset()
                    try:
                        await self._handle_part(item)
                    except PayloadRejected as rejected:
                        self._health.rejected(rejected.reason)
                if reader.closed:
                    return

    def _drop_duplicate(self, serial: int | None) -> bool:
        """Whether ``serial`` was seen recently (e.g. replayed after a reconnect); counts it if so."""
        if serial is not None and self._serials.is_duplicate(serial):
            self._serials.duplicate(serial)
            return True
        return False

    async def _emit(self, event: GateEvent) -> None:
        """An accepted event: serial bookkeeping (gaps), counting, and the handler for a face or a refusal."""
        if event.serial is not None:
            missed = self._serials.record(event.serial).missed
            if missed:
                self._backfill.gap(event.serial - missed, event.serial - 1)
        self._health.event(event.received_at)
        if not event.reaches_recognition:
            if event.serial is not None:
                self._watermark.end(event.serial)  # nothing to hand over: settled now
            return
        if event.serial is not None:
            self._watermark.begin(event.serial)
        task = asyncio.create_task(self._hand_over(event), name=f"gate-{self._config.id}-event")
        self._handing_over.add(task)
        task.add_done_callback(self._handing_over.discard)
        await asyncio.sleep(0)  # let the handler queue it now: events keep the stream's order

    async def _fetch_picture(self, url: str) -> bytes:
        """A picture from the device itself (same credentials), within ``max_image_bytes``; else ``PayloadRejected``."""
        assert self._client is not None
        limit = self._config.max_image_bytes
        try:
            async with self._client.stream(
                "GET", url, timeout=httpx.Timeout(self._config.connect_timeout_s)
            ) as response:
                if response.status_code != 200:
                    raise PayloadRejected(f"HTTP {response.status_code} from the picture URL")
                picture = bytearray()
                async for chunk in response.aiter_bytes():
                    picture += chunk
                    if len(picture) > limit:
                        raise PayloadRejected(f"picture exceeds the limit of {limit} bytes", status_code=413)
                return bytes(picture)
        except httpx.HTTPError as error:
            raise PayloadRejected(redact_text(f"picture fetch failed: {type(error).__name__}")) from None

    async def _hand_over(self, event: GateEvent) -> None:
        extra = self._health.status.extra
        try:
            await self._on_event(event)
        except GateBusy as busy:
            extra["dropped"] = int(extra["dropped"]) + 1  # type: ignore[call-overload]
            log.warning("gate %s: event %s dropped: %s", self._config.id, event.serial, busy.reason)
        except Exception as exc:
            # Our downstream failing must not stop the stream.
            extra["handler_errors"] = int(extra["handler_errors"]) + 1  # type: ignore[call-overload]
            log.error("gate %s: event handler failed: %s", self._config.id, type(exc).__name__)
        # Handed over, or refused and counted; a hand-over cancelled at stop stays unsettled (searched again).
        if event.serial is not None:
            self._watermark.end(event.serial)
