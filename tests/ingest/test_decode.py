"""Only frames due for analysis are converted to BGR: the others are grabbed (demuxed and decoded by
FFmpeg, which an H.264 stream needs) and never retrieved. Time is the stream's own (an injected clock)."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gridwatch.core.config.cameras import FileCameraConfig
from gridwatch.core.interfaces import Frame
from ingest.camera import CameraWorker
from ingest.sources import GrabbingReader
from tests.ingest.polling import eventually
from tests.support.cameras import LOCATION_CLASS, SIGNAGE_CHECKED
from tests.support.metrics import sample


class CountingStream:
    """A finite 30 fps stream of ``count`` frames that counts grabs and retrieves."""

    finite = True
    display_url = "counting://test"
    period_s = 1 / 32  # a power of two: stream times add up exactly

    def __init__(self, count: int) -> None:
        self.count = count
        self.grabs = 0
        self.retrieves = 0
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def open(self) -> CountingStream:
        return self

    def grab(self) -> bool:
        if self.grabs >= self.count:
            return False
        self.now = self.grabs * self.period_s
        self.grabs += 1
        return True

    def retrieve(self) -> npt.NDArray[np.uint8] | None:
        self.retrieves += 1
        return np.zeros((36, 64, 3), dtype=np.uint8)

    def read(self) -> npt.NDArray[np.uint8] | None:
        return self.retrieve() if self.grab() else None

    def close(self) -> None:
        pass


async def test_only_frames_due_at_the_camera_fps_are_converted() -> None:
    stream = CountingStream(count=128)  # 4 s of a 32 fps stream
    assert isinstance(stream, GrabbingReader)
    camera_id = f"decode-{uuid.uuid4().hex[:8]}"
    config = FileCameraConfig(
        id=camera_id,
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=Path("unused.mp4"),
        fps=4.0,
    )
    frames: list[Frame] = []

    async def on_frame(frame: Frame) -> None:
        frames.append(frame)

    async with CameraWorker(config, stream, on_frame, clock=stream.clock) as worker:  # type: ignore[arg-type]
        await eventually(lambda: worker.status.extra.get("ended") is True, 20, "the stream ended")
    assert stream.grabs == 128
    assert stream.retrieves == 16  # 4 frames per second of stream, for 4 s
    assert sample("gridwatch_frames_in_total", camera=camera_id) == 128
