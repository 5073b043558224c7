"""Face tracks on the real clip and real models: one walk past a camera is one sighting per registry,
its embeddings are bounded, and a track nobody knows leaves nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.cameras import FileCameraConfig, TrackingConfig
from gridwatch.core.config.model import QualityConfig
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Sighting, SourceKind
from recognition.analyzer import InsightFaceAnalyzer
from recognition.enroll import enrollment_sample, read_photo
from recognition.quality import QualityGate
from recognition.recognizer import CameraAnalysis, Recognizer, SourceInfo
from recognition.registries import Registries
from recognition.store import RegistryStore
from recognition.tracks import CameraTracks, FaceTrack
from tests.support.cameras import LOCATION_CLASS, SIGNAGE_CHECKED
from tests.support.db import sqlite_url
from tests.support.e2e import assert_no_trace_of_unmatched_faces
from tests.support.keys import site_keys
from tests.support.metrics import sample
from tests.support.paths import CLIP, TESTDATA

PERFORMER = TESTDATA / "faces" / "lin_manuel_miranda" / "lin1.png"
STRANGER = TESTDATA / "faces" / "kit_harington" / "kit1.jpeg"  # not in the clip
REGISTRIES = ("watch", "residents")
CAMERA_FPS = 5.0
START = dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.UTC)


def clip_frames(fps: float = CAMERA_FPS) -> Iterator[tuple[dt.datetime, npt.NDArray[np.uint8]]]:
    """The clip sampled at ``fps`` as a camera worker would, with the frames' own times (no wall clock)."""
    capture = cv2.VideoCapture(str(CLIP))
    clip_fps = float(capture.get(cv2.CAP_PROP_FPS))
    step = max(1, round(clip_fps / fps))
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            if index % step == 0:
                yield START + dt.timedelta(seconds=index / clip_fps), np.asarray(frame, dtype=np.uint8)
            index += 1
    finally:
        capture.release()


def registries_knowing(
    data_dir: Path, analyzer: InsightFaceAnalyzer, photo: Path, audit: AuditLog
) -> tuple[Registries, RegistryStore]:
    store = RegistryStore(
        Database(sqlite_url(data_dir / "gridwatch.sqlite3")), keys=site_keys(data_dir), owns_database=True
    )
    configs = [
        RegistryConfig(name=name, purpose="tracks test", legal_basis="test fixture", retention_days=1, threshold=0.45)
        for name in REGISTRIES
    ]
    registries = Registries(configs, store, model_id=analyzer.model_id, dim=analyzer.embedding_dim, audit=audit)
    registries.load()
    enrolled = enrollment_sample(analyzer, QualityGate(QualityConfig()), read_photo(photo), what=photo.name)
    for name in REGISTRIES:
        registries.enroll(name, "Someone", [(enrolled.photo_sha256, enrolled.embedding)], actor="tester")
    return registries, store


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def walk_past(recognizer: Recognizer, camera: CameraAnalysis, camera_id: str) -> list[tuple[Sighting, int]]:
    """Every sighting of the clip, with the number of tracks still alive when it was made."""
    made = []
    source = SourceInfo(camera_id, SourceKind.CAMERA)
    for captured_at, frame in clip_frames():
        for sighting in recognizer.recognize(frame, source, captured_at=captured_at, camera=camera).sightings:
            assert camera.tracks is not None
            made.append((sighting, camera.tracks.active))
    return made


def track_counts(camera_id: str) -> dict[str, float]:
    return {
        outcome: sample("gridwatch_tracks_total", source=camera_id, outcome=outcome)
        for outcome in ("matched", "unmatched", "unembedded")
    }


def test_one_walk_past_a_camera_is_one_sighting_per_registry_with_bounded_embeddings(
    analyzer: InsightFaceAnalyzer, data_dir: Path
) -> None:
    camera_id = f"walk-{uuid.uuid4().hex[:8]}"
    config = FileCameraConfig(
        id=camera_id,
        kind="file",
        location_class=LOCATION_CLASS,
        signage_verified_at=SIGNAGE_CHECKED,
        path=CLIP,
        fps=CAMERA_FPS,
    )
    camera = CameraAnalysis.of(config)
    assert camera.tracks is not None
    with AuditLog(data_dir / "audit.jsonl") as audit:
        registries, store = registries_knowing(data_dir, analyzer, PERFORMER, audit)
        try:
            made = walk_past(Recognizer(analyzer, QualityGate(QualityConfig()), registries), camera, camera_id)
        finally:
            store.close()
    camera.tracks.end_all()

    sightings = [sighting for sighting, _ in made]
    assert sorted(s.registry for s in sightings) == sorted(REGISTRIES)
    (track_id,) = {s.track_id for s in sightings}
    assert track_id is not None
    # Made while the track was still on screen, not when it ended.
    assert all(alive >= 1 for _, alive in made)

    tracks = track_counts(camera_id)
    assert tracks["matched"] == 1
    ended = sum(tracks.values())
    embedded = sample("gridwatch_faces_embedded_total", source=camera_id)
    detected = sample("gridwatch_faces_detected_total", source=camera_id)
    assert ended >= 3  # the performer and people of the audience
    assert embedded <= ended * config.tracking.max_embeddings_per_track
    assert embedded < detected / 5  # most faces of most frames were never embedded


