"""Frame sources behind ``gridwatch.core.interfaces.FrameSource``: RTSP cameras and local video files.

Both read through OpenCV's FFmpeg backend. Readers are blocking and owned by one thread (the camera
worker's reader thread): OpenCV captures must not be used from two threads at once.

Readers also offer ``grab()`` / ``retrieve()``: ``grab()`` demuxes and decodes the next frame (every
frame of an H.264 stream must be decoded), ``retrieve()`` converts it to a BGR array, which is only
worth doing for the frames that will be analysed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt

from gridwatch.core.config.cameras import FileCameraConfig, RtspCameraConfig
from gridwatch.core.interfaces import FrameSource
from gridwatch.core.redact import mask_url

log = logging.getLogger(__name__)

FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
# RTSP over TCP (no lost UDP packets, works through NAT) and a short probe: the default probe reads
# ~3 s of stream before the first frame; these settings open in 0.3-0.5 s.
DEFAULT_FFMPEG_OPTIONS = "rtsp_transport;tcp|analyzeduration;100000|probesize;32768"
# Frame rate assumed for a file whose container does not state one.
_FALLBACK_FILE_FPS = 25.0
_options_lock = threading.Lock()


def ensure_ffmpeg_capture_options() -> str:
    """Set OpenCV's FFmpeg capture options for this process unless an operator already set them.

    OpenCV reads the variable on every open, so setting it before the first open is enough.
    """
    with _options_lock:
        return os.environ.setdefault(FFMPEG_OPTIONS_ENV, DEFAULT_FFMPEG_OPTIONS)


@runtime_checkable
class GrabbingReader(Protocol):
    """A ``FrameReader`` that can advance without converting the frame to BGR."""

    def grab(self) -> bool:
        """Advance to the next frame; False at the end of the stream / on a disconnect."""
        ...

    def retrieve(self) -> npt.NDArray[np.uint8] | None:
        """The frame of the last successful ``grab()`` as BGR ``uint8`` (H, W, 3)."""
        ...

    def read(self) -> npt.NDArray[np.uint8] | None: ...

    def close(self) -> None: ...


class _CaptureReader:
    """A ``cv2.VideoCapture`` as a ``FrameReader``."""

    def __init__(self, capture: Any) -> None:
        self._capture = capture

    def grab(self) -> bool:
        return bool(self._capture.grab())

    def retrieve(self) -> npt.NDArray[np.uint8] | None:
        ok, image = self._capture.retrieve()
        return image if ok and image is not None else None

    def read(self) -> npt.NDArray[np.uint8] | None:
        return self.retrieve() if self.grab() else None

    def close(self) -> None:
        self._capture.release()


class RtspSource:
    """An RTSP camera read over TCP with OpenCV's FFmpeg backend.

    ``open()`` raises ``ConnectionError`` (with the masked URL) when the stream cannot be opened
    within ``open_timeout_s``; a read that stalls longer than ``read_timeout_s`` ends the stream.
    """

    finite = False  # the end of a live stream is a disconnect: reconnect

    def __init__(self, url: str, *, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0) -> None:
        self._url = url
        self._display_url = mask_url(url)
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self._nominal_fps: float | None = None

    @classmethod
    def from_config(cls, config: RtspCameraConfig) -> RtspSource:
        return cls(config.url, open_timeout_s=config.open_timeout_s, read_timeout_s=config.read_timeout_s)

    def __repr__(self) -> str:
        return f"RtspSource({self._display_url!r})"

    @property
    def display_url(self) -> str:
        return self._display_url

    @property
    def nominal_fps(self) -> float | None:
        """The frame rate the stream announced at the last open; None before."""
        return self._nominal_fps

    def open(self) -> GrabbingReader:
        ensure_ffmpeg_capture_options()
        # Timeouts only take effect when passed to the constructor; cap.set() afterwards is ignored.
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            round(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            round(self.read_timeout_s * 1000),
        ]
        capture = cv2.VideoCapture(self._url, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            raise ConnectionError(f"cannot open RTSP stream {self._display_url}")
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        self._nominal_fps = fps if 0.0 < fps <= 240.0 else None
        return _CaptureReader(capture)


class _PacedFileReader(_CaptureReader):
    """Plays a file in real time (one frame per 1/fps of wall-clock time), looping if asked."""

    # Behind schedule by more than this (a stalled process): restart the schedule instead of
    # delivering a burst of frames to catch up.
    _MAX_LAG_S = 1.0

    def __init__(self, source: FileSource, capture: Any, fps: float) -> None:
        super().__init__(capture)
        self._source = source
        self._period_s = 1.0 / fps
        self._next_due = time.monotonic()
        self._frames_since_open = 0

    def _wait_until_due(self) -> None:
        now = time.monotonic()
        if now - self._next_due > self._MAX_LAG_S:
            self._next_due = now
        elif self._next_due > now:
            # Pacing wait of at most one frame period; the reader thread owns this call.
            time.sleep(self._next_due - now)
        self._next_due += self._period_s

    def grab(self) -> bool:
        self._wait_until_due()
        if self._capture.grab():
            self._frames_since_open += 1
            return True
        if not self._source.loop or self._frames_since_open == 0:
            return False  # the end (or a file without a single decodable frame: do not spin)
        # Re-open rather than seek to 0: seeking is unreliable for some containers and codecs.
        self._capture.release()
        try:
            self._capture = self._source.open_capture()
        except OSError as error:
            log.warning("cannot reopen %s to loop it: %s", self._source.display_url, error)
            return False
        self._frames_since_open = 0
        if self._capture.grab():
            self._frames_since_open = 1
            return True
        return False


class FileSource:
    """A local video file played at its own frame rate, so that a demo looks like a live camera.

    With ``loop=True`` it starts again at the end and never ends; otherwise ``read()`` returns
    ``None`` at the end and the source is ``finite`` (the worker stops instead of reconnecting).
    """

    def __init__(self, path: Path, *, loop: bool = True) -> None:
        self.path = path
        self.loop = loop
        self._nominal_fps: float | None = None

    @classmethod
    def from_config(cls, config: FileCameraConfig, config_dir: Path) -> FileSource:
        path = config.path if config.path.is_absolute() else config_dir / config.path
        return cls(path, loop=config.loop)

    def __repr__(self) -> str:
        return f"FileSource({str(self.path)!r}, loop={self.loop})"

    @property
    def finite(self) -> bool:
        return not self.loop

    @property
    def display_url(self) -> str:
        return str(self.path)

    @property
    def nominal_fps(self) -> float | None:
        """The file's frame rate, known after the first open."""
        return self._nominal_fps

    def open_capture(self) -> Any:
        """An open ``cv2.VideoCapture`` of the file; ``FileNotFoundError`` / ``OSError`` if it cannot be."""
        if not self.path.is_file():
            raise FileNotFoundError(f"video file not found: {self.path}")
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise OSError(f"cannot decode video file {self.path}")
        return capture

    def open(self) -> GrabbingReader:
        capture = self.open_capture()
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        self._nominal_fps = fps if 0.0 < fps <= 240.0 else None
        return _PacedFileReader(self, capture, self._nominal_fps or _FALLBACK_FILE_FPS)


def source_for(camera: RtspCameraConfig | FileCameraConfig, config_dir: Path) -> FrameSource:
    """The source a camera entry describes; relative file paths are resolved against ``config_dir``."""
    if isinstance(camera, RtspCameraConfig):
        return RtspSource.from_config(camera)
    return FileSource.from_config(camera, config_dir)


def is_finite(source: FrameSource) -> bool:
    """Whether the end of ``source``'s stream is final (a non-looping file) rather than a disconnect."""
    return bool(getattr(source, "finite", False))
