"""Look-alike clusters of unknown faces at gates, on real embeddings of real photos."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from gridwatch.core.config.model import QualityConfig
from recognition.analyzer import InsightFaceAnalyzer
from recognition.enroll import enrollment_sample
from recognition.quality import QualityGate
from recognition.strangers import StrangerClusters, StrangerWatch
from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"
PHOTOS = {
    "kit1": "kit_harington/kit1.jpeg",
    "kit2": "kit_harington/kit2.jpeg",
    "kit3": "kit_harington/kit3.jpg",
    "obama": "obama/obama.jpg",
    "rose": "rose_leslie/rose1.jpg",
}
GATE = "gate-north-face"
WATCH = StrangerWatch(known_registries=frozenset({"residents"}), threshold=0.5, window_s=600.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def faces(analyzer: InsightFaceAnalyzer) -> dict[str, npt.NDArray[np.float32]]:
    gate = QualityGate(QualityConfig())
    return {
        name: enrollment_sample(analyzer, gate, (FACES / path).read_bytes(), what=name).embedding
        for name, path in PHOTOS.items()
    }


def test_photos_of_one_stranger_join_one_cluster_and_other_strangers_open_their_own(
    faces: dict[str, npt.NDArray[np.float32]],
) -> None:
    clusters = StrangerClusters({GATE: WATCH}, clock=FakeClock())
    kit = clusters.observe(GATE, faces["kit1"])
    assert kit is not None
    assert len(kit) == 32  # a random uuid hex, nothing derived from the face
    assert clusters.observe(GATE, faces["kit2"]) == kit
    assert clusters.observe(GATE, faces["kit3"]) == kit
    obama = clusters.observe(GATE, faces["obama"])
    rose = clusters.observe(GATE, faces["rose"])
    assert len({kit, obama, rose}) == 3
    assert clusters.count(GATE) == 3


def test_each_gate_has_clusters_of_its_own(faces: dict[str, npt.NDArray[np.float32]]) -> None:
    clusters = StrangerClusters({GATE: WATCH, "garage-face": WATCH}, clock=FakeClock())
    assert clusters.observe(GATE, faces["kit1"]) != clusters.observe("garage-face", faces["kit2"])
    assert (clusters.count(GATE), clusters.count("garage-face"), clusters.count()) == (1, 1, 2)


def test_a_cluster_not_seen_for_the_window_is_forgotten(faces: dict[str, npt.NDArray[np.float32]]) -> None:
    clock = FakeClock()
    clusters = StrangerClusters({GATE: WATCH}, clock=clock)
    first = clusters.observe(GATE, faces["kit1"])
    clock.now += WATCH.window_s - 1
    assert clusters.observe(GATE, faces["kit2"]) == first  # seen again in time: the window starts again
    clock.now += WATCH.window_s - 1
    assert clusters.purge() == 0
    clock.now += 2
    assert clusters.purge() == 1
    assert clusters.count() == 0
    again = clusters.observe(GATE, faces["kit3"])
    assert again is not None
    assert again != first  # nothing links the new attempts to the old ones


def test_observing_forgets_the_expired_clusters_of_every_gate(faces: dict[str, npt.NDArray[np.float32]]) -> None:
    clock = FakeClock()
    short = StrangerWatch(frozenset({"residents"}), 0.5, 60.0)
    clusters = StrangerClusters({GATE: WATCH, "garage-face": short}, clock=clock)
    clusters.observe(GATE, faces["kit1"])
    clusters.observe("garage-face", faces["obama"])
    clock.now += 61
    clusters.observe(GATE, faces["rose"])
    assert (clusters.count(GATE), clusters.count("garage-face")) == (2, 0)


def test_each_gate_keeps_at_most_its_bound_and_evicts_the_least_recently_seen(
    faces: dict[str, npt.NDArray[np.float32]],
) -> None:
    clock = FakeClock()
    clusters = StrangerClusters({GATE: WATCH}, max_per_source=2, clock=clock)
    kit = clusters.observe(GATE, faces["kit1"])
    clock.now += 1
    obama = clusters.observe(GATE, faces["obama"])
    clock.now += 1
    assert clusters.observe(GATE, faces["kit2"]) == kit  # kit is now the most recently seen
    clock.now += 1
    rose = clusters.observe(GATE, faces["rose"])
    assert clusters.count(GATE) == 2
    assert clusters.observe(GATE, faces["kit3"]) == kit
    assert clusters.observe(GATE, faces["rose"]) == rose
    assert clusters.observe(GATE, faces["obama"]) not in {obama, kit, rose}  # obama was evicted


def test_a_gate_no_rule_watches_holds_nothing(faces: dict[str, npt.NDArray[np.float32]]) -> None:
    clusters = StrangerClusters({GATE: WATCH}, clock=FakeClock())
    assert clusters.watching("lobby-b3-face") is None
    assert clusters.observe("lobby-b3-face", faces["kit1"]) is None
    assert clusters.count() == 0


def test_a_reload_that_stops_watching_a_gate_forgets_its_clusters(faces: dict[str, npt.NDArray[np.float32]]) -> None:
    clusters = StrangerClusters({GATE: WATCH, "garage-face": WATCH}, clock=FakeClock())
    kit = clusters.observe(GATE, faces["kit1"])
    clusters.observe("garage-face", faces["obama"])
    stricter = StrangerWatch(frozenset({"residents"}), 0.6, 300.0)
    clusters.reconfigure({GATE: stricter})
    assert (clusters.count(GATE), clusters.count("garage-face")) == (1, 0)
    assert clusters.watching(GATE) == stricter
    assert clusters.observe(GATE, faces["kit3"]) == kit  # kept: still watched (kit1~kit3 is 0.78)


def test_the_threshold_decides_what_looks_alike(faces: dict[str, npt.NDArray[np.float32]]) -> None:
    # kit1 and kit2 are one person at a similarity of about 0.68: a threshold above it keeps them apart.
    strict = StrangerClusters({GATE: StrangerWatch(frozenset({"r"}), 0.9, 600.0)}, clock=FakeClock())
    assert strict.observe(GATE, faces["kit1"]) != strict.observe(GATE, faces["kit2"])


def test_the_cluster_keeps_a_copy_and_wipes_it_when_it_forgets(faces: dict[str, npt.NDArray[np.float32]]) -> None:
    clock = FakeClock()
    clusters = StrangerClusters({GATE: WATCH}, clock=clock)
    probe = faces["kit1"].copy()
    clusters.observe(GATE, probe)
    [[held]] = [list(c.values()) for c in clusters._clusters.values()]
    assert not np.shares_memory(held.total, probe)
    clock.now += WATCH.window_s + 1
    clusters.purge()
    assert not held.total.any()
