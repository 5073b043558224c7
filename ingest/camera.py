"""A camera worker: reads one stream, reconnects forever, hands sampled frames to recognition.

Two halves:

- a reader thread (one per camera; OpenCV's reads block) that reads every frame as fast as the
  stream delivers it — an RTSP stream must be drained or the server's buffer fills and the picture
  lags — but converts to BGR only the frames due at the camera's analysis rate (``fps``), and keeps
  only the latest such frame in a one-slot mailbox (latest wins; an overwritten frame counts as
  dropped). With motion gating (``motion.enabled``), a due frame in which nothing moved is not handed
  on, unless the camera's last analysed frame is ``motion.max_skip_s`` old (``ingest.motion``).
  It reconnects with capped exponential backoff whenever the stream fails or ends.
- an asyncio task that takes the latest frame and awaits ``on_frame`` with it. A slow ``on_frame``
  makes frames drop, never queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

import numpy as np
import numpy.typing as npt

from gridwatch.core.config.cameras import FileCameraConfig, RtspCameraConfig
from gridwatch.core.interfaces import Frame, FrameReader, FrameSource, SourceState, SourceStatus
from gridwatch.core.metrics import FRAMES_ANALYSED, FRAMES_DROPPED, FRAMES_IN, FRAMES_WITHOUT_MOTION
from gridwatch.core.redact import redact_text
from ingest.backoff import Backoff
from ingest.motion import MotionGate
from ingest.sources import GrabbingReader, is_finite

log = logging.getLogger(__name__)

FrameHandler = Callable[[Frame], Awaitable[None]]


class RateMeter:
    """Events per second over a sliding window; thread-safe."""

    def __init__(self, window_s: float = 5.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._events: collections.deque[float] = collections.deque()
        self._since = clock()
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._events.clear()
            self._since = self._clock()

    def tick(self) -> None:
        now = self._clock()
        with self._lock:
            self._events.append(now)
            self._prune(now)

    def rate(self) -> float:
        now = self._clock()
        with self._lock:
            self._prune(now)
            span = min(self.window_s, now - self._since)
            return len(self._events) / span if span > 0 else 0.0

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        while self._events and self._events[0] < horizon:
            self._events.popleft()


class _StopRequested(Exception):
    """The reader thread was asked to stop while reading."""


class ReaderStillRunningError(RuntimeError):
    """``start()`` of a worker whose previous reader thread is still blocked in a read."""


# Reader threads by camera id, across workers. A reader stuck in a blocking read outlives its worker's
# bounded ``stop()``; a reader started later for the same camera id waits for it to end before it opens
# the stream, so one camera never has two readers (e.g. a camera restarted by a config reload).
_readers_lock = threading.Lock()
_readers: dict[str, set[threading.Thread]] = {}


class CameraWorker:
    """Runs one camera: ``await start()`` … ``await stop()``, or ``async with CameraWorker(...)``.

    ``status`` is a snapshot (a copy) of the camera's health, safe to read at any time.
    """

    def __init__(
        self,
        config: RtspCameraConfig | FileCameraConfig,
        source: FrameSource,
        on_frame: FrameHandler,
        *,
        backoff: Backoff | None = None,
        stop_timeout_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock``: seconds on a monotonic scale; paces sampling and motion gating (tests inject one)."""
        self.config = config
        self._clock = clock
        self._motion = MotionGate(config.motion) if config.motion.enabled else None
        self._frames_without_motion = FRAMES_WITHOUT_MOTION.labels(camera=config.id)
        self._source = source
        # How long stop() waits for the reader thread (default: the stream's open + read timeouts).
        self._stop_timeout_s = stop_timeout_s
        self._on_frame = on_frame
        self._period_s = 1.0 / config.fps
        self._backoff = backoff if backoff is not None else Backoff.from_config(config.backoff)
        self._lock = threading.Lock()
        self._status = SourceStatus(source_id=config.id, kind=config.kind)
        self._frames_in = FRAMES_IN.labels(camera=config.id)
        self._frames_analysed = FRAMES_ANALYSED.labels(camera=config.id)
        self._frames_dropped = FRAMES_DROPPED.labels(camera=config.id)
        self._fps_in = RateMeter()
        self._fps_out = RateMeter()
        self._latest: Frame | None = None
        self._seq = 0
        self._connections = 0
        self._stop_requested = threading.Event()
        self._thread: threading.Thread | None = None
        self._stuck_reader: threading.Thread | None = None  # the reader stop() last waited for
        self._deliver_task: asyncio.Task[None] | None = None
        self._frame_ready: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._deliver_task is not None

    async def start(self) -> None:
        """Start reading; returns at once (the stream opens in the background). Idempotent."""
        if self.running:
            return
        if self._stuck_reader is not None and self._stuck_reader.is_alive():
            # Its stop flag would be cleared below and the stuck read would carry on as a second reader.
            raise ReaderStillRunningError(
                f"camera {self.config.id}: the previous reader thread is still blocked in a read; "
                "start a new worker for this camera (it waits for that reader) or try again later"
            )
        self._stuck_reader = None
        self._loop = asyncio.get_running_loop()
        self._frame_ready = asyncio.Event()
        self._stop_requested.clear()
        with self._lock:
            self._latest = None
            self._status.state = SourceState.STARTING
        self._fps_in.reset()
        self._fps_out.reset()
        log.info("camera %s starting (%s)", self.config.id, self._source.display_url)
        with _readers_lock:
            previous = [t for t in _readers.get(self.config.id, ()) if t.is_alive()]
            self._thread = threading.Thread(
                target=self._run_reader, args=(previous,), name=f"camera-{self.config.id}", daemon=True
            )
            _readers.setdefault(self.config.id, set()).add(self._thread)
            self._thread.start()
        self._deliver_task = asyncio.create_task(self._deliver(), name=f"camera-{self.config.id}-deliver")

    async def stop(self) -> None:
        """Stop delivering, stop the reader thread (it closes the stream) and wait for it. Idempotent."""
        task, self._deliver_task = self._deliver_task, None
        thread, self._thread = self._thread, None
        if task is None and thread is None:
            return
        self._stop_requested.set()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if thread is not None:
            # Kept (before the wait, which may be cancelled) so that start() can tell if it still runs.
            self._stuck_reader = thread
            # A read blocked in FFmpeg returns within the read timeout at worst.
            await asyncio.to_thread(thread.join, self._join_timeout_s())
            if thread.is_alive():
                log.warning(
                    "camera %s: reader thread still blocked after %.1f s; it exits when its read returns, "
                    "and a new reader of this camera waits for it",
                    self.config.id,
                    self._join_timeout_s(),
                )
        with self._lock:
            self._latest = None
            self._status.state = SourceState.STOPPED
        log.info("camera %s stopped", self.config.id)

    @property
    def reader_alive(self) -> bool:
        """Whether a reader thread of this worker still runs (after ``stop()``: one stuck in a read)."""
        thread = self._thread or self._stuck_reader
        return thread is not None and thread.is_alive()

    def _join_timeout_s(self) -> float:
        if self._stop_timeout_s is not None:
            return self._stop_timeout_s
        if isinstance(self.config, RtspCameraConfig):
            return self.config.open_timeout_s + self.config.read_timeout_s + 2.0
        return 5.0

    async def __aenter__(self) -> CameraWorker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def status(self) -> SourceStatus:
        with self._lock:
            snapshot = dataclasses.replace(self._status, extra=dict(self._status.extra))
        snapshot.fps_in = round(self._fps_in.rate(), 2)
        snapshot.fps_out = round(self._fps_out.rate(), 2)
        return snapshot

    # --- asyncio side ----------------------------------------------------------------------------

    async def _deliver(self) -> None:
        assert self._frame_ready is not None
        while True:
            await self._frame_ready.wait()
            self._frame_ready.clear()
            with self._lock:
                frame, self._latest = self._latest, None
            if frame is None:
                continue
            try:
                await self._on_frame(frame)
            except Exception:
                log.exception("camera %s: frame handler failed on frame %d", self.config.id, frame.seq)
            with self._lock:
                self._status.frames_out += 1
            self._frames_analysed.inc()
            self._fps_out.tick()

    def _wake_deliverer(self) -> None:
        loop, ready = self._loop, self._frame_ready
        if loop is None or ready is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under a thread that is still exiting
            loop.call_soon_threadsafe(ready.set)

    # --- reader thread ---------------------------------------------------------------------------

    def _run_reader(self, previous: list[threading.Thread]) -> None:
        """The reader thread: wait for older readers of this camera id to end, then read."""
        try:
            if previous and not self._wait_for_previous_readers(previous):
                return
            self._read_forever()
        finally:
            with _readers_lock:
                mine = _readers.get(self.config.id)
                if mine is not None:
                    mine.discard(threading.current_thread())
                    if not mine:
                        del _readers[self.config.id]

    def _wait_for_previous_readers(self, previous: list[threading.Thread]) -> bool:
        """Block until every older reader of this camera has ended; False when a stop was requested."""
        log.warning("camera %s: waiting for the previous reader of this camera to end", self.config.id)
        with self._lock:
            self._status.extra["waiting_for_previous_reader"] = True
        for thread in previous:
            while thread.is_alive():
                thread.join(0.1)
                if self._stop_requested.is_set():
                    return False
        with self._lock:
            self._status.extra.pop("waiting_for_previous_reader", None)
        log.info("camera %s: previous reader ended", self.config.id)
        return True

    def _read_forever(self) -> None:
        try:
            while not self._stop_requested.is_set():
                try:
                    reader = self._source.open()
                except Exception as error:  # OSError by contract; cv2.error and others must not kill us
                    self._went_offline(f"cannot open: {error}")
                    if not self._wait_backoff():
                        return
                    continue
                try:
                    ended = self._pump(reader)
                except _StopRequested:
                    return
                except Exception as error:
                    self._went_offline(f"read failed: {error}")
                else:
                    if ended and is_finite(self._source):
                        self._finished()
                        return
                    self._went_offline("stream ended or stalled")
                finally:
                    reader.close()
                if not self._wait_backoff():
                    return
        except Exception:
            # Unreachable by design (every failure above is handled); never die silently.
            log.exception("camera %s: reader thread crashed", self.config.id)
            with self._lock:
                self._status.state = SourceState.OFFLINE
                self._status.last_error = "reader thread crashed"

    def _pump(self, reader: FrameReader) -> bool:
        """Read until the stream fails or ends (True) or a stop is requested (raises)."""
        grabbing = isinstance(reader, GrabbingReader)
        next_due = self._clock()
        if self._motion is not None:
            self._motion.reset()
        got_frame = False
        while True:
            if self._stop_requested.is_set():
                raise _StopRequested
            image: npt.NDArray[np.uint8] | None = None
            if grabbing:
                assert isinstance(reader, GrabbingReader)
                ok = reader.grab()
            else:
                image = reader.read()
                ok = image is not None
            if not ok:
                return True
            now = self._clock()
            self._fps_in.tick()
            self._frames_in.inc()
            with self._lock:
                self._status.frames_in += 1
                self._seq += 1
                seq = self._seq
            if not got_frame:
                got_frame = True
                self._went_online()
            if now < next_due:
                continue  # not due for analysis: read (decoded) but never converted
            next_due = next_due + self._period_s if next_due + self._period_s > now else now + self._period_s
            if grabbing:
                assert isinstance(reader, GrabbingReader)
                image = reader.retrieve()
            if image is None:
                continue
            if self._motion is not None and not self._motion.due(image, now):
                # Nothing moved since the last frame and the last analysis is recent: not worth a detection.
                self._frames_without_motion.inc()
                with self._lock:
                    skipped = self._status.extra.get("frames_without_motion", 0)
                    self._status.extra["frames_without_motion"] = (skipped if isinstance(skipped, int) else 0) + 1
                continue
            captured_at = dt.datetime.now(dt.UTC)
            frame = Frame(source_id=self.config.id, seq=seq, captured_at=captured_at, image=image)
            with self._lock:
                if self._latest is not None:
                    self._status.frames_dropped += 1
                    self._frames_dropped.inc()
                self._latest = frame
                self._status.last_frame_at = captured_at
            self._wake_deliverer()

    def _went_online(self) -> None:
        self._backoff.reset()
        with self._lock:
            if self._connections > 0:
                self._status.reconnects += 1
            self._connections += 1
            self._status.state = SourceState.ONLINE
            self._status.extra.pop("retry_in_s", None)
            self._status.extra["failed_attempts"] = 0
            reconnects = self._status.reconnects
        log.info("camera %s online (%s, reconnects=%d)", self.config.id, self._source.display_url, reconnects)

    def _went_offline(self, reason: str) -> None:
        reason = redact_text(reason)
        with self._lock:
            was = self._status.state
            self._status.state = SourceState.OFFLINE
            self._status.last_error = reason
        if was != SourceState.OFFLINE:
            log.warning("camera %s offline (%s): %s", self.config.id, self._source.display_url, reason)
        else:
            log.debug("camera %s still offline (%s): %s", self.config.id, self._source.display_url, reason)

    def _finished(self) -> None:
        with self._lock:
            self._status.state = SourceState.STOPPED
            self._status.extra["ended"] = True
        log.info("camera %s: end of %s (no loop)", self.config.id, self._source.display_url)

    def _wait_backoff(self) -> bool:
        """Sleep the next backoff delay; False when a stop was requested meanwhile."""
        ceiling_s = self._backoff.ceiling_s
        delay = self._backoff.next_delay()
        with self._lock:
            self._status.extra["retry_in_s"] = round(delay, 3)
            self._status.extra["retry_ceiling_s"] = round(ceiling_s, 3)
            self._status.extra["failed_attempts"] = self._backoff.attempts
        return not self._stop_requested.wait(delay)
