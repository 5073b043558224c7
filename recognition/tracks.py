"""Face tracks per camera: which faces of successive frames are the same person passing by.

The association is roboflow ``trackers``' ByteTrack (Apache-2.0; Kalman-predicted boxes, IoU matched
in two stages by detector score). This module only keeps, per track, what best-shot embedding needs:

- the quality score of the last face that was embedded, so that a face is embedded only when it is
  clearly better than what the track already tried (``min_gain``), and at most
  ``max_embeddings_per_track`` times;
- the registries the track already made a sighting in: one sighting per track and registry, and a
  matched track is not embedded again.

A track holds no image, crop or embedding: an unmatched track that ends leaves nothing behind but
its count in ``gridwatch_tracks_total``.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from gridwatch.core.config.cameras import TrackingConfig
from gridwatch.core.metrics import TRACKS

if TYPE_CHECKING:
    from trackers.core.bytetrack.tracklet import ByteTrackTracklet

# ByteTrack counts its lost-track buffer in frames of a 30 fps reference; with timestamps it allows
# ``buffer / 30`` seconds, so the buffer is ``lost_after_s * 30``.
_REFERENCE_FPS = 30.0
# The detector already drops boxes below ``model.detector_threshold``: every box it gives may start a
# track, and the two-stage matching separates the surer boxes from the rest.
_ACTIVATION_SCORE = 0.0
_HIGH_SCORE = 0.5  # the default detector threshold: lower boxes (a lower threshold) only continue tracks
# At 5 fps a walking face moves far between frames and the Kalman prediction overshoots: on the shared
# clip, 0.1 split one pass of the performer into two tracks; 0.03 keeps it one (faces rarely overlap).
_MIN_IOU = 0.03


class TrackOutcome(enum.StrEnum):
    MATCHED = "matched"
    UNMATCHED = "unmatched"  # embedded, known to no registry
    UNEMBEDDED = "unembedded"  # never good enough to embed


@dataclass(slots=True)
class FaceTrack:
    track_id: str
    embeddings: int = 0
    best_embedded: float = 0.0  # quality score of the best face embedded so far
    matched: set[str] = field(default_factory=set)  # registries this track made a sighting in

    @property
    def outcome(self) -> TrackOutcome:
        if self.matched:
            return TrackOutcome.MATCHED
        return TrackOutcome.UNMATCHED if self.embeddings else TrackOutcome.UNEMBEDDED


class CameraTracks:
    """The tracks of one camera. Not thread-safe: one camera's frames are recognised one at a time."""

    def __init__(self, source_id: str, config: TrackingConfig) -> None:
        self.source_id = source_id
        self._config = config
        self._tracker: _ByteTrack | None = None
        self._tracks: dict[int, FaceTrack] = {}

    @property
    def active(self) -> int:
        return len(self._tracks)

    def update(
        self, boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], timestamp: float
    ) -> list[FaceTrack | None]:
        """The track of each box (``(n, 4)`` x1, y1, x2, y2) of the frame taken at ``timestamp`` (seconds);
        None for a box no track took. Tracks not seen for ``lost_after_s`` end here."""
        tracker = self._tracker if self._tracker is not None else self._new_tracker()
        ids = tracker.assign(boxes, scores, timestamp)
        tracks: list[FaceTrack | None] = []
        for tracker_id in ids:
            if tracker_id < 0:
                tracks.append(None)
                continue
            track = self._tracks.get(tracker_id)
            if track is None:
                track = self._tracks[tracker_id] = FaceTrack(track_id=uuid.uuid4().hex)
            tracks.append(track)
        alive = tracker.alive_ids()
        for tracker_id in [i for i in self._tracks if i not in alive]:
            ended = self._tracks.pop(tracker_id, None)  # None: end_all() came between
            if ended is not None:
                self._end(ended)
        return tracks

    def wants_embedding(self, track: FaceTrack, score: float) -> bool:
        """Whether a face of ``track`` with quality ``score`` (``recognition.quality.quality_score``), already
        accepted by the quality gate, is worth an embedding."""
        if track.matched or track.embeddings >= self._config.max_embeddings_per_track:
            return False
        return track.embeddings == 0 or score > track.best_embedded * (1.0 + self._config.min_gain)

    @staticmethod
    def embedded(track: FaceTrack, score: float) -> None:
        track.embeddings += 1
        track.best_embedded = max(track.best_embedded, score)

    def end_all(self) -> None:
        """End every track (the camera stopped, or its tracker failed and starts afresh)."""
        tracks, self._tracks, self._tracker = list(self._tracks.values()), {}, None
        for track in tracks:
            self._end(track)

    def _new_tracker(self) -> _ByteTrack:
        self._tracker = _ByteTrack(self._config.lost_after_s)
        return self._tracker

    def _end(self, track: FaceTrack) -> None:
        TRACKS.labels(source=self.source_id, outcome=track.outcome.value).inc()


class _ByteTrack:
    """ByteTrack behind plain arrays. It gives a new track its id only at its second frame; the face of
    the first frame is given one at once here, so that the first alert does not wait for a second frame."""

    def __init__(self, lost_after_s: float) -> None:
        from trackers import ByteTrackTracker  # imported on first use: it loads supervision and scipy

        self._tracker = ByteTrackTracker(
            lost_track_buffer=max(1, round(lost_after_s * _REFERENCE_FPS)),
            frame_rate=_REFERENCE_FPS,
            track_activation_threshold=_ACTIVATION_SCORE,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=_MIN_IOU,
            high_conf_det_threshold=_HIGH_SCORE,
        )

    def assign(self, boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], timestamp: float) -> list[int]:
        import supervision as sv

        n = len(boxes)
        detections = sv.Detections(
            xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            confidence=np.asarray(scores, dtype=np.float32),
            data={"index": np.arange(n)},
        )
        result = self._tracker.update(detections, timestamp=timestamp)
        ids = [-1] * n
        if len(result) == 0 or result.tracker_id is None:
            return ids
        newborn = [t for t in self._tracker.tracks if t.tracker_id == -1]
        for index, tracker_id, box in zip(result.data["index"], result.tracker_id, result.xyxy, strict=True):
            if tracker_id < 0:
                tracker_id = self._adopt(newborn, box)
            ids[int(index)] = int(tracker_id)
        return ids

    def _adopt(self, newborn: list[ByteTrackTracklet], box: npt.NDArray[np.float32]) -> int:
        """The id of the track this frame spawned for ``box`` (its state is still that box), or -1."""
        for tracklet in newborn:
            if np.allclose(tracklet.get_state_bbox(), box, atol=0.5):
                newborn.remove(tracklet)
                # ByteTrack's own allocator, so that its later ids never collide with this one.
                tracklet.tracker_id = self._tracker._allocate_tracker_id()
                return int(tracklet.tracker_id)
        return -1

    def alive_ids(self) -> set[int]:
        return {int(t.tracker_id) for t in self._tracker.tracks if t.tracker_id >= 0}
