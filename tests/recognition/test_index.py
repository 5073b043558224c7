from __future__ import annotations

import numpy as np

from recognition.analyzer import normalize
from recognition.index import FaissIndex


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
