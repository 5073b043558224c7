"""The face at a gate's reader when the snapshot shows several: the one inside the terminal's FaceRect,
else the dominant one, else refused as ambiguous (counted, the reason logged in sizes only). Real photos
pasted side by side, real models; the residents registry knows Biden, the watch registry Obama.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import REGISTRY

from gridwatch.core.config.gates import IsapiPushGateConfig
from gridwatch.core.config.model import QualityConfig
from gridwatch.core.events import Sighting, SourceKind
from gridwatch.core.interfaces import FaceRect
from ingest.gates.isapi import parse_notification, to_gate_event
from recognition.analyzer import InsightFaceAnalyzer
from recognition.quality import QualityGate
from recognition.recognizer import Recognizer, SourceInfo, gate_face_choice
from recognition.registries import Registries
from recognition.stage import RecognitionStage
from recognition.strangers import StrangerClusters
from tests.recognition.test_stranger_attempts import GATE, WATCH, Collect, build_registries, photo
from tests.support.gate_payloads import isapi_event

OBAMA = "obama/obama.jpg"  # face about 233 px
BIDEN = "biden/biden2.jpg"  # face about 436 px; 0.55 of it is about Obama's size
RECEIVED = dt.datetime(2024, 5, 1, 1, 0, tzinfo=dt.UTC)
DEVICE_TIME = dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
SOURCE = SourceInfo(GATE, SourceKind.GATE, "grid-north")
ISAPI = IsapiPushGateConfig.model_validate({"id": GATE, "kind": "isapi_push", "username": "u", "password": "p"})


class Snapshot:
    """Two real photos side by side (the right one scaled), and each one's face box in the snapshot."""

    def __init__(self, analyzer: InsightFaceAnalyzer, left: str, right: str, scale: float) -> None:
        a, b = photo(left), cv2.resize(photo(right), None, fx=scale, fy=scale)
        self.image = np.zeros((max(a.shape[0], b.shape[0]), a.shape[1] + b.shape[1], 3), np.uint8)
        self.image[: a.shape[0], : a.shape[1]] = a
        self.image[: b.shape[0], a.shape[1] :] = b
        shift = np.array([a.shape[1], 0, a.shape[1], 0], np.float32)  # the right photo starts after the left
        self.boxes = {left: _only_face(analyzer, a), right: _only_face(analyzer, b) + shift}

    def face_rect(self, name: str, pad: float = 0.1) -> FaceRect:
        """The FaceRect a terminal would send for ``name``'s face: normalised, a little larger than the box."""
        height, width = self.image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in self.boxes[name])
        dx, dy = pad * (x2 - x1), pad * (y2 - y1)
        x1, y1, x2, y2 = max(x1 - dx, 0), max(y1 - dy, 0), min(x2 + dx, width), min(y2 + dy, height)
        return FaceRect(x1 / width, y1 / height, (x2 - x1) / width, (y2 - y1) / height)

    def jpeg(self) -> bytes:
        ok, data = cv2.imencode(".jpg", self.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        return data.tobytes()


def _only_face(analyzer: InsightFaceAnalyzer, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    faces = analyzer.detect(image)
    assert len(faces) == 1
    return np.asarray(faces.boxes[0], dtype=np.float32)


def chosen(choice: str) -> float:
    return REGISTRY.get_sample_value("gridwatch_gate_face_choice_total", {"gate": GATE, "choice": choice}) or 0.0


@pytest.fixture
def registries(tmp_path: Path, analyzer: InsightFaceAnalyzer) -> Iterator[Registries]:
    regs = build_registries(tmp_path, analyzer, [GATE])
    yield regs
    regs.audit.close()


@pytest.fixture
def recognizer(analyzer: InsightFaceAnalyzer, registries: Registries) -> Recognizer:
    return Recognizer(analyzer, QualityGate(QualityConfig()), registries, StrangerClusters({GATE: WATCH}))


@pytest.fixture(scope="module")
def alike(analyzer: InsightFaceAnalyzer) -> Snapshot:
    snapshot = Snapshot(analyzer, OBAMA, BIDEN, 0.55)
    sides = [min(b[2] - b[0], b[3] - b[1]) for b in snapshot.boxes.values()]
    assert max(sides) < 1.2 * min(sides)  # alike in size: neither is dominant
    return snapshot


@pytest.mark.parametrize(("subject", "registry"), [(BIDEN, "residents"), (OBAMA, "watch")])
def test_a_face_rect_picks_one_of_two_faces_alike_in_size(
    recognizer: Recognizer, alike: Snapshot, subject: str, registry: str
) -> None:
    before = chosen("face_rect")
    result = recognizer.recognize(alike.image, SOURCE, captured_at=DEVICE_TIME, face_rect=alike.face_rect(subject))
    assert result.face_choice is not None
    assert result.face_choice.choice == "face_rect"
    assert "FaceRect" in result.face_choice.reason
    assert [s.registry for s in result.sightings] == [registry]  # the other face is not even searched
    assert result.known == (registry == "residents")
    assert recognizer.stats.faces_searched == 1
    assert chosen("face_rect") == before + 1


def test_two_faces_alike_without_a_face_rect_are_refused_with_the_reason(
    recognizer: Recognizer, alike: Snapshot, caplog: pytest.LogCaptureFixture
) -> None:
    before = chosen("ambiguous")
    with caplog.at_level(logging.INFO, logger="recognition.recognizer"):
        result = recognizer.recognize(alike.image, SOURCE, captured_at=DEVICE_TIME)
    assert result.face_choice is not None
    assert (result.face_choice.choice, result.face_choice.index) == ("ambiguous", None)
    assert "2 faces found, none clearly the subject" in result.face_choice.reason
    assert (result.sightings, result.known, result.stranger) == ([], False, None)
    # Refused before embedding: nothing searched, no look-alike cluster holds either face.
    assert recognizer.stats.faces_searched == 0
    assert recognizer.strangers.count() == 0
    assert chosen("ambiguous") == before + 1
    [record] = [r for r in caplog.records if "refused" in r.getMessage()]
    assert record.getMessage() == f"gate {GATE}: snapshot refused: {result.face_choice.reason}"
    assert all(word not in record.getMessage() for word in ("residents", "watch", "biden", "obama"))


def test_a_face_rect_around_no_face_falls_back_to_the_dominant_face(recognizer: Recognizer, alike: Snapshot) -> None:
    nowhere = FaceRect(0.0, 0.9, 0.05, 0.05)
    result = recognizer.recognize(alike.image, SOURCE, captured_at=DEVICE_TIME, face_rect=nowhere)
    assert result.face_choice is not None
    assert result.face_choice.choice == "ambiguous"
    assert "none inside the terminal's FaceRect" in result.face_choice.reason
    assert result.sightings == []


def test_one_large_and_one_small_face_use_the_large_one(recognizer: Recognizer, analyzer: InsightFaceAnalyzer) -> None:
    before = chosen("dominant")
    large_obama = Snapshot(analyzer, OBAMA, BIDEN, 0.3)  # Obama about 233 px, Biden behind about 137 px
    result = recognizer.recognize(large_obama.image, SOURCE, captured_at=DEVICE_TIME)
    assert result.face_choice is not None
    assert result.face_choice.choice == "dominant"
    assert "used the largest" in result.face_choice.reason
    assert [s.registry for s in result.sightings] == ["watch"]
    assert (result.known, result.stranger is not None) == (False, True)  # Obama is no resident
    assert chosen("dominant") == before + 1
    # A FaceRect around the small face overrides size: the terminal knows who stood at the reader.
    behind = recognizer.recognize(
        large_obama.image, SOURCE, captured_at=DEVICE_TIME, face_rect=large_obama.face_rect(BIDEN)
    )
    assert [s.registry for s in behind.sightings] == ["residents"]
    assert behind.known


def test_one_face_is_single_and_cameras_choose_nothing(recognizer: Recognizer) -> None:
    before = chosen("single")
    result = recognizer.recognize(photo(BIDEN), SOURCE, captured_at=DEVICE_TIME, face_rect=FaceRect(0, 0, 0.1, 0.1))
    assert result.face_choice is not None
    assert (result.face_choice.choice, result.face_choice.index) == ("single", 0)
    assert [s.registry for s in result.sightings] == ["residents"]
    assert chosen("single") == before + 1
    camera = recognizer.recognize(photo(BIDEN), SourceInfo(GATE, SourceKind.CAMERA), captured_at=DEVICE_TIME)
    assert camera.face_choice is None


def test_gate_face_choice_scales_the_face_rect_to_the_snapshot(alike: Snapshot, analyzer: InsightFaceAnalyzer) -> None:
    faces = analyzer.detect(alike.image)
    height, width = alike.image.shape[:2]
    for name in (OBAMA, BIDEN):
        choice = gate_face_choice(faces, width, height, alike.face_rect(name))
        assert choice.index is not None
        # The same face (the detector sees the snapshot at another scale than the single photo).
        assert np.allclose(faces.boxes[choice.index], alike.boxes[name], atol=20.0)


async def test_an_isapi_event_whose_face_rect_points_at_one_of_two_faces_uses_that_one(
    recognizer: Recognizer, analyzer: InsightFaceAnalyzer, registries: Registries, alike: Snapshot
) -> None:
    """The terminal's JSON → GateEvent.face_rect → the stage → the recognizer: only Biden is sighted."""
    rect = alike.face_rect(BIDEN)
    payload = isapi_event(
        41, extra_event={"FaceRect": {"height": rect.height, "width": rect.width, "x": rect.x, "y": rect.y}}
    )
    event = to_gate_event(
        parse_notification(json.dumps(payload).encode()), ISAPI, received_at=RECEIVED, pictures=[alike.jpeg()]
    )
    assert event.face_rect is not None
    got = event.face_rect
    assert (got.x, got.y, got.width, got.height) == pytest.approx((rect.x, rect.y, rect.width, rect.height))
    sightings, attempts = Collect(), Collect()
    stage = RecognitionStage(recognizer, analyzer, registries, sightings, attempts=attempts)
    await stage.on_gate_event(event, SOURCE)
    assert [s.registry for s in sightings.items if isinstance(s, Sighting)] == ["residents"]
    assert attempts.items == []  # a resident at the reader is no stranger attempt
