"""The running cameras and gates, by id, reconciled with each new config one source at a time.

``apply()`` starts what is new, restarts what changed (stop, then start: never two readers of
one camera) and stops what was removed or disabled; a source whose config did not change is not
touched, so an integrator's edit never interrupts the other cameras. The HTTP routes of push
gates are mounted and unmounted through a ``RouteMount`` the composition provides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fastapi import APIRouter

from gridwatch.core.config.cameras import CameraConfig
from gridwatch.core.config.gates import GateConfig
from gridwatch.core.interfaces import GateEventHandler, GateSource, SerialWatermarks, SourceState, SourceStatus
from ingest.camera import CameraWorker, FrameHandler
from ingest.gates.factory import GateSourceUnavailable, gate_source_for
from ingest.gates.isapi_push import IsapiPushSource
from ingest.sources import source_for

log = logging.getLogger(__name__)


class RouteMount(Protocol):
    """Where push gates' HTTP routes go (the service's HTTP app)."""

    def mount(self, router: APIRouter) -> None: ...

    def unmount(self, router: APIRouter) -> None: ...


@dataclass(slots=True)
class SourceChanges:
    """What one ``apply()`` did, by source id."""

    started: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.started or self.restarted or self.stopped)


@dataclass(slots=True)
class _RunningCamera:
    config: CameraConfig
    worker: CameraWorker


@dataclass(slots=True)
class _RunningGate:
    config: GateConfig
    source: GateSource | None  # None: the kind's dependency is missing (see failure)
    failure: SourceStatus | None = None


class IngestSupervisor:
    def __init__(
        self,
        *,
        config_root: Path,
        frame_handler: Callable[[CameraConfig], FrameHandler],
        gate_handler: GateEventHandler,
        routes: RouteMount | None,
        watermarks: SerialWatermarks | None = None,
    ) -> None:
        self._config_root = config_root
        self._watermarks = watermarks
        self._frame_handler = frame_handler
        self._gate_handler = gate_handler
        self._routes = routes
        self._cameras: dict[str, _RunningCamera] = {}
        self._gates: dict[str, _RunningGate] = {}
        self._frames_of_stopped = 0  # frames analysed by cameras since stopped (reloads, shutdown)

    @property
    def camera_ids(self) -> list[str]:
        return list(self._cameras)

    def camera_worker(self, camera_id: str) -> CameraWorker | None:
        running = self._cameras.get(camera_id)
        return None if running is None else running.worker

    def camera_status(self) -> list[SourceStatus]:
        return [running.worker.status for running in self._cameras.values()]

    def frames_analysed(self) -> int:
        """Frames handed to recognition since start, by every camera that ran (stopped ones too)."""
        return self._frames_of_stopped + sum(running.worker.status.frames_out for running in self._cameras.values())

    def gate_status(self) -> list[SourceStatus]:
        statuses: list[SourceStatus] = []
        for running in self._gates.values():
            if running.source is not None:
                statuses.append(running.source.status)
            elif running.failure is not None:
                statuses.append(running.failure)
        return statuses

    async def apply(self, cameras: Sequence[CameraConfig], gates: Sequence[GateConfig]) -> SourceChanges:
        """Reconcile the running sources with the config. Gates first: doors matter most."""
        changes = SourceChanges()
        await self._apply_gates([g for g in gates if g.enabled], changes)
        await self._apply_cameras([c for c in cameras if c.enabled], changes)
        return changes

    async def stop(self) -> None:
        """Gates first (no new event enters), then cameras. Idempotent."""
        for gate_id in reversed(list(self._gates)):
            await self._stop_gate(gate_id)
        for camera_id in reversed(list(self._cameras)):
            await self._stop_camera(camera_id)

    # -- cameras -----------------------------------------------------------------------------------

    async def _apply_cameras(self, wanted: Sequence[CameraConfig], changes: SourceChanges) -> None:
        wanted_ids = {c.id for c in wanted}
        for camera_id in [i for i in self._cameras if i not in wanted_ids]:
            await self._stop_camera(camera_id)
            changes.stopped.append(camera_id)
        for config in wanted:
            running = self._cameras.get(config.id)
            if running is not None and running.config == config:
                continue
            if running is not None:
                await self._stop_camera(config.id)
                changes.restarted.append(config.id)
            else:
                changes.started.append(config.id)
            worker = CameraWorker(config, source_for(config, self._config_root), self._frame_handler(config))
            self._cameras[config.id] = _RunningCamera(config, worker)
            await worker.start()

    async def _stop_camera(self, camera_id: str) -> None:
        running = self._cameras.pop(camera_id, None)
        if running is not None:
            await running.worker.stop()
            self._frames_of_stopped += running.worker.status.frames_out

    # -- gates -------------------------------------------------------------------------------------

    async def _apply_gates(self, wanted: Sequence[GateConfig], changes: SourceChanges) -> None:
        wanted_ids = {g.id for g in wanted}
        for gate_id in [i for i in self._gates if i not in wanted_ids]:
            await self._stop_gate(gate_id)
            changes.stopped.append(gate_id)
        for config in wanted:
            running = self._gates.get(config.id)
            if running is not None and running.config == config:
                continue
            if running is not None:
                await self._stop_gate(config.id)
                changes.restarted.append(config.id)
            else:
                changes.started.append(config.id)
            await self._start_gate(config)

    async def _start_gate(self, config: GateConfig) -> None:
        try:
            source = gate_source_for(config, self._gate_handler, watermarks=self._watermarks)
        except GateSourceUnavailable as exc:
            # One kind's missing dependency must not take the other gates (or the cameras) down.
            log.error("%s", exc)
            failure = SourceStatus(
                source_id=config.id, kind=config.kind, state=SourceState.OFFLINE, last_error=str(exc)
            )
            self._gates[config.id] = _RunningGate(config, None, failure)
            return
        self._gates[config.id] = _RunningGate(config, source)
        if isinstance(source, IsapiPushSource):
            if self._routes is None:
                log.error("gate %s: service.http is disabled, so this push gate cannot deliver its events", config.id)
            else:
                self._routes.mount(source.router)
        await source.start()

    async def _stop_gate(self, gate_id: str) -> None:
        running = self._gates.pop(gate_id, None)
        if running is None or running.source is None:
            return
        await running.source.stop()
        if isinstance(running.source, IsapiPushSource) and self._routes is not None:
            self._routes.unmount(running.source.router)
