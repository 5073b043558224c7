"""The recognition stage: frames and gate events in; matched sightings out (a ``SightingSink``) and
stranger attempts at gates out (a ``StrangerAttemptSink``).

It owns the model pack and the registries: ``start()`` loads both (off the event loop) and erases
expired entries and evidence, then keeps erasing them every ``purge_interval_s``. Unmatched faces end
here, in memory: at a gate a `stranger_at_gate` rule watches, an unknown face is held as a look-alike cluster
(``recognition.strangers``, forgotten after the rules' window, checked every ``forget_interval_s``)
and only its random label leaves, on a ``StrangerAttempt``.

Images are recognised one at a time, gate snapshots before waiting camera frames
(``recognition.priority``): someone stands at a gate reader. Each camera has its own face tracks, ended
when the stage stops or the camera's handler is replaced (a reload).

One gate event makes at most one attempt: an unknown face (verdict ``unmatched``), or the gate's own
refusal (``denied``, with the face's label when there was an unknown face, without one when there was
no usable face). A face one of the known registries knows makes none, whatever the gate decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable

import cv2
import numpy as np
import numpy.typing as npt

from gridwatch.core.config.cameras import FileCameraConfig, RtspCameraConfig
from gridwatch.core.events import StrangerAttempt, event_id_for
from gridwatch.core.interfaces import Frame, GateEvent, SightingSink, StrangerAttemptSink
from gridwatch.core.metrics import STRANGER_ATTEMPTS
from recognition.backends import Analyzer
from recognition.evidence import EvidenceStore
from recognition.memory import LARGE_DECODE_PIXELS, release_free_memory
from recognition.priority import Priority, PriorityTurns
from recognition.recognizer import CameraAnalysis, Recognition, Recognizer, SourceInfo, gate_event_key
from recognition.registries import Registries
from recognition.retention import run_retention

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600.0
# Unknown faces are held for the stranger rules' window; this is how late past it they may be forgotten.
FORGET_INTERVAL_S = 5.0

FrameHandler = Callable[[Frame], Awaitable[None]]


def decode_jpeg(data: bytes) -> npt.NDArray[np.uint8] | None:
    """A BGR image, or None when the bytes are not a decodable image (never raises).

    The one decode of a gate snapshot: ingest checks only its JPEG headers (size, pixel caps, image
    data for that many pixels; ``ingest.gates.images``), so what reaches this decode is bounded.
    """
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
        attempts: StrangerAttemptSink | None = None,
        evidence: EvidenceStore | None = None,
        purge_interval_s: float = PURGE_INTERVAL_S,
        forget_interval_s: float = FORGET_INTERVAL_S,
    ) -> None:
        """``attempts``: where stranger attempts go; without it, gates make none (no stranger rule wired).

        ``evidence``: the evidence store whose expired objects the retention job purges with the entries.
        """
        self._recognizer = recognizer
        self._analyzer = analyzer
        self._registries = registries
        self._out = out
        self._attempts = attempts
        self._evidence = evidence
        self._purge_interval_s = purge_interval_s
        self._forget_interval_s = forget_interval_s
        self._purge_task: asyncio.Task[None] | None = None
        self._forget_task: asyncio.Task[None] | None = None
        self._turns = PriorityTurns()
        self._cameras: dict[str, CameraAnalysis] = {}

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
        self._forget_task = asyncio.create_task(self._forget_loop(), name="gridwatch.stranger-forget")

    async def stop(self) -> None:
        tasks = [self._purge_task, self._forget_task]
        self._purge_task = self._forget_task = None
        for task in tasks:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        cameras, self._cameras = list(self._cameras.values()), {}
        for analysis in cameras:
            if analysis.tracks is not None:
                analysis.tracks.end_all()

    def frame_handler(
        self, source: SourceInfo, camera: RtspCameraConfig | FileCameraConfig | None = None
    ) -> FrameHandler:
        """The handler a camera worker calls with each frame it samples.

        ``camera``: its config, for its region of interest, detector size and face tracks (a new handler of
        the same camera, after a reload, starts new tracks and ends the old ones).
        """
        analysis = None
        if camera is not None:
            analysis = CameraAnalysis.of(camera)
            previous = self._cameras.pop(source.source_id, None)
            if previous is not None and previous.tracks is not None:
                previous.tracks.end_all()
            self._cameras[source.source_id] = analysis

        async def on_frame(frame: Frame) -> None:
            async with self._turns.turn(Priority.CAMERA):
                recognition = await self._recognizer.recognize_async(
                    frame.image, source, captured_at=frame.captured_at, camera=analysis
                )
            for sighting in recognition.sightings:
                await self._out.put(sighting)

        return on_frame

    async def on_gate_event(self, event: GateEvent, source: SourceInfo) -> None:
        """A gate's face snapshot, decoded in memory and recognised like a frame; a refusal, counted."""
        recognition = Recognition()
        if event.face_image is not None:
            image = await asyncio.to_thread(decode_jpeg, event.face_image)
            if image is None:
                log.warning("gate %s: snapshot of event %s is not a decodable image", event.gate_id, event.serial)
            else:
                async with self._turns.turn(Priority.GATE):
                    recognition = await self._recognizer.recognize_async(
                        image,
                        source,
                        captured_at=event.device_time.astimezone(dt.UTC),
                        direction=event.direction,
                        event_key=_event_key(event),
                        face_rect=event.face_rect,
                    )
                large = image.shape[0] * image.shape[1] > LARGE_DECODE_PIXELS
                del image
                if large:
                    await asyncio.to_thread(release_free_memory)
        for sighting in recognition.sightings:
            await self._out.put(sighting)
        attempt = self._attempt_of(event, source, recognition)
        if attempt is not None and self._attempts is not None:
            STRANGER_ATTEMPTS.labels(gate=attempt.source, verdict=attempt.verdict).inc()
            # The event id only: the label would link log lines to one unknown person.
            log.debug("gate %s: stranger attempt (%s), event %s", attempt.source, attempt.verdict, event.serial)
            await self._attempts.put(attempt)

    def _attempt_of(self, event: GateEvent, source: SourceInfo, recognition: Recognition) -> StrangerAttempt | None:
        if self._recognizer.strangers.watching(event.gate_id) is None or recognition.known:
            return None
        denied = event.verdict == "denied"
        if recognition.stranger is None and not denied:
            return None  # no usable face and no refusal: nobody to count
        key = _event_key(event)
        return StrangerAttempt(
            # Derived from the event: a resent event is the same attempt (and makes no second alert).
            attempt_id=uuid.uuid4().hex if key is None else event_id_for(key, "attempt"),
            source=source.source_id,
            source_kind=source.kind,
            captured_at=event.device_time.astimezone(dt.UTC),
            received_at=event.received_at,
            cluster=recognition.stranger,
            verdict="denied" if denied else "unmatched",
            gate_event_id=event.event_id,
            grid=source.grid,
        )

    async def _purge_once(self) -> None:
        await asyncio.to_thread(run_retention, self._registries, self._evidence)  # erases, then audits a report

    async def _forget_loop(self) -> None:
        while True:
            await asyncio.sleep(self._forget_interval_s)
            # Without a new face at a gate nothing else would forget its clusters.
            self._recognizer.strangers.purge()

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(self._purge_interval_s)
            try:
                await self._purge_once()
            except Exception:
                # Retention must go on: one failed pass (a locked database, a full disk) is retried.
                log.exception("retention: purge failed; retrying in %.0f s", self._purge_interval_s)


def _event_key(event: GateEvent) -> str | None:
    return gate_event_key(event.gate_id, event.serial, event.device_time)
