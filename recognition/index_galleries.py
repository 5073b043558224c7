"""Synthetic galleries of unit embeddings, for the 1:N scale benchmark and the index tests.

- ``random``: uniformly random unit vectors. No structure at all: the worst case for an inverted file
  (every list is as close as any other), and the case of the issue's flat-scan figures.
- ``clustered``: ``size / 500`` centres (at least 20), uniformly random; each vector is its centre
  weighted 0.5 plus uniformly random noise weighted 0.866, normalised. So a vector lies at cosine ~0.5 from
  its centre and ~0.25 from the others of its cluster (impostor similarity as a face model's between people
  who look alike), ~0 from the rest: the structure that real face embeddings have (people group by
  appearance), which an inverted file uses.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

GALLERIES = ("random", "clustered")
PER_CLUSTER = 500
CENTRE_WEIGHT = 0.5


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> npt.NDArray[np.float32]:
    rows = rng.standard_normal((n, dim), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def gallery(kind: str, rng: np.random.Generator, size: int, dim: int = 512) -> npt.NDArray[np.float32]:
    """``size`` unit vectors of the named kind (see the module); built in blocks to bound the peak memory."""
    if kind == "random":
        return unit_rows(rng, size, dim)
    if kind != "clustered":
        raise ValueError(f"unknown gallery {kind!r}: one of {', '.join(GALLERIES)}")
    centres = unit_rows(rng, max(20, size // PER_CLUSTER), dim)
    out = np.empty((size, dim), np.float32)
    block = 65_536
    for start in range(0, size, block):
        n = min(block, size - start)
        rows = CENTRE_WEIGHT * centres[rng.integers(0, len(centres), n)]
        rows += np.sqrt(1.0 - CENTRE_WEIGHT**2) * unit_rows(rng, n, dim)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        out[start : start + n] = rows
    return out
