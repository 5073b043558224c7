"""Reconciling running sources with a new config: only what changed is touched."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from fastapi import APIRouter
from pydantic import TypeAdapter

from gridwatch.core.config.cameras import FileCameraConfig
from gridwatch.core.config.gates import GateConfig
from gridwatch.core.interfaces import Frame, GateEvent, SourceState
from ingest.camera import FrameHandler
from ingest.supervisor import IngestSupervisor
from tests.support.cameras import LOCATION_CLASS, SIGNAGE_CHECKED


class Frames:
    def __init__(self) -> None:
        self.by_camera: Counter[str] = Counter()

    def handler(self, camera: FileCameraConfig) -> FrameHandler:  # type: ignore[override]
        async def on_frame(frame: Frame) -> None:
            self.by_camera[camera.id] += 1

        return on_frame


class Routes:
    def __init__(self) -> None:
        self.paths: set[str] = set()

    def mount(self, router: APIRouter) -> None:
        self.paths |= {route.path for route in router.routes}  # type: ignore[attr-defined]

    def unmount(self, router: APIRouter) -> None:
        self.paths -= {route.path for route in router.routes}  # type: ignore[attr-defined]


async def no_events(event: GateEvent) -> None: ...


def camera(camera_id: str, clip: Path, fps: float = 5.0) -> FileCameraConfig:
    return FileCameraConfig(
        id=camera_id,
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=clip,
        fps=fps,
    )


def push_gate(gate_id: str) -> GateConfig:
    return TypeAdapter(GateConfig).validate_python(
        {"id": gate_id, "kind": "isapi_push", "username": "terminal", "password": "s3cret-for-tests"}
    )


async def wait_for_frames(frames: Frames, camera_id: str, at_least: int, deadline_s: float = 20.0) -> None:
    async with asyncio.timeout(deadline_s):
        while frames.by_camera[camera_id] < at_least:
            await asyncio.sleep(0.05)


async def test_apply_touches_only_what_changed(short_clip: Path, tmp_path: Path) -> None:
    frames = Frames()
    routes = Routes()
    supervisor = IngestSupervisor(
        config_root=tmp_path, frame_handler=frames.handler, gate_handler=no_events, routes=routes
    )
    try:
        first = await supervisor.apply([camera("a", short_clip)], [])
        assert first.started == ["a"]
        await wait_for_frames(frames, "a", 2)
        worker_a = supervisor.camera_worker("a")

        added = await supervisor.apply([camera("a", short_clip), camera("b", short_clip)], [push_gate("door-1")])
        assert (added.started, added.restarted, added.stopped) == (["door-1", "b"], [], [])
        assert supervisor.camera_worker("a") is worker_a  # untouched: no reconnect, same reader
        assert routes.paths == {"/gates/door-1/isapi"}
        await wait_for_frames(frames, "b", 2)

        changed = await supervisor.apply([camera("a", short_clip), camera("b", short_clip, fps=2.0)], [])
        assert (changed.started, changed.restarted, changed.stopped) == ([], ["b"], ["door-1"])
        assert supervisor.camera_worker("a") is worker_a
        assert routes.paths == set()

        unchanged = await supervisor.apply([camera("a", short_clip), camera("b", short_clip, fps=2.0)], [])
        assert not unchanged

        removed = await supervisor.apply([camera("b", short_clip, fps=2.0)], [])
        assert removed.stopped == ["a"]
        assert worker_a is not None
        assert worker_a.status.state is SourceState.STOPPED
        assert supervisor.camera_ids == ["b"]
        assert worker_a.status.reconnects == 0
    finally:
        await supervisor.stop()
    assert supervisor.camera_status() == []
    # Frames of stopped cameras still count (the service's summary is taken after the shutdown).
    assert supervisor.frames_analysed() == sum(frames.by_camera.values()) > 0
