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
from collections import deque
from dataclasses import dataclass

from fastapi import APIRouter

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.loader import LoadedConfig
from gridwatch.core.events import Alert, Sighting, SourceKind
from gridwatch.core.interfaces import Frame, GateEvent, GateSource, SourceState, SourceStatus
from gridwatch.gate_intake import GateIntake, decode_jpeg
from gridwatch.http import HttpServer, create_app
from gridwatch.status import camera_status_dict, gate_status_dict
from gridwatch.wiring import RecognitionParts, build_recognition, build_storage, data_paths
from ingest.camera import CameraWorker
from ingest.gates.factory import GateSourceUnavailable, gate_source_for
from ingest.sources import source_for
from notifier.notifier import Notifier, build_sinks
from recognition.recognizer import Recognizer, SourceInfo
from rules.engine import RuleEngine

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600.0


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


class Service:
    def __init__(self, loaded: LoadedConfig) -> None:
        self._loaded = loaded
        config = loaded.config
        self._paths = data_paths(loaded)
        self.audit = AuditLog(self._paths.audit_log)
        self._parts: RecognitionParts | None = None
        self._recognizer: Recognizer | None = None
        self._storage = build_storage(loaded)
        self._rule_state = self._storage.rule_state
        self._engine = RuleEngine(config.rules, self._rule_state)
        self._outbox = self._storage.outbox
        self._notifier: Notifier | None = None
        self._cameras: list[CameraWorker] = []
        self._gates: list[GateSource] = []
        self._gate_failures: list[SourceStatus] = []
        self._gate_grids: dict[str, str | None] = {}
        self._gate_intake = GateIntake(self._recognize_gate_event)
        self._tasks: list[asyncio.Task[None]] = []
        self._http: HttpServer | None = None
        self._started = False
        # The latest alerts, for the demo summary and tests; bounded, the outbox is the record.
        self.alerts_seen: deque[Alert] = deque(maxlen=1000)
        self._alerts_submitted = 0

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
        try:
            await self._start_components()
        except BaseException:
            # A half-started service (a busy HTTP port, a missing model pack) must not leave its
            # notifier, gates or open files behind: callers only stop what started.
            await self.stop()
            raise

    async def _start_components(self) -> None:
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
        self._storage.open()
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
        self._storage.close()
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
            try:
                submitted = await self._notifier.submit(alert)
            except Exception:
                # Not stored, so not sent: release the cooldown the rule just took, or the person
                # would stay silent for a whole cooldown after a lost alert.
                self._engine.release(alert)
                raise
            if submitted:
                self.alerts_seen.append(alert)
                self._alerts_submitted += 1
            else:
                log.info("alert %s was submitted before (a replayed sighting); not sent again", alert.alert_id)

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL_S)
            assert self._parts is not None
            try:
                purged = await asyncio.to_thread(self._parts.registries.purge_expired)
            except Exception:
                # Retention must go on: one failed pass (a locked database, a full disk) is retried.
                log.exception("retention: purge failed; retrying in %.0f s", PURGE_INTERVAL_S)
                continue
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
            "cameras": [camera_status_dict(s) for s in self.camera_status()],
            "gates": [gate_status_dict(s, self._gate_intake.dropped.get(s.source_id, 0)) for s in self.gate_status()],
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
            alerts=self._alerts_submitted,
        )
