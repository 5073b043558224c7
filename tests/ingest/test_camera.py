"""The camera worker against the real RTSP test server and real video files."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from pathlib import Path

import numpy as np
import pytest

from gridwatch.core.config.cameras import BackoffConfig, FileCameraConfig, RtspCameraConfig
from gridwatch.core.interfaces import Frame, SourceState
from ingest.camera import CameraWorker, RateMeter
from ingest.sources import source_for
from tests.ingest.conftest import SHORT_CLIP_FRAMES
from tests.ingest.polling import eventually
from tests.support.cameras import LOCATION_CLASS, SIGNAGE_CHECKED
from tests.support.rtsp import RtspServer, free_port

FAST_BACKOFF = BackoffConfig(initial_s=0.05, max_s=0.8, factor=2.0)


class Collector:
    """An ``on_frame`` that keeps what it was given (optionally slowly)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.frames: list[Frame] = []
        self.delay_s = delay_s

    async def __call__(self, frame: Frame) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # a slow analyser
        self.frames.append(frame)


def rtsp_camera(url: str, fps: float = 5.0, camera_id: str = "cam1") -> RtspCameraConfig:
    return RtspCameraConfig(
        id=camera_id,
        kind="rtsp",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        url=url,
        fps=fps,
        open_timeout_s=3,
        read_timeout_s=3,
        backoff=FAST_BACKOFF,
    )


def failed_attempts(worker: CameraWorker) -> int:
    attempts = worker.status.extra.get("failed_attempts", 0)
    assert isinstance(attempts, int)
    return attempts


def worker_for(config: RtspCameraConfig | FileCameraConfig, on_frame: Collector) -> CameraWorker:
    return CameraWorker(config, source_for(config, Path.cwd()), on_frame)


async def test_streams_frames_from_rtsp(rtsp_server: RtspServer) -> None:
    collector = Collector()
    async with worker_for(rtsp_camera(rtsp_server.url, fps=5), collector) as worker:
        await eventually(lambda: worker.status.frames_out >= 8, 20, "8 frames delivered")
    status = worker.status
    assert status.state is SourceState.STOPPED
    assert status.frames_in > status.frames_out  # the 30 fps stream is sampled at 5 fps
    frame = collector.frames[-1]
    assert frame.source_id == "cam1"
    assert frame.image.shape == (360, 640, 3)
    assert frame.image.dtype == np.uint8
    assert frame.captured_at.tzinfo is not None
    seqs = [f.seq for f in collector.frames]
    assert seqs == sorted(set(seqs))


async def test_status_while_online(rtsp_server: RtspServer) -> None:
    collector = Collector()
    async with worker_for(rtsp_camera(rtsp_server.url, fps=10), collector) as worker:
        assert worker.status.state in (SourceState.STARTING, SourceState.ONLINE)
        await eventually(lambda: worker.status.frames_out >= 5, 20, "5 frames delivered")
        status = worker.status
        assert status.state is SourceState.ONLINE
        assert status.source_id == "cam1"
        assert status.kind == "rtsp"
        assert status.fps_out > 0
        assert status.fps_in > 0
        assert status.last_frame_at is not None
        assert status.reconnects == 0
        assert status.last_error is None


async def test_recovers_when_the_server_dies_and_returns(rtsp_server: RtspServer) -> None:
    collector = Collector()
    async with worker_for(rtsp_camera(rtsp_server.url, fps=10), collector) as worker:
        await eventually(lambda: worker.status.frames_out >= 3, 20, "frames before the outage")

        rtsp_server.kill()
        await eventually(lambda: worker.status.state is SourceState.OFFLINE, 20, "OFFLINE after the kill")
        assert worker.status.last_error
        frames_during_outage = worker.status.frames_out

        rtsp_server.start()  # same port
        await eventually(lambda: worker.status.state is SourceState.ONLINE, 20, "ONLINE after the restart")
        await eventually(lambda: worker.status.frames_out >= frames_during_outage + 3, 20, "frames after the restart")
        assert worker.status.reconnects >= 1


async def test_slow_handler_drops_frames_instead_of_queueing(rtsp_server: RtspServer) -> None:
    collector = Collector(delay_s=0.5)
    async with worker_for(rtsp_camera(rtsp_server.url, fps=20), collector) as worker:
        await eventually(lambda: worker.status.frames_dropped >= 3, 20, "frames dropped behind a slow handler")
        await eventually(lambda: len(collector.frames) >= 3, 20, "3 slow deliveries")
    seqs = [f.seq for f in collector.frames]
    assert all(b > a for a, b in itertools.pairwise(seqs))
    # Latest wins: consecutive deliveries skip the frames that arrived meanwhile.
    assert max(b - a for a, b in itertools.pairwise(seqs)) > 1


