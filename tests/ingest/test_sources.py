"""RTSP and file sources against real files and the real GStreamer RTSP server."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from gridwatch.core.config.cameras import FileCameraConfig, RtspCameraConfig
from ingest.sources import (
    DEFAULT_FFMPEG_OPTIONS,
    FFMPEG_OPTIONS_ENV,
    FileSource,
    RtspSource,
    ensure_ffmpeg_capture_options,
    is_finite,
    source_for,
)
from tests.ingest.conftest import SHORT_CLIP_FPS, SHORT_CLIP_FRAMES
from tests.support.cameras import LOCATION_CLASS, SIGNAGE_CHECKED
from tests.support.rtsp import RtspServer, free_port


def test_ffmpeg_options_are_set_when_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FFMPEG_OPTIONS_ENV, raising=False)
    assert ensure_ffmpeg_capture_options() == DEFAULT_FFMPEG_OPTIONS
    assert os.environ[FFMPEG_OPTIONS_ENV] == DEFAULT_FFMPEG_OPTIONS


def test_ffmpeg_options_set_by_the_operator_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FFMPEG_OPTIONS_ENV, "rtsp_transport;udp")
    assert ensure_ffmpeg_capture_options() == "rtsp_transport;udp"
    assert os.environ[FFMPEG_OPTIONS_ENV] == "rtsp_transport;udp"


def test_source_for_chooses_by_kind(tmp_path: Path) -> None:
    rtsp = RtspCameraConfig(
        id="gate1",
        kind="rtsp",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        url="rtsp://admin:secret@10.0.0.7/live",
        open_timeout_s=2,
    )
    source = source_for(rtsp, tmp_path)
    assert isinstance(source, RtspSource)
    assert source.display_url == "rtsp://***@10.0.0.7/live"
    assert "secret" not in repr(source)
    assert source.open_timeout_s == 2
    assert not is_finite(source)

    relative = source_for(
        FileCameraConfig(
            id="demo",
            kind="file",
            location_class=LOCATION_CLASS,
            signage_verified_at=SIGNAGE_CHECKED,
            path=Path("v/demo.mp4"),
        ),
        tmp_path,
    )
    assert isinstance(relative, FileSource)
    assert relative.path == tmp_path / "v" / "demo.mp4"
    assert not is_finite(relative)

    absolute = source_for(
        FileCameraConfig(
            id="demo",
            kind="file",
            location_class=LOCATION_CLASS,
            signage_verified_at=SIGNAGE_CHECKED,
            path=Path("/x/y.mp4"),
            loop=False,
        ),
        tmp_path,
    )
    assert isinstance(absolute, FileSource)
    assert absolute.path == Path("/x/y.mp4")
    assert is_finite(absolute)


def test_rtsp_source_reads_the_test_server(rtsp_server: RtspServer) -> None:
    source = RtspSource(rtsp_server.url, open_timeout_s=5, read_timeout_s=5)
    reader = source.open()
    try:
        for _ in range(5):
            image = reader.read()
            assert image is not None
            assert image.shape == (360, 640, 3)
            assert image.dtype == np.uint8
        assert reader.grab()
        assert reader.retrieve() is not None
    finally:
        reader.close()
    assert source.nominal_fps is not None
    assert source.nominal_fps > 0


def test_rtsp_source_open_failure_masks_the_url() -> None:
    port = free_port()  # nothing listens here
    source = RtspSource(f"rtsp://admin:secret@127.0.0.1:{port}/cam1", open_timeout_s=2, read_timeout_s=2)
    with pytest.raises(ConnectionError) as excinfo:
        source.open()
    assert "secret" not in str(excinfo.value)
    assert f"rtsp://***@127.0.0.1:{port}/cam1" in str(excinfo.value)


def test_file_source_loops(short_clip: Path) -> None:
    reader = FileSource(short_clip, loop=True).open()
    try:
        images = [reader.read() for _ in range(SHORT_CLIP_FRAMES * 2 + 3)]
    finally:
        reader.close()
    assert all(image is not None for image in images)
    first, again = images[0], images[SHORT_CLIP_FRAMES]
    assert first is not None
    assert again is not None
    assert np.array_equal(first, again)  # after the end it starts at frame 0


def test_file_source_without_loop_ends(short_clip: Path) -> None:
    source = FileSource(short_clip, loop=False)
    reader = source.open()
    try:
        images = [reader.read() for _ in range(SHORT_CLIP_FRAMES)]
        assert all(image is not None for image in images)
        assert reader.read() is None
        assert reader.read() is None
    finally:
        reader.close()
    assert source.nominal_fps == pytest.approx(SHORT_CLIP_FPS)


def test_file_source_paces_in_real_time(short_clip: Path) -> None:
    reader = FileSource(short_clip, loop=True).open()
    frames = 10
    try:
        started = time.monotonic()
        for _ in range(frames):
            assert reader.read() is not None
        elapsed = time.monotonic() - started
    finally:
        reader.close()
    # Not a speed bound: a paced source must not run *faster* than the file's clock
    # (10 frames at 20 fps span 9 frame periods = 0.45 s).
    assert elapsed >= (frames - 1) / SHORT_CLIP_FPS * 0.9


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("missing.mp4", None, FileNotFoundError),
        ("garbage.mp4", b"this is not a video", OSError),
    ],
)
def test_file_source_open_errors(tmp_path: Path, name: str, content: bytes | None, error: type[OSError]) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error):
        FileSource(path).open()
