"""The one-process service: cameras and gates → recognition → rules → notifier, plus the HTTP API.

Start order: audit log, model pack and registries, rule state, notifier, HTTP API (with the routes
of push gates), gate intake, gates, cameras. Stop order is the reverse, so no frame or gate event is
analysed after its alert could no longer be sent.

Gate sources only enqueue their events (a bounded queue; when it is full the oldest event is
dropped and counted): a door never waits on recognition. One worker task decodes each snapshot in
memory and runs it through the same recognition path as camera frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from fastapi import APIRouter

from gridwatch.audit import AuditLog
from gridwatch.config.loader import LoadedConfig
from gridwatch.events import Alert, Sighting, SourceKind
from gridwatch.http import HttpServer, create_app
from gridwatch.interfaces import Frame, GateEvent, GateSource, SourceState, SourceStatus
from gridwatch.wiring import RecognitionParts, build_recognition, data_paths
from ingest.camera import CameraWorker
from ingest.gates.factory import GateSourceUnavailable, gate_source_for
from ingest.sources import source_for
from notifier.notifier import Notifier, build_sinks
from notifier.outbox import Outbox
from recognition.recognizer import Recognizer, SourceInfo
from rules.engine import RuleEngine
from rules.state import RuleState

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600.0
GATE_QUEUE_SIZE = 64
GATE_DRAIN_S = 5.0


@dataclass(frozen=True, slots=True)
class Summary:
    frames_analysed: int
    faces: int
    sightings: int
    alerts: int

    def line(self) -> str:
        return (
            f"summary: frames analysed {self.frames_analysed}, faces {self.faces}, "
            f"sightings {self.sightings}, alerts {self.alerts}"
        )


class GateIntake:
    """The bounded queue between gate sources and recognition, and the worker that empties it.

    ``put`` is the handler the gate sources call: it never waits. When the queue is full the
    oldest event is dropped (a fresh face at the door matters more than a stale one) and counted
    per gate.
    """

    def __init__(self, process: Callable[[GateEvent], Awaitable[None]], capacity: int = GATE_QUEUE_SIZE) -> None:
        self._process = process
        self._queue: asyncio.Queue[GateEvent] = asyncio.Queue(maxsize=capacity)
        self._task: asyncio.Task[None] | None = None
        self.dropped: dict[str, int] = {}
        self.processed = 0
        self.failed = 0

    @property
    def capacity(self) -> int:
        return self._queue.maxsize

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def put(self, event: GateEvent) -> None:
        if self._task is None or event.face_image is None:
            return  # stopped, or nothing to recognise (the source counted the event already)
        while self._queue.full():
            stale = self._queue.get_nowait()
            self._queue.task_done()
            self.dropped[stale.gate_id] = self.dropped.get(stale.gate_id, 0) + 1
            log.warning("gate %s: recognition queue full; dropped the oldest event", stale.gate_id)
        self._queue.put_nowait(event)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name="gridwatch.gate-recognition")

    async def stop(self, drain_s: float = GATE_DRAIN_S) -> None:
        """Finish the queued events (at most ``drain_s``), then stop the worker. Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        if not task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        while not self._queue.empty():  # left over after the drain deadline: memory only, let go
            self._queue.get_nowait()
            self._queue.task_done()

    async def _work(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._process(event)
                self.processed += 1
            except Exception as exc:  # one bad event must not stop the gates
                self.failed += 1
                # The type only: a message could quote the snapshot's bytes.
                log.error(
                    "gate %s: recognition failed on event %s: %s", event.gate_id, event.serial, type(exc).__name__
                )
            finally:
                self._queue.task_done()


def decode_jpeg(data: bytes) -> npt.NDArray[np.uint8] | None:
    """A BGR image decoded in memory, or None when the bytes are not a decodable image."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.asarray(image, dtype=np.uint8)


class Service:
    def __init__(self, loaded: LoadedConfig) -> None:
        self._loaded = loaded
        config = loaded.config
        self._paths = data_paths(loaded)
        self.audit = AuditLog(self._paths.audit_log)
        self._parts: RecognitionParts | None = None
        self._recognizer: Recognizer | None = None
        self._rule_state = RuleState(self._paths.rule_state_db)
        self._engine = RuleEngine(config.rules, self._rule_state)
        self._outbox = Outbox(self._paths.outbox_db)
        self._notifier: Notifier | None = None
        self._cameras: list[CameraWorker] = []
        self._gates: list[GateSource] = []
        self._gate_failures: list[SourceStatus] = []
        self._gate_grids: dict[str, str | None] = {}
        self._gate_intake = GateIntake(self._recognize_gate_event)
        self._tasks: list[asyncio.Task[None]] = []
        self._http: HttpServer | None = None
        self._started = False
        self.alerts_seen: list[Alert] = []

    @property
    def http_port(self) -> int | None:
        return None if self._http is None else self._http.port

    @property
    def registries(self) -> RecognitionParts:
        assert self._parts is not None, "service not started"
        return self._parts

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        config = self._loaded.config
        self._paths.root.mkdir(parents=True, exist_ok=True)
        parts = build_recognition(self._loaded, self.audit)
        await asyncio.to_thread(parts.analyzer.load)
        await asyncio.to_thread(parts.registries.load)
        purged = await asyncio.to_thread(parts.registries.purge_expired)
        if purged:
            log.info("retention: erased %d expired registry entries", len(purged))
        self._parts = parts
        self._recognizer = Recognizer(parts.analyzer, parts.gate, parts.registries)
        log.info(
            "model pack %s (%s, %s)",
            parts.analyzer.model_id,
            parts.analyzer.pack.origin,
            parts.analyzer.pack.directory,
        )
        self._rule_state.open()
        self._notifier = Notifier(
            config.notifier,
            self._outbox,
            build_sinks(config.notifier, self._paths.root, config.service.name),
            self.audit,
        )
        await self._notifier.start()
        routers = self._build_gates()
        if config.service.http.enabled:
            app = create_app(status=self.status, routers=routers)
            self._http = HttpServer(app, config.service.http.host, config.service.http.port)
            await self._http.start()
        elif routers:
            log.error("service.http is disabled: push gates cannot deliver their events")
        self._tasks.append(asyncio.create_task(self._purge_loop(), name="gridwatch.retention-purge"))
        await self._gate_intake.start()
        for source in self._gates:
            await source.start()
        for camera in config.cameras:
            if not camera.enabled:
                continue
            info = SourceInfo(camera.id, SourceKind.CAMERA, camera.grid)
            worker = CameraWorker(camera, source_for(camera, self._loaded.root), self._frame_handler(info))
            self._cameras.append(worker)
            await worker.start()
        log.info(
            "gridwatch started: %d camera(s), %d gate(s), %d registr(ies), %d rule(s)",
            len(self._cameras),
            len(self._gates),
            len(config.registries),
            len(config.rules),
        )

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        # Gates first: no new event enters while the rest shuts down.
        for source in reversed(self._gates):
            await source.stop()
        for worker in reversed(self._cameras):
            await worker.stop()
        await self._gate_intake.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._http is not None:
            await self._http.stop()
        if self._notifier is not None:
            await self._notifier.stop()
        self._rule_state.close()
        if self._parts is not None:
            self._parts.store.close()
        self.audit.close()
        log.info("gridwatch stopped")

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _build_gates(self) -> list[APIRouter]:
        """A source per enabled gate (not started yet), and the HTTP routes of the push sources."""
        routers: list[APIRouter] = []
        for gate in self._loaded.config.gates:
            if not gate.enabled:
                continue
            self._gate_grids[gate.id] = gate.grid
            try:
                source = gate_source_for(gate, self._gate_intake.put)
            except GateSourceUnavailable as exc:
                # One kind's missing dependency must not take the other gates (or the cameras) down.
                log.error("%s", exc)
                self._gate_failures.append(
                    SourceStatus(source_id=gate.id, kind=gate.kind, state=SourceState.OFFLINE, last_error=str(exc))
                )
                continue
            self._gates.append(source)
            router = getattr(source, "router", None)
            if isinstance(router, APIRouter):
                routers.append(router)
        return routers

    async def _recognize_gate_event(self, event: GateEvent) -> None:
        assert self._recognizer is not None
        if event.face_image is None:
            return
        image = await asyncio.to_thread(decode_jpeg, event.face_image)
        if image is None:
            log.warning("gate %s: snapshot of event %s is not a decodable image", event.gate_id, event.serial)
            return
        source = SourceInfo(event.gate_id, SourceKind.GATE, self._gate_grids.get(event.gate_id))
        sightings = await self._recognizer.recognize_async(
            image, source, captured_at=event.device_time.astimezone(dt.UTC), direction=event.direction
        )
        for sighting in sightings:
            await self.handle_sighting(sighting)

    def _frame_handler(self, source: SourceInfo):  # type: ignore[no-untyped-def]
        async def on_frame(frame: Frame) -> None:
            assert self._recognizer is not None
            sightings = await self._recognizer.recognize_async(frame.image, source, captured_at=frame.captured_at)
            for sighting in sightings:
                await self.handle_sighting(sighting)

        return on_frame

    async def handle_sighting(self, sighting: Sighting) -> None:
        log.debug(
            "sighting %s: person %s of %s at %s (similarity %.2f)",
            sighting.sighting_id,
            sighting.person_id,
            sighting.registry,
            sighting.source,
            sighting.similarity,
        )
        assert self._notifier is not None
        for alert in self._engine.evaluate(sighting):
            self.alerts_seen.append(alert)
            await self._notifier.submit(alert)

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL_S)
            assert self._parts is not None
            purged = await asyncio.to_thread(self._parts.registries.purge_expired)
            if purged:
                log.info("retention: erased %d expired registry entries", len(purged))

    def camera_status(self) -> list[SourceStatus]:
        return [worker.status for worker in self._cameras]

    def gate_status(self) -> list[SourceStatus]:
        return [source.status for source in self._gates] + list(self._gate_failures)

    def status(self) -> dict[str, object]:
        stats = self._recognizer.stats if self._recognizer is not None else None
        return {
            "service": self._loaded.config.service.name,
            "model": None if self._parts is None else self._parts.analyzer.model_id,
            "cameras": [_status_dict(s) for s in self.camera_status()],
            "gates": [_gate_status_dict(s, self._gate_intake.dropped.get(s.source_id, 0)) for s in self.gate_status()],
            "gate_queue": {
                "pending": self._gate_intake.pending,
                "capacity": self._gate_intake.capacity,
                "dropped": sum(self._gate_intake.dropped.values()),
                "processed": self._gate_intake.processed,
                "failed": self._gate_intake.failed,
            },
            "recognition": None
            if stats is None
            else {
                "images": stats.images,
                "faces": stats.faces,
                "faces_rejected": stats.faces_rejected,
                "faces_searched": stats.faces_searched,
                "sightings": stats.sightings,
            },
            "rules": {"sightings": self._engine.sightings, "alerts": self._engine.alerts},
        }

    def summary(self) -> Summary:
        stats = self._recognizer.stats if self._recognizer is not None else None
        return Summary(
            frames_analysed=sum(s.frames_out for s in self.camera_status()),
            faces=0 if stats is None else stats.faces,
            sightings=0 if stats is None else stats.sightings,
            alerts=self._engine.alerts,
        )


def _status_dict(status: SourceStatus) -> dict[str, object]:
    def iso(value: dt.datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": status.source_id,
        "kind": status.kind,
        "state": str(status.state),
        "last_frame_at": iso(status.last_frame_at),
        "last_error": status.last_error,
        "reconnects": status.reconnects,
        "frames_in": status.frames_in,
        "frames_out": status.frames_out,
        "frames_dropped": status.frames_dropped,
        "fps_in": round(status.fps_in, 2),
        "fps_out": round(status.fps_out, 2),
        **status.extra,
    }


def _gate_status_dict(status: SourceStatus, dropped: int) -> dict[str, object]:
    extra = dict(status.extra)
    return {
        "id": status.source_id,
        "kind": status.kind,
        "state": str(status.state),
        "connected": bool(extra.pop("connected", False)),
        "last_event_at": None if status.last_frame_at is None else status.last_frame_at.isoformat(),
        "last_error": status.last_error,
        "heartbeats": extra.pop("heartbeats", 0),
        "events": extra.pop("events", status.frames_in),
        "events_per_minute": extra.pop("events_per_minute", 0),
        "rejected": extra.pop("rejected", 0),
        "reconnects": status.reconnects,
        "dropped": dropped,
        **extra,
    }
