"""CameraWorker.stop(): the reader thread ends; a reader stuck in a read never runs beside a second one."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from gridwatch.core.config.cameras import BackoffConfig, FileCameraConfig
from gridwatch.core.interfaces import Frame, FrameReader, SourceState
from ingest.camera import CameraWorker, ReaderStillRunningError
from ingest.sources import source_for
from tests.ingest.polling import eventually
from tests.support.cameras import LOCATION_CLASS, SIGNAGE_CHECKED

FAST_BACKOFF = BackoffConfig(initial_s=0.05, max_s=0.2, factor=2.0)


def camera(camera_id: str = "cam-stop", path: Path = Path("unused.mp4")) -> FileCameraConfig:
    return FileCameraConfig(
        id=camera_id,
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=path,
        fps=20,
        loop=True,
        backoff=FAST_BACKOFF,
    )


def reader_threads(camera_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"camera-{camera_id}"]


class Frames:
    def __init__(self) -> None:
        self.frames: list[Frame] = []

    async def __call__(self, frame: Frame) -> None:
        self.frames.append(frame)


class _BlockingReader:
    def __init__(self, source: BlockingSource) -> None:
        self._source = source

    def read(self) -> npt.NDArray[np.uint8] | None:
        source = self._source
        with source.lock:
            source.reading += 1
            concurrent = source.reading
            source.max_concurrent = max(source.max_concurrent, concurrent)
        try:
            if source.block.is_set():
                source.blocked.set()
                source.release.wait(30.0)  # a read stuck in FFmpeg; bounded so a failed test cannot hang
            else:
                time.sleep(0.01)
            return np.zeros((8, 8, 3), dtype=np.uint8)
        finally:
            with source.lock:
                source.reading -= 1

    def close(self) -> None:
        with self._source.lock:
            self._source.closed += 1


class BlockingSource:
    """A source whose reads can be made to block (like an RTSP read that hangs), shared by two workers."""

    finite = False

    def __init__(self) -> None:
        self.block = threading.Event()  # reads block while set
        self.blocked = threading.Event()  # a read is blocked now
        self.release = threading.Event()  # unblocks the stuck read
        self.lock = threading.Lock()
        self.opens = 0
        self.closed = 0
        self.reading = 0
        self.max_concurrent = 0

    @property
    def display_url(self) -> str:
        return "test://blocking"

    @property
    def nominal_fps(self) -> float | None:
        return None

    def open(self) -> FrameReader:
        with self.lock:
            self.opens += 1
        return _BlockingReader(self)


async def test_stop_joins_the_reader_thread_of_a_file_camera(short_clip: Path) -> None:
    config = camera("cam-file", short_clip)
    frames = Frames()
    worker = CameraWorker(config, source_for(config, Path.cwd()), frames)
    await worker.start()
    try:
        await eventually(lambda: len(frames.frames) >= 3, 20, "3 frames delivered")
        assert reader_threads("cam-file")
    finally:
        started = time.monotonic()
        await worker.stop()
    assert time.monotonic() - started < 5.0
    assert not worker.reader_alive
    assert reader_threads("cam-file") == []  # stop() returned after the thread ended
    assert worker.status.state is SourceState.STOPPED
    await worker.stop()  # safe twice
    # The same worker starts again (its reader ended) and stops again.
    await worker.start()
    await eventually(lambda: len(reader_threads("cam-file")) == 1, 5, "reader running again")
    await worker.stop()
    assert reader_threads("cam-file") == []


async def test_a_stuck_reader_is_reported_and_a_restarted_camera_waits_for_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = BlockingSource()
    old = CameraWorker(camera(), source, Frames(), stop_timeout_s=0.3)
    await old.start()
    await eventually(lambda: source.opens == 1 and source.reading == 1, 5, "the old reader reading")
    source.block.set()
    await eventually(source.blocked.is_set, 5, "the old reader stuck in a read")

    caplog.set_level(logging.WARNING, logger="ingest.camera")
    started = time.monotonic()
    await old.stop()
    assert time.monotonic() - started < 3.0  # bounded
    assert old.reader_alive
    assert "still blocked" in caplog.text

    # The same worker refuses to start while its reader is stuck.
    with pytest.raises(ReaderStillRunningError):
        await old.start()

    # A new worker for the same camera (a reload restarting it) waits for the stuck reader.
    frames = Frames()
    new = CameraWorker(camera(), source, frames, stop_timeout_s=2.0)
    source.block.clear()
    await new.start()
    try:
        await eventually(lambda: new.status.extra.get("waiting_for_previous_reader") is True, 5, "waiting")
        await asyncio.sleep(0.3)
        assert source.opens == 1  # the new reader did not open the stream beside the stuck one
        assert frames.frames == []

        source.release.set()  # the stuck read returns; the old reader sees its stop and ends
        await eventually(lambda: not old.reader_alive, 5, "the old reader ended")
        await eventually(lambda: len(frames.frames) >= 3, 10, "the new reader delivering")
        assert source.opens == 2
        assert "waiting_for_previous_reader" not in new.status.extra
    finally:
        await new.stop()
    assert not new.reader_alive
    assert reader_threads("cam-stop") == []
    assert source.max_concurrent == 1  # never two reads of this camera at once


async def test_a_worker_stopped_while_waiting_for_a_stuck_reader_ends_at_once() -> None:
    source = BlockingSource()
    source.block.set()
    old = CameraWorker(camera("cam-wait"), source, Frames(), stop_timeout_s=0.2)
    await old.start()
    await eventually(source.blocked.is_set, 5, "the old reader stuck in a read")
    await old.stop()
    assert old.reader_alive

    waiting = CameraWorker(camera("cam-wait"), source, Frames(), stop_timeout_s=2.0)
    await waiting.start()
    await eventually(lambda: waiting.status.extra.get("waiting_for_previous_reader") is True, 5, "waiting")
    started = time.monotonic()
    await waiting.stop()
    assert time.monotonic() - started < 1.5
    assert not waiting.reader_alive

    # A third worker still waits for the stuck one (not only for the one that waited before it).
    third = CameraWorker(camera("cam-wait"), source, Frames(), stop_timeout_s=2.0)
    await third.start()
    try:
        await eventually(lambda: third.status.extra.get("waiting_for_previous_reader") is True, 5, "waiting")
        assert source.opens == 1
        source.block.clear()
        source.release.set()
        await eventually(lambda: source.opens == 2, 5, "the third reader opened the stream")
    finally:
        await third.stop()
    await eventually(lambda: reader_threads("cam-wait") == [], 5, "every reader ended")
    assert source.max_concurrent == 1
