"""The recognition stage: frames and gate snapshots in, matched sightings out (a ``SightingSink``).

It owns the model pack and the registries: ``start()`` loads both (off the event loop) and erases
expired entries, then keeps erasing them every ``purge_interval_s``. Unmatched faces end here, in
memory; only sightings leave through the output port.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import cv2
import numpy as np
import numpy.typing as npt

from gridwatch.core.interfaces import Frame, GateEvent, SightingSink
from recognition.backends import Analyzer
from recognition.recognizer import Recognizer, SourceInfo
from recognition.registries import Registries

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600.0

FrameHandler = Callable[[Frame], Awaitable[None]]


def decode_jpeg(data: bytes) -> npt.NDArray[np.uint8] | None:
    """A BGR image, or None when the bytes are not a decodable image (never raises)."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.asarray(image, dtype=np.uint8)


class RecognitionStage:
    def __init__(
        self,
        recognizer: Recognizer,
        analyzer: Analyzer,
        registries: Registries,
        out: SightingSink,
        *,
        purge_interval_s: float = PURGE_INTERVAL_S,
    ) -> None:
        self._recognizer = recognizer
        self._analyzer = analyzer
        self._registries = registries
        self._out = out
        self._purge_interval_s = purge_interval_s
        self._purge_task: asyncio.Task[None] | None = None

    @property
    def recognizer(self) -> Recognizer:
        return self._recognizer

    async def start(self) -> None:
        if self._purge_task is not None:
            return
        await asyncio.to_thread(self._analyzer.load)
        await asyncio.to_thread(self._registries.load)
        await self._purge_once()
        log.info(
            "model pack %s (%s, %s)", self._analyzer.model_id, self._analyzer.pack.origin, self._analyzer.pack.directory
        )
        self._purge_task = asyncio.create_task(self._purge_loop(), name="gridwatch.retention-purge")

    async def stop(self) -> None:
        task, self._purge_task = self._purge_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def frame_handler(self, source: SourceInfo) -> FrameHandler:
        """The handler a camera worker calls with each frame it samples."""

        async def on_frame(frame: Frame) -> None:
            sightings = await self._recognizer.recognize_async(frame.image, source, captured_at=frame.captured_at)
            for sighting in sightings:
                await self._out.put(sighting)

        return on_frame

    async def on_gate_event(self, event: GateEvent, source: SourceInfo) -> None:
        """A gate's face snapshot, decoded in memory and recognised like a frame."""
        if event.face_image is None:
            return
        image = await asyncio.to_thread(decode_jpeg, event.face_image)
        if image is None:
            log.warning("gate %s: snapshot of event %s is not a decodable image", event.gate_id, event.serial)
            return
        sightings = await self._recognizer.recognize_async(
            image, source, captured_at=event.device_time.astimezone(dt.UTC), direction=event.direction
        )
        for sighting in sightings:
            await self._out.put(sighting)

    async def _purge_once(self) -> None:
        purged = await asyncio.to_thread(self._registries.purge_expired)
        if purged:
            log.info("retention: erased %d expired registry entries", len(purged))

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(self._purge_interval_s)
            try:
                await self._purge_once()
            except Exception:
                # Retention must go on: one failed pass (a locked database, a full disk) is retried.
                log.exception("retention: purge failed; retrying in %.0f s", self._purge_interval_s)
