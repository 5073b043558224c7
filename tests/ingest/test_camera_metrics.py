"""The camera worker moves the frame metrics of its camera, in step with its status counters."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from gridwatch.core.config.cameras import FileCameraConfig
from gridwatch.core.interfaces import Frame
from ingest.camera import CameraWorker
from ingest.sources import source_for
from tests.ingest.conftest import SHORT_CLIP_FRAMES
from tests.ingest.polling import eventually
from tests.support.cameras import LOCATION_CLASS, SIGNAGE_CHECKED
from tests.support.metrics import sample


async def test_frames_in_analysed_and_dropped_move_with_the_status(short_clip: Path) -> None:
    camera = f"metrics-{uuid.uuid4().hex[:8]}"  # its own series: the registry is shared by the whole session
    names = ("gridwatch_frames_in_total", "gridwatch_frames_analysed_total", "gridwatch_frames_dropped_total")
    before = {name: sample(name, camera=camera) for name in names}

    async def slow_analyser(frame: Frame) -> None:
        await asyncio.sleep(0.15)  # behind the camera's 30 fps: sampled frames are overwritten (dropped)

    config = FileCameraConfig(
        id=camera,
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=short_clip,
        fps=30,
        loop=True,
    )
    worker = CameraWorker(config, source_for(config, Path.cwd()), slow_analyser)
    async with worker:
        await eventually(
            lambda: worker.status.frames_in > SHORT_CLIP_FRAMES and worker.status.frames_dropped >= 2,
            20,
            "frames read and dropped",
        )
    status = worker.status  # stopped: the reader thread has ended, nothing moves any more
    delta = {name: sample(name, camera=camera) - before[name] for name in names}
    assert delta["gridwatch_frames_in_total"] == status.frames_in > SHORT_CLIP_FRAMES
    assert delta["gridwatch_frames_analysed_total"] == status.frames_out > 0
    assert delta["gridwatch_frames_dropped_total"] == status.frames_dropped >= 2