def test_a_track_nobody_knows_leaves_no_trace(analyzer: InsightFaceAnalyzer, data_dir: Path) -> None:
    camera_id = f"unknown-{uuid.uuid4().hex[:8]}"
    camera = CameraAnalysis.of(
        FileCameraConfig(
            id=camera_id,
            kind="file",
            location_class=LOCATION_CLASS,
            signage_verified_at=SIGNAGE_CHECKED,
            path=CLIP,
            fps=CAMERA_FPS,
        )
    )
    assert camera.tracks is not None
    with AuditLog(data_dir / "audit.jsonl") as audit:
        registries, store = registries_knowing(data_dir, analyzer, STRANGER, audit)
        try:
            made = walk_past(Recognizer(analyzer, QualityGate(QualityConfig()), registries), camera, camera_id)
        finally:
            store.close()
    camera.tracks.end_all()

    assert made == []
    tracks = track_counts(camera_id)
    assert tracks["unmatched"] >= 1
    assert tracks["matched"] == 0
    assert camera.tracks.active == 0
    # A track keeps counts and scores only: nothing it holds could be an image or a template.
    assert {f.name for f in fields(FaceTrack)} == {"track_id", "embeddings", "best_embedded", "matched"}
    # The enrolled stranger's template (in each registry's rows and the audit of the enrolment) and nothing else.
    assert_no_trace_of_unmatched_faces(data_dir, enrolled=1)


# --- the bookkeeping of a track, on boxes alone ---------------------------------------------------


def boxes(*rows: tuple[float, float, float, float]) -> npt.NDArray[np.float32]:
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


def scores(n: int) -> npt.NDArray[np.float32]:
    return np.full(n, 0.9, dtype=np.float32)


def test_a_face_keeps_its_track_from_its_first_frame_until_it_is_lost() -> None:
    camera_id = f"boxes-{uuid.uuid4().hex[:8]}"
    tracks = CameraTracks(camera_id, TrackingConfig(lost_after_s=1.0))
    first = tracks.update(boxes((100, 100, 160, 170)), scores(1), 0.0)
    assert first[0] is not None  # at once: the first alert does not wait for a second frame
    for step in range(1, 5):
        (track,) = tracks.update(boxes((100 + 4 * step, 100, 160 + 4 * step, 170)), scores(1), step * 0.2)
        assert track is first[0]
    assert tracks.update(boxes(), scores(0), 1.2) == []
    assert tracks.active == 1
    tracks.update(boxes(), scores(0), 3.0)
    assert tracks.active == 0
    assert track_counts(camera_id) == {"matched": 0, "unmatched": 0, "unembedded": 1}


def test_a_track_is_embedded_again_only_for_a_clearly_better_face_and_never_once_matched() -> None:
    tracks = CameraTracks("bookkeeping", TrackingConfig(max_embeddings_per_track=3, min_gain=0.2))
    track = FaceTrack(track_id="t")
    assert tracks.wants_embedding(track, 0.3)
    CameraTracks.embedded(track, 0.3)
    assert not tracks.wants_embedding(track, 0.35)  # better, but not clearly
    assert tracks.wants_embedding(track, 0.5)
    CameraTracks.embedded(track, 0.5)
    CameraTracks.embedded(track, 0.9)
    assert not tracks.wants_embedding(track, 1.0)  # the budget is spent
    matched = FaceTrack(track_id="m", embeddings=1, best_embedded=0.1, matched={"watch"})
    assert not tracks.wants_embedding(matched, 1.0)


class BrokenTracks(CameraTracks):
    def update(
        self, boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], timestamp: float
    ) -> list[FaceTrack | None]:
        raise RuntimeError("tracker state corrupted")


def test_a_failing_tracker_on_one_camera_leaves_its_faces_recognised_and_the_others_tracked(
    analyzer: InsightFaceAnalyzer, data_dir: Path
) -> None:
    broken_id, sound_id = f"broken-{uuid.uuid4().hex[:8]}", f"sound-{uuid.uuid4().hex[:8]}"
    broken = CameraAnalysis(tracks=BrokenTracks(broken_id, TrackingConfig()))
    sound = CameraAnalysis(tracks=CameraTracks(sound_id, TrackingConfig()))
    image = cv2.imread(str(PERFORMER))
    assert image is not None
    frame = np.asarray(image, dtype=np.uint8)
    with AuditLog(data_dir / "audit.jsonl") as audit:
        registries, store = registries_knowing(data_dir, analyzer, PERFORMER, audit)
        try:
            recognizer = Recognizer(analyzer, QualityGate(QualityConfig()), registries)
            from_broken = recognizer.recognize(
                frame, SourceInfo(broken_id, SourceKind.CAMERA), captured_at=START, camera=broken
            ).sightings
            from_sound = recognizer.recognize(
                frame, SourceInfo(sound_id, SourceKind.CAMERA), captured_at=START, camera=sound
            ).sightings
        finally:
            store.close()
    assert sample("gridwatch_tracker_failures_total", camera=broken_id) == 1
    assert len(from_broken) == len(REGISTRIES)
    assert {s.track_id for s in from_broken} == {None}
    assert len(from_sound) == len(REGISTRIES)
    assert None not in {s.track_id for s in from_sound}
