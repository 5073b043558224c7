"""Frame or snapshot → matched sightings, and the look-alike label of an unknown face at a watched gate.

Order of work per image: detect (at the camera's ``detector_size``) → drop faces outside the camera's
``roi`` → quality gate → track (cameras: ``recognition.tracks``) → embed (only accepted faces, only when a
registry covers the source or a stranger rule watches it, and on a camera only a track's best view so
far, never a matched track's) → search. A track makes one sighting per registry, with its ``track_id``.
An embedding that matched nothing is dropped with the image; nothing about that face is logged, stored
or sent. A match in a registry that keeps evidence stores its face crop and frame, sealed (``recognition.evidence``).

A gate snapshot is about the person at the reader: when it shows several faces, the one inside the
terminal's ``FaceRect`` is used, else the dominant one (``recognition.dominant``: the largest by a
margin); when none is clearly the subject the snapshot is refused as ambiguous (nothing is embedded or
searched, the reason is logged in sizes only). The choice is counted (``gridwatch_gate_face_choice_total``)
and returned (``Recognition.face_choice``). The other faces are never embedded: a passer-by behind the
person leaves nothing, not even a search.

At a gate watched by a `stranger_at_gate` rule, the known registries of its rules are searched too,
even where their ``sources`` do not cover the gate: the answer only tells a known face from a stranger
and never becomes a sighting. When the largest accepted face is known to none of them, it joins a
look-alike cluster in memory (``recognition.strangers``) and the result carries that cluster's label.
Look-alikes join at the highest threshold in use of those registries (a `threshold: auto` registry's
is solved for its current size, ``Registries.configs``), not at the configured stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import uuid
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gridwatch.core.config.cameras import FileCameraConfig, RtspCameraConfig
from gridwatch.core.events import Quality, Sighting, SourceKind, event_id_for
from gridwatch.core.faces import Faces
from gridwatch.core.interfaces import FaceAnalyzer, FaceRect
from gridwatch.core.metrics import (
    FACES_DETECTED,
    FACES_EMBEDDED,
    FACES_GATED,
    FACES_OUTSIDE_ROI,
    GATE_FACE_CHOICE,
    INFERENCE_SECONDS,
    SIGHTINGS,
    TRACKER_FAILURES,
)
from recognition.dominant import dominant_face
from recognition.evidence import EvidenceCapture
from recognition.quality import QualityGate, QualityMeasures, quality_score
from recognition.registries import Decision, Registries
from recognition.roi import inside_roi
from recognition.strangers import StrangerClusters, StrangerWatch
from recognition.tracks import CameraTracks, FaceTrack

log = logging.getLogger(__name__)

_DETECT_SECONDS = INFERENCE_SECONDS.labels(step="detect")
_EMBED_SECONDS = INFERENCE_SECONDS.labels(step="embed")
_SEARCH_SECONDS = INFERENCE_SECONDS.labels(step="search")


@dataclass(slots=True)
class RecognitionStats:
    """Totals of this recognizer for ``/status`` and the demo summary; the metrics
    (``gridwatch.core.metrics``) count the same per source and registry."""

    images: int = 0
    faces: int = 0
    faces_rejected: int = 0
    faces_searched: int = 0
    sightings: int = 0
    unknown_at_gates: int = 0  # faces a stranger rule's gate saw that none of its known registries knew


@dataclass(frozen=True, slots=True)
class Recognition:
    """What recognition made of one image.

    ``sightings``: the matches in the registries covering the source. At a gate a stranger rule
    watches, about the largest accepted face: ``known`` when one of the rule's known registries knows
    it, else ``stranger`` is the label of its look-alike cluster. Both stay unset elsewhere, and when
    no face passed the quality gate.
    """

    sightings: list[Sighting] = field(default_factory=list)
    known: bool = False
    stranger: str | None = None
    face_choice: GateFaceChoice | None = None  # gates: which face of the snapshot was used, and why


@dataclass(frozen=True, slots=True)
class GateFaceChoice:
    """How the face at a gate's reader was chosen: ``choice`` is single, face_rect, dominant or ambiguous
    (refused); ``reason`` says it in words, with face sizes only."""

    choice: str
    reason: str
    index: int | None  # the face used, among the detected faces (None: refused)

    @property
    def refused(self) -> bool:
        return self.index is None


@dataclass(frozen=True, slots=True)
class SourceInfo:
    source_id: str
    kind: SourceKind
    grid: str | None = None


@dataclass(slots=True)
class CameraAnalysis:
    """What a camera's config changes in recognising its frames: its region of interest (points in 0..1),
    its detector input side, and its face tracks (None: every accepted face is embedded)."""

    roi: list[tuple[float, float]] | None = None
    detector_size: int | None = None
    tracks: CameraTracks | None = None

    @classmethod
    def of(cls, camera: RtspCameraConfig | FileCameraConfig) -> CameraAnalysis:
        return cls(roi=camera.roi, detector_size=camera.detector_size, tracks=CameraTracks(camera.id, camera.tracking))


class Recognizer:
    def __init__(
        self,
        analyzer: FaceAnalyzer,
        gate: QualityGate,
        registries: Registries,
        strangers: StrangerClusters | None = None,
        *,
        evidence: EvidenceCapture | None = None,
    ) -> None:
        """``strangers``: the gates stranger rules watch and their clusters; none watched without it.

        ``evidence``: where the face crop and frame of a match go for registries with ``evidence.keep``
        (wired when the data key is set, which the service requires for such registries).
        """
        self._analyzer = analyzer
        self._gate = gate
        self._registries = registries
        self._evidence = evidence
        self.strangers = strangers if strangers is not None else StrangerClusters()
        self.stats = RecognitionStats()

    def recognize(
        self,
        image: npt.NDArray[np.uint8],
        source: SourceInfo,
        *,
        captured_at: dt.datetime,
        direction: str | None = None,
        event_key: str | None = None,
        camera: CameraAnalysis | None = None,
        face_rect: FaceRect | None = None,
    ) -> Recognition:
        """Blocking: run it in a worker thread (``recognize_async``).

        ``event_key``: the device's own identity of the event (a gate event's, see ``gate_event_key``);
        its sightings then get ids derived from it, so that the device resending the event makes the
        same sightings (and no second alert). Without it (camera frames) the ids are random.

        ``camera``: a camera's region of interest, detector size and face tracks. With tracks, a face is
        embedded only when it is the best view of its track so far, and a track makes one sighting per
        registry (with its ``track_id``).

        ``face_rect``: a gate terminal's ``FaceRect`` (where it saw the face in the snapshot).
        """
        self.stats.images += 1
        with _DETECT_SECONDS.time():
            if camera is not None and camera.detector_size is not None:
                faces = self._analyzer.detect(image, input_size=camera.detector_size)
            else:
                faces = self._analyzer.detect(image)
        self.stats.faces += len(faces)
        FACES_DETECTED.labels(source=source.source_id).inc(len(faces))
        # Stranger rules count attempts at gates only: a camera frame is never a stranger's attempt.
        watch = self.strangers.watching(source.source_id) if source.kind is SourceKind.GATE else None
        if watch is None and not self._registries.covers(source.source_id):
            return Recognition()
        if camera is not None and camera.roi is not None and len(faces):
            inside = inside_roi(camera.roi, faces.boxes, image.shape[1], image.shape[0])
            FACES_OUTSIDE_ROI.labels(camera=source.source_id).inc(int(np.count_nonzero(~inside)))
            faces = faces.select(inside)
        choice = None
        if source.kind is SourceKind.GATE and len(faces):
            choice = gate_face_choice(faces, image.shape[1], image.shape[0], face_rect)
            GATE_FACE_CHOICE.labels(gate=source.source_id, choice=choice.choice).inc()
            if choice.index is None:
                # Sizes and counts only: nothing about the faces themselves.
                log.info("gate %s: snapshot refused: %s", source.source_id, choice.reason)
                return Recognition(face_choice=choice)
            faces = faces.select(np.asarray([choice.index], dtype=np.intp))
        verdict = self._gate.check(faces, image)
        tracks = self._tracks_of(camera, faces, verdict.measures, captured_at)
        scores = quality_score(verdict.measures)
        rejected = len(faces) - int(np.count_nonzero(verdict.accepted))
        self.stats.faces_rejected += rejected
        FACES_GATED.labels(source=source.source_id).inc(rejected)
        chosen = [
            i
            for i in range(len(faces))
            if verdict.accepted[i] and _worth_embedding(camera, tracks[i], float(scores[i]))
        ]
        if not chosen:
            return Recognition(face_choice=choice)
        index = np.asarray(chosen, dtype=np.intp)
        with _EMBED_SECONDS.time():
            embedded = self._analyzer.embed(image, faces.select(index))
        assert embedded.embeddings is not None
        chosen_tracks = [tracks[i] for i in chosen]
        for i, track in zip(chosen, chosen_tracks, strict=True):
            if track is not None:
                CameraTracks.embedded(track, float(scores[i]))
        face_px = verdict.face_px[index]
        blur = verdict.blur[index]
        yaw = verdict.yaw[index]
        self.stats.faces_searched += len(embedded)
        FACES_EMBEDDED.labels(source=source.source_id).inc(len(embedded))
        known_registries = watch.known_registries if watch is not None else frozenset[str]()
        with _SEARCH_SECONDS.time():
            decisions = self._registries.decide(embedded.embeddings, source.source_id, also=known_registries)
        received_at = dt.datetime.now(dt.UTC)
        sightings = []
        for i, row in enumerate(decisions):
            track = chosen_tracks[i]
            for match in (d.match for d in row if d.covers_source and d.match is not None):
                if track is not None:
                    if match.registry in track.matched:
                        continue  # one sighting per track and registry
                    track.matched.add(match.registry)
                registry = self._registries.configs[match.registry]
                sighting_id = (
                    uuid.uuid4().hex if event_key is None else event_id_for(event_key, match.registry, match.person_id)
                )
                evidence_ref = None
                if self._evidence is not None and registry.evidence.keep:
                    evidence_ref = self._evidence.capture(
                        image,
                        embedded.boxes[i],
                        registry=match.registry,
                        person_id=match.person_id,
                        sighting_id=sighting_id,
                        retention_days=registry.evidence.retention_days,
                        now=received_at,
                    )
                sightings.append(
                    Sighting(
                        sighting_id=sighting_id,
                        source=source.source_id,
                        source_kind=source.kind,
                        captured_at=captured_at,
                        received_at=received_at,
                        person_id=match.person_id,
                        registry=match.registry,
                        similarity=round(match.similarity, 4),
                        threshold=registry.threshold,
                        model=self._analyzer.model_id,
                        quality=Quality(
                            det_score=float(embedded.scores[i]),
                            face_px=float(face_px[i]),
                            blur=round(float(blur[i]), 1),
                            yaw=round(float(yaw[i]), 1),
                        ),
                        track_id=None if track is None else track.track_id,
                        direction=direction,  # type: ignore[arg-type]
                        evidence_ref=evidence_ref,
                        grid=source.grid,
                    )
                )
        self.stats.sightings += len(sightings)
        for sighting in sightings:
            SIGHTINGS.labels(registry=sighting.registry, source_kind=source.kind.value).inc()
        if watch is None:
            return Recognition(sightings, face_choice=choice)
        # At a gate only the face at the reader was embedded (``gate_face_choice``).
        subject = 0
        if _known(decisions[subject], known_registries):
            return Recognition(sightings, known=True, face_choice=choice)
        self.stats.unknown_at_gates += 1
        label = self.strangers.observe(
            source.source_id, embedded.embeddings[subject], threshold=self.stranger_threshold(watch)
        )
        return Recognition(sightings, stranger=label, face_choice=choice)

    def stranger_threshold(self, watch: StrangerWatch) -> float:
        """The similarity at which look-alike strangers join: the highest threshold in use of the watch's
        known registries (a `threshold: auto` one solved for its current size); the watch's configured
        figure for a registry that is not running."""
        configs = self._registries.configs
        return max(
            (configs[name].threshold for name in watch.known_registries if name in configs),
            default=watch.threshold,
        )

    @staticmethod
    def _tracks_of(
        camera: CameraAnalysis | None, faces: Faces, measures: QualityMeasures, captured_at: dt.datetime
    ) -> list[FaceTrack | None]:
        """The track of each face; all None without tracks, or when the tracker failed (its faces are then
        recognised one by one, as without tracks, and the camera's tracks start afresh)."""
        if camera is None or camera.tracks is None:
            return [None] * len(faces)
        try:
            return camera.tracks.update(faces.boxes, measures.det_score, captured_at.timestamp())
        except Exception:
            TRACKER_FAILURES.labels(camera=camera.tracks.source_id).inc()
            log.exception("camera %s: tracker failed; its tracks start afresh", camera.tracks.source_id)
            with contextlib.suppress(Exception):
                camera.tracks.end_all()
            return [None] * len(faces)

    async def recognize_async(
        self,
        image: npt.NDArray[np.uint8],
        source: SourceInfo,
        *,
        captured_at: dt.datetime,
        direction: str | None = None,
        event_key: str | None = None,
        camera: CameraAnalysis | None = None,
        face_rect: FaceRect | None = None,
    ) -> Recognition:
        return await asyncio.to_thread(
            functools.partial(
                self.recognize,
                image,
                source,
                captured_at=captured_at,
                direction=direction,
                event_key=event_key,
                camera=camera,
                face_rect=face_rect,
            )
        )


def gate_face_choice(faces: Faces, width: int, height: int, face_rect: FaceRect | None) -> GateFaceChoice:
    """The face at a gate's reader among the detected ``faces`` (at least one) of a ``width`` x ``height``
    snapshot: the only one; else the one inside the terminal's ``face_rect``; else the dominant one; else
    refused as ambiguous. A rectangle with no face inside (or several alike) falls back to the dominant face."""
    if len(faces) == 1:
        return GateFaceChoice("single", "one face", 0)
    if face_rect is not None:
        inside = dominant_face(faces, face_rect=face_rect.pixels(width, height))
        if inside.index is not None:
            return GateFaceChoice("face_rect", inside.reason, inside.index)
    largest = dominant_face(faces)
    if largest.index is not None:
        return GateFaceChoice("dominant", largest.reason, largest.index)
    reason = largest.reason.removesuffix("; use a photo of one person")
    if face_rect is not None:
        reason += f"; the terminal's FaceRect did not settle it ({inside.reason})"
    return GateFaceChoice("ambiguous", reason, None)


def gate_event_key(gate_id: str, serial: int | None, device_time: dt.datetime) -> str | None:
    """A gate event's own identity: gate, serial and device time (a resend repeats all three; a serial
    counter reset by a device restart rarely repeats the time too). None without a serial."""
    if serial is None:
        return None
    return event_id_for("gate-event", gate_id, str(serial), device_time.isoformat())


def _worth_embedding(camera: CameraAnalysis | None, track: FaceTrack | None, score: float) -> bool:
    """Without tracks (a gate, a camera whose tracker failed) every accepted face is; with them, a face
    only as its track's best view so far (``CameraTracks.wants_embedding``)."""
    if camera is None or camera.tracks is None or track is None:
        return True
    return camera.tracks.wants_embedding(track, score)


def _known(decisions: list[Decision], registries: frozenset[str]) -> bool:
    return any(d.known for d in decisions if d.registry in registries)
