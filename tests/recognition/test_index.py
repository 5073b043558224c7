from __future__ import annotations

import numpy as np
import pytest

from recognition.analyzer import normalize
from recognition.index import FLAT, PQ4_SQ8, FaissIndex
from recognition.index_build import IndexPolicy, build_index, mated_probes
from recognition.index_galleries import gallery


def test_add_search_remove() -> None:
    rng = np.random.default_rng(7)
    vectors = normalize(rng.standard_normal((5, 512)).astype(np.float32))
    index = FaissIndex(512)
    index.add(np.arange(10, 15, dtype=np.int64), vectors)
    similarities, ids = index.search(vectors[2:3], 2)
    assert ids[0, 0] == 12
    assert similarities[0, 0] == np.float32(1.0) or abs(similarities[0, 0] - 1.0) < 1e-5
    assert index.remove(np.array([12], dtype=np.int64)) == 1
    _, ids = index.search(vectors[2:3], 1)
    assert ids[0, 0] != 12
    assert len(index) == 4


def test_empty_index_returns_no_neighbours() -> None:
    similarities, ids = FaissIndex(4).search(np.ones((1, 4), np.float32), 3)
    assert (ids == -1).all()
    assert similarities.shape == (1, 3)


@pytest.mark.parametrize("kind", [FLAT, PQ4_SQ8])
def test_enrol_search_remove_then_search_finds_nothing(kind: str) -> None:
    size = 5_000
    vectors = gallery("clustered", np.random.default_rng(4), size)
    ids = np.arange(100, 100 + size, dtype=np.int64)
    policy = IndexPolicy(compressed_min_size=1 if kind == PQ4_SQ8 else size + 1)
    index = build_index(512, ids, vectors, policy)
    assert index.kind == kind
    probe = mated_probes(np.random.default_rng(5), vectors[42:43], 0.6, 0.6)
    _, found = index.search(probe, 1)
    assert found[0, 0] == ids[42]
    assert index.remove(ids[42:43]) == 1
    _, found = index.search(probe, 16)
    assert ids[42] not in found[0]
    # A new enrolment of the same face is found again (incremental add, no rebuild).
    index.add(np.array([99], dtype=np.int64), vectors[42:43])
    _, found = index.search(probe, 1)
    assert found[0, 0] == 99