async def test_credentials_never_reach_the_logs(rtsp_server: RtspServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    online_url = rtsp_server.url.replace("rtsp://", "rtsp://viewer:secret@")
    dead_url = f"rtsp://viewer:secret@127.0.0.1:{free_port()}/cam1"
    collector = Collector()
    online = worker_for(rtsp_camera(online_url), collector)
    dead = worker_for(rtsp_camera(dead_url, camera_id="cam2"), collector)
    async with online, dead:
        await eventually(lambda: online.status.frames_out >= 2, 20, "the camera with credentials streams")
        await eventually(lambda: failed_attempts(dead) >= 2, 20, "failed attempts")
        assert "secret" not in str(dead.status.last_error)
    messages = [record.getMessage() for record in caplog.records]
    assert any("rtsp://***@127.0.0.1" in message for message in messages)
    assert not [message for message in messages if "secret" in message]
    assert "secret" not in caplog.text


async def test_unreachable_camera_goes_offline_with_growing_backoff() -> None:
    collector = Collector()
    config = rtsp_camera(f"rtsp://127.0.0.1:{free_port()}/cam1")
    async with worker_for(config, collector) as worker:
        await eventually(lambda: failed_attempts(worker) >= 5, 20, "5 failed attempts")
        status = worker.status
        assert status.state is SourceState.OFFLINE
        assert status.last_error is not None
        assert "cannot open" in status.last_error
        assert status.frames_in == 0
    assert worker.status.state is SourceState.STOPPED
    assert collector.frames == []


async def test_missing_file_goes_offline_with_growing_backoff(tmp_path: Path) -> None:
    config = FileCameraConfig(
        id="demo",
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=tmp_path / "missing.mp4",
        backoff=FAST_BACKOFF,
    )
    worker = worker_for(config, Collector())
    await worker.start()
    try:
        ceilings: list[float] = []

        def record_ceiling() -> bool:
            ceiling = worker.status.extra.get("retry_ceiling_s")
            if isinstance(ceiling, float) and (not ceilings or ceiling != ceilings[-1]):
                ceilings.append(ceiling)
            return len(ceilings) >= 3

        await eventually(record_ceiling, 20, "three growing backoff ceilings", interval_s=0.005)
        assert ceilings == sorted(ceilings)
        assert ceilings[-1] > ceilings[0]
        status = worker.status
        assert status.state is SourceState.OFFLINE
        assert "not found" in str(status.last_error)
    finally:
        await worker.stop()


async def test_file_camera_loops_without_reconnecting(short_clip: Path) -> None:
    collector = Collector()
    config = FileCameraConfig(
        id="demo",
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=short_clip,
        fps=30,
        loop=True,
    )
    async with worker_for(config, collector) as worker:
        await eventually(
            lambda: worker.status.frames_in > SHORT_CLIP_FRAMES * 2, 20, "frames past two ends of the clip"
        )
        status = worker.status
        assert status.state is SourceState.ONLINE
        assert status.reconnects == 0
        assert status.frames_out > SHORT_CLIP_FRAMES


async def test_file_camera_without_loop_stops_at_the_end(short_clip: Path) -> None:
    collector = Collector()
    config = FileCameraConfig(
        id="demo",
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=short_clip,
        fps=30,
        loop=False,
    )
    async with worker_for(config, collector) as worker:
        await eventually(lambda: worker.status.extra.get("ended") is True, 20, "the end of the file")
        status = worker.status
        assert status.state is SourceState.STOPPED
        assert status.frames_in == SHORT_CLIP_FRAMES
        assert status.reconnects == 0


async def test_handler_errors_do_not_stop_the_camera(short_clip: Path, caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def failing(frame: Frame) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("analyser broke")

    config = FileCameraConfig(
        id="demo",
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=short_clip,
        fps=30,
    )
    async with CameraWorker(config, source_for(config, Path.cwd()), failing) as worker:
        await eventually(lambda: calls >= 3, 20, "three failed deliveries")
        assert worker.status.state is SourceState.ONLINE
    assert "frame handler failed" in caplog.text


async def test_start_and_stop_are_idempotent(short_clip: Path) -> None:
    config = FileCameraConfig(
        id="demo",
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=short_clip,
        fps=30,
    )
    worker = worker_for(config, Collector())
    await worker.stop()  # never started: nothing to do
    await worker.start()
    await worker.start()
    await eventually(lambda: worker.status.frames_out >= 1, 20, "a frame")
    states = [worker.status.state]
    await worker.stop()
    await worker.stop()
    states.append(worker.status.state)
    assert states == [SourceState.ONLINE, SourceState.STOPPED]
    assert not worker.running
    # and it can run again
    await worker.start()
    await eventually(lambda: worker.status.state is SourceState.ONLINE, 20, "online again")
    await worker.stop()


def test_rate_meter_over_a_window() -> None:
    now = [100.0]
    meter = RateMeter(window_s=2.0, clock=lambda: now[0])
    assert meter.rate() == 0.0
    for _ in range(10):
        now[0] += 0.1
        meter.tick()
    assert meter.rate() == pytest.approx(10.0)
    now[0] += 5.0  # nothing for longer than the window
    assert meter.rate() == 0.0


async def test_hung_server_is_abandoned_after_the_open_timeout() -> None:
    # A server that accepts TCP connections and never answers: only OpenCV's open timeout helps.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        url = f"rtsp://127.0.0.1:{hung.getsockname()[1]}/cam1"
        config = rtsp_camera(url).model_copy(update={"open_timeout_s": 1.0, "read_timeout_s": 1.0})
        async with worker_for(config, Collector()) as worker:
            await eventually(lambda: failed_attempts(worker) >= 2, 20, "two timed-out opens")
            assert worker.status.state is SourceState.OFFLINE
