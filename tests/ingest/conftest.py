"""Fixtures of the ingest tests: a short real clip cut from the shared test video."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from tests.support.paths import CLIP

SHORT_CLIP_FRAMES = 12
SHORT_CLIP_FPS = 20.0


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12 frames of the real test clip, re-encoded at 20 fps (a 0.6 s file that loops quickly)."""
    if not CLIP.is_file():
        pytest.fail(f"test clip not found at {CLIP}; set GRIDWATCH_TESTDATA")
    path = tmp_path_factory.mktemp("clips") / "short.mp4"
    capture = cv2.VideoCapture(str(CLIP), cv2.CAP_FFMPEG)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), SHORT_CLIP_FPS, (640, 360))
    try:
        for _ in range(SHORT_CLIP_FRAMES):
            ok, image = capture.read()
            assert ok, "cannot read the test clip"
            writer.write(image)
    finally:
        writer.release()
        capture.release()
    return path
