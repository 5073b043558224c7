"""Unknown faces and refusals at watched gates become stranger attempts; real photos, real models.

The residents registry knows Biden. Kit Harington, Obama and Rose Leslie are strangers to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pytest

from gridwatch.core.audit import AuditLog
from gridwatch.core.config.model import QualityConfig
from gridwatch.core.config.registries import RegistryConfig
from gridwatch.core.db import Database
from gridwatch.core.events import Sighting, SourceKind, StrangerAttempt
from gridwatch.core.interfaces import GateEvent
from recognition.analyzer import InsightFaceAnalyzer
from recognition.enroll import enrollment_sample
from recognition.quality import QualityGate
from recognition.recognizer import Recognizer, SourceInfo
from recognition.registries import Registries
from recognition.stage import RecognitionStage
from recognition.store import RegistryStore
from recognition.strangers import StrangerClusters, StrangerWatch
from tests.support.db import sqlite_url
from tests.support.keys import site_keys
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"
GATE = "gate-north-face"
OTHER_GATE = "gate-south-face"
DEVICE_TIME = dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
WATCH = StrangerWatch(known_registries=frozenset({"residents"}), threshold=0.5, window_s=600.0)
Verdict = Literal["granted", "denied"] | None


def registry(name: str, sources: list[str]) -> RegistryConfig:
    return RegistryConfig(
        name=name, purpose="stranger test", legal_basis="test fixture", retention_days=1, threshold=0.5, sources=sources
    )


def build_registries(tmp_path: Path, analyzer: InsightFaceAnalyzer, residents_sources: list[str]) -> Registries:
    store = RegistryStore(
        Database(sqlite_url(tmp_path / "gridwatch.sqlite3")), keys=site_keys(tmp_path), owns_database=True
    )
    audit = AuditLog(tmp_path / "audit.jsonl")
    regs = Registries(
        [registry("residents", residents_sources), registry("watch", ["*"])],
        store,
        model_id=analyzer.model_id,
        dim=analyzer.embedding_dim,
        audit=audit,
    )
    regs.load()
    gate = QualityGate(QualityConfig())
    for name, photo in (("residents", "biden/biden.jpg"), ("watch", "obama/obama2.jpg")):
        sample = enrollment_sample(analyzer, gate, (FACES / photo).read_bytes(), what=photo)
        regs.enroll(name, name, [(sample.photo_sha256, sample.embedding)], actor="tester")
    return regs


@pytest.fixture
def registries(tmp_path: Path, analyzer: InsightFaceAnalyzer) -> Iterator[Registries]:
    regs = build_registries(tmp_path, analyzer, [GATE])
    yield regs
    regs.audit.close()


@pytest.fixture
def recognizer(analyzer: InsightFaceAnalyzer, registries: Registries) -> Recognizer:
    return Recognizer(analyzer, QualityGate(QualityConfig()), registries, StrangerClusters({GATE: WATCH}))


def photo(path: str) -> np.ndarray:
    image = cv2.imread(str(FACES / path))
    assert image is not None
    return np.asarray(image, dtype=np.uint8)


GATE_SOURCE = SourceInfo(GATE, SourceKind.GATE, "grid-north")


def test_an_unknown_face_at_a_watched_gate_gets_a_look_alike_label(recognizer: Recognizer) -> None:
    first = recognizer.recognize(photo("kit_harington/kit1.jpeg"), GATE_SOURCE, captured_at=DEVICE_TIME)
    again = recognizer.recognize(photo("kit_harington/kit2.jpeg"), GATE_SOURCE, captured_at=DEVICE_TIME)
    other = recognizer.recognize(photo("rose_leslie/rose1.jpg"), GATE_SOURCE, captured_at=DEVICE_TIME)
    assert (first.sightings, first.known) == ([], False)
    assert first.stranger is not None
    assert again.stranger == first.stranger
    assert other.stranger not in {None, first.stranger}
    assert recognizer.stats.unknown_at_gates == 3


def test_a_resident_is_known_and_no_stranger(recognizer: Recognizer) -> None:
    result = recognizer.recognize(photo("biden/biden2.jpg"), GATE_SOURCE, captured_at=DEVICE_TIME)
    assert (result.known, result.stranger) == (True, None)
    assert [s.registry for s in result.sightings] == ["residents"]  # residents covers this gate
    assert recognizer.strangers.count() == 0


def test_a_watchlisted_face_is_still_a_stranger_to_the_residents(recognizer: Recognizer) -> None:
    result = recognizer.recognize(photo("obama/obama.jpg"), GATE_SOURCE, captured_at=DEVICE_TIME)
    assert [s.registry for s in result.sightings] == ["watch"]
    assert (result.known, result.stranger is not None) == (False, True)


def test_known_registries_are_searched_where_they_do_not_cover_the_gate_but_make_no_sighting(
    tmp_path: Path, analyzer: InsightFaceAnalyzer
) -> None:
    regs = build_registries(tmp_path, analyzer, [OTHER_GATE])
    try:
        recognizer = Recognizer(analyzer, QualityGate(QualityConfig()), regs, StrangerClusters({GATE: WATCH}))
        resident = recognizer.recognize(photo("biden/biden2.jpg"), GATE_SOURCE, captured_at=DEVICE_TIME)
        stranger = recognizer.recognize(photo("kit_harington/kit1.jpeg"), GATE_SOURCE, captured_at=DEVICE_TIME)
    finally:
        regs.audit.close()
    assert (resident.known, resident.stranger, resident.sightings) == (True, None, [])
    assert stranger.stranger is not None


def test_cameras_and_unwatched_gates_hold_no_unknown_face(recognizer: Recognizer) -> None:
    camera = recognizer.recognize(
        photo("kit_harington/kit1.jpeg"), SourceInfo(GATE, SourceKind.CAMERA), captured_at=DEVICE_TIME
    )
    gate = recognizer.recognize(
        photo("kit_harington/kit1.jpeg"), SourceInfo(OTHER_GATE, SourceKind.GATE), captured_at=DEVICE_TIME
    )
    assert (camera.stranger, gate.stranger, camera.known, gate.known) == (None, None, False, False)
    assert recognizer.strangers.count() == 0


def side_by_side(large: str, small: str, scale: float) -> np.ndarray:
    left, right = photo(large), cv2.resize(photo(small), None, fx=scale, fy=scale)
    canvas = np.zeros((max(left.shape[0], right.shape[0]), left.shape[1] + right.shape[1], 3), np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] :] = right
    return canvas


def test_the_largest_face_is_the_one_at_the_reader(recognizer: Recognizer) -> None:
    # A resident behind a stranger: the stranger at the reader is the attempt; the face behind is not
    # searched at all (a gate event is about the person at the reader: recognition.recognizer).
    stranger_in_front = recognizer.recognize(
        side_by_side("obama/obama.jpg", "biden/biden2.jpg", 0.3), GATE_SOURCE, captured_at=DEVICE_TIME
    )
    assert [s.registry for s in stranger_in_front.sightings] == ["watch"]
    assert (stranger_in_front.known, stranger_in_front.stranger is not None) == (False, True)
    # A stranger behind a resident: the resident at the reader, no attempt, and the passer-by is not held.
    resident_in_front = recognizer.recognize(
        side_by_side("biden/biden2.jpg", "kit_harington/kit1.jpeg", 0.5), GATE_SOURCE, captured_at=DEVICE_TIME
    )
    assert (resident_in_front.known, resident_in_front.stranger) == (True, None)
    assert recognizer.strangers.count() == 1  # Obama's cluster only


# --- the stage: one gate event, at most one attempt --------------------------------------------------


class Collect:
    def __init__(self) -> None:
        self.items: list[object] = []

    async def put(self, item: object) -> None:
        self.items.append(item)


def gate_event(picture: str | bytes | None, verdict: Verdict, *, serial: int = 17, gate: str = GATE) -> GateEvent:
    face = (FACES / picture).read_bytes() if isinstance(picture, str) else picture
    return GateEvent(
        gate_id=gate,
        received_at=dt.datetime.now(dt.UTC),
        device_time=DEVICE_TIME,
        direction="in",
        serial=serial,
        face_image=face,
        verdict=verdict,
    )


@dataclass
class Ports:
    """The stage under test and what reached its two output ports."""

    stage: RecognitionStage
    sightings: Collect
    attempts: Collect


@pytest.fixture
def stage(recognizer: Recognizer, analyzer: InsightFaceAnalyzer, registries: Registries) -> Ports:
    sightings, attempts = Collect(), Collect()
    return Ports(RecognitionStage(recognizer, analyzer, registries, sightings, attempts=attempts), sightings, attempts)


async def attempts_of(ports: Ports, event: GateEvent) -> list[StrangerAttempt]:
    ports.attempts.items.clear()
    await ports.stage.on_gate_event(event, SourceInfo(event.gate_id, SourceKind.GATE, "grid-north"))
    attempts = [item for item in ports.attempts.items if isinstance(item, StrangerAttempt)]
    assert len(attempts) == len(ports.attempts.items)
    return attempts


@pytest.mark.parametrize(
    ("picture", "verdict", "expected"),
    [
        pytest.param("kit_harington/kit1.jpeg", None, ("unmatched", True), id="unknown-face"),
        pytest.param("kit_harington/kit1.jpeg", "granted", ("unmatched", True), id="unknown-face-let-in"),
        pytest.param("kit_harington/kit1.jpeg", "denied", ("denied", True), id="unknown-face-refused"),
        pytest.param("biden/biden2.jpg", "denied", None, id="resident-refused"),
        pytest.param("biden/biden2.jpg", None, None, id="resident"),
        pytest.param(None, "denied", ("denied", False), id="refused-without-a-face"),
        pytest.param(None, "granted", None, id="let-in-without-a-face"),
        pytest.param(b"\xff\xd8\xff not a picture", "denied", ("denied", False), id="refused-undecodable"),
        pytest.param(b"\xff\xd8\xff not a picture", None, None, id="undecodable"),
    ],
)
async def test_one_gate_event_makes_at_most_one_attempt(
    stage: Ports, picture: str | bytes | None, verdict: Verdict, expected: tuple[str, bool] | None
) -> None:
    attempts = await attempts_of(stage, gate_event(picture, verdict))
    if expected is None:
        assert attempts == []
        return
    [attempt] = attempts
    assert (attempt.verdict, attempt.cluster is not None) == expected
    assert (attempt.source, attempt.source_kind, attempt.grid) == (GATE, SourceKind.GATE, "grid-north")
    assert attempt.gate_event_id == "17"
    assert attempt.captured_at == DEVICE_TIME.astimezone(dt.UTC)


async def test_a_gate_no_rule_watches_makes_no_attempt(stage: Ports) -> None:
    assert await attempts_of(stage, gate_event(None, "denied", gate=OTHER_GATE)) == []
    assert await attempts_of(stage, gate_event("kit_harington/kit1.jpeg", None, gate=OTHER_GATE)) == []


async def test_attempts_carry_the_same_label_for_the_same_stranger_and_sightings_still_flow(
    stage: Ports,
) -> None:
    [first] = await attempts_of(stage, gate_event("kit_harington/kit1.jpeg", None, serial=1))
    [second] = await attempts_of(stage, gate_event("kit_harington/kit3.jpg", "denied", serial=2))
    assert first.cluster == second.cluster
    assert (first.gate_event_id, second.gate_event_id) == ("1", "2")
    await attempts_of(stage, gate_event("obama/obama.jpg", None, serial=3))
    assert [s.registry for s in stage.sightings.items if isinstance(s, Sighting)] == ["watch"]
