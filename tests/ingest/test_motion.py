"""Motion gating: no detection while nothing moves, yet at least one every ``max_skip_s``.

Time is the frames' own (an injected clock the fake stream advances), never the wall clock.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gridwatch.core.config.cameras import FileCameraConfig, MotionConfig
from gridwatch.core.interfaces import Frame
from ingest.camera import CameraWorker
from ingest.motion import MotionGate
from tests.ingest.polling import eventually
from tests.support.cameras import LOCATION_CLASS, SIGNAGE_CHECKED
from tests.support.metrics import sample

STILL = np.full((90, 160, 3), 80, dtype=np.uint8)


def moved(step: int) -> npt.NDArray[np.uint8]:
    """A bright square that moves across an otherwise still picture."""
    image = STILL.copy()
    x = (step * 20) % 140
    image[30:60, x : x + 20] = 250
    return image


def test_a_still_picture_is_analysed_once_per_max_skip() -> None:
    gate = MotionGate(MotionConfig(enabled=True, max_skip_s=1.0))
    due = [t for t in np.arange(0.0, 10.0, 0.25) if gate.due(STILL, float(t))]
    assert due == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]


def test_every_frame_that_moves_is_analysed() -> None:
    gate = MotionGate(MotionConfig(enabled=True, max_skip_s=5.0))
    assert all(gate.due(moved(step), step * 0.25) for step in range(40))


def test_sensor_noise_is_not_motion() -> None:
    gate = MotionGate(MotionConfig(enabled=True, max_skip_s=60.0))
    rng = np.random.default_rng(7)
    noisy = [np.clip(STILL + rng.integers(-4, 5, STILL.shape), 0, 255).astype(np.uint8) for _ in range(20)]
    assert [gate.due(image, i * 0.2) for i, image in enumerate(noisy)] == [True] + [False] * 19


class FrameClock:
    """Seconds of the fake stream: each frame read moves it one frame period on."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class StaticStream:
    """A finite stream of ``count`` frames (``images(i)``), each ``period_s`` after the previous one."""

    finite = True
    display_url = "static://test"

    def __init__(self, clock: FrameClock, count: int, period_s: float, images: object) -> None:
        self._clock, self._count, self._period_s, self._images = clock, count, period_s, images
        self._read = 0

    def open(self) -> StaticStream:
        return self

    def read(self) -> npt.NDArray[np.uint8] | None:
        if self._read >= self._count:
            return None
        self._clock.now = self._read * self._period_s
        image = self._images(self._read)  # type: ignore[operator]
        self._read += 1
        return np.asarray(image, dtype=np.uint8)

    def close(self) -> None:
        pass


async def run_camera(camera_id: str, motion: MotionConfig, images: object) -> list[Frame]:
    clock = FrameClock()
    config = FileCameraConfig(
        id=camera_id,
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=Path("unused.mp4"),
        fps=4.0,
        motion=motion,
    )
    frames: list[Frame] = []

    async def on_frame(frame: Frame) -> None:
        frames.append(frame)

    stream = StaticStream(clock, count=40, period_s=0.25, images=images)
    async with CameraWorker(config, stream, on_frame, clock=clock) as worker:  # type: ignore[arg-type]
        await eventually(lambda: worker.status.extra.get("ended") is True, 20, "the stream ended")
        await asyncio.sleep(0.05)  # the last frame handed over is delivered
    return frames


async def test_a_camera_skips_detection_on_a_still_scene_yet_detects_every_max_skip() -> None:
    camera_id = f"still-{uuid.uuid4().hex[:8]}"
    frames = await run_camera(camera_id, MotionConfig(enabled=True, max_skip_s=1.0), lambda i: STILL)
    # 40 frames due over 10 s of stream time: one handed on per second, the 30 others skipped.
    assert sample("gridwatch_frames_in_total", camera=camera_id) == 40
    assert sample("gridwatch_frames_without_motion_total", camera=camera_id) == 30
    assert 1 <= len(frames) <= 10
    assert all(frame.seq % 4 == 1 for frame in frames)  # frames 1, 5, 9, ...: one per second of stream


async def test_a_moving_scene_and_an_ungated_camera_hand_on_every_due_frame() -> None:
    for motion, images in ((MotionConfig(enabled=True), moved), (MotionConfig(enabled=False), lambda i: STILL)):
        camera_id = f"moving-{uuid.uuid4().hex[:8]}"
        await run_camera(camera_id, motion, images)
        assert sample("gridwatch_frames_in_total", camera=camera_id) == 40
        assert sample("gridwatch_frames_without_motion_total", camera=camera_id) == 0
