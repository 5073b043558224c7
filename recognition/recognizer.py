"""Frame or snapshot → matched sightings. Unmatched faces end here, in memory.

Order of work per image: detect → quality gate → embed (only accepted faces, and only when a
registry covers the source) → search. An embedding that matched nothing is dropped with the
image; nothing about that face is logged, stored or sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridwatch.core.events import Quality, Sighting, SourceKind
from gridwatch.core.interfaces import FaceAnalyzer
from gridwatch.core.metrics import FACES_DETECTED, FACES_EMBEDDED, FACES_GATED, INFERENCE_SECONDS, SIGHTINGS
from recognition.quality import QualityGate
from recognition.registries import Registries

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


@dataclass(frozen=True, slots=True)
class SourceInfo:
    source_id: str
    kind: SourceKind
    grid: str | None = None


class Recognizer:
    def __init__(self, analyzer: FaceAnalyzer, gate: QualityGate, registries: Registries) -> None:
        self._analyzer = analyzer
        self._gate = gate
        self._registries = registries
        self.stats = RecognitionStats()

    def recognize(
        self,
        image: npt.NDArray[np.uint8],
        source: SourceInfo,
        *,
        captured_at: dt.datetime,
        direction: str | None = None,
    ) -> list[Sighting]:
        """Blocking: run it in a worker thread (``recognize_async``)."""
        self.stats.images += 1
        with _DETECT_SECONDS.time():
            faces = self._analyzer.detect(image)
        self.stats.faces += len(faces)
        FACES_DETECTED.labels(source=source.source_id).inc(len(faces))
        if len(faces) == 0 or not self._registries.covers(source.source_id):
            return []
        verdict = self._gate.check(faces, image)
        accepted = faces.select(verdict.accepted)
        face_px = verdict.face_px[verdict.accepted]
        blur = verdict.blur[verdict.accepted]
        yaw = verdict.yaw[verdict.accepted]
        self.stats.faces_rejected += len(faces) - len(accepted)
        FACES_GATED.labels(source=source.source_id).inc(len(faces) - len(accepted))
        if len(accepted) == 0:
            return []
        with _EMBED_SECONDS.time():
            embedded = self._analyzer.embed(image, accepted)
        assert embedded.embeddings is not None
        self.stats.faces_searched += len(embedded)
        FACES_EMBEDDED.labels(source=source.source_id).inc(len(embedded))
        with _SEARCH_SECONDS.time():
            matches = self._registries.match(embedded.embeddings, source.source_id)
        received_at = dt.datetime.now(dt.UTC)
        sightings = []
        for i, face_matches in enumerate(matches):
            for match in face_matches:
                registry = self._registries.configs[match.registry]
                sightings.append(
                    Sighting(
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
                        direction=direction,  # type: ignore[arg-type]
                        grid=source.grid,
                    )
                )
        self.stats.sightings += len(sightings)
        for sighting in sightings:
            SIGHTINGS.labels(registry=sighting.registry, source_kind=source.kind.value).inc()
        return sightings

    async def recognize_async(
        self,
        image: npt.NDArray[np.uint8],
        source: SourceInfo,
        *,
        captured_at: dt.datetime,
        direction: str | None = None,
    ) -> list[Sighting]:
        return await asyncio.to_thread(self.recognize, image, source, captured_at=captured_at, direction=direction)
