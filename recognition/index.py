"""A FAISS index of normalised embeddings: inner product = cosine similarity.

``IndexIDMap2`` over a flat inner-product index supports removal by id, which erasure
requests and expiry need (HNSW cannot delete). It lives in memory only: it is rebuilt from
the registry store at start, never written to disk.
"""

from __future__ import annotations

import threading

import faiss
import numpy as np
import numpy.typing as npt


class FaissIndex:
    def __init__(self, dim: int) -> None:
        self._dim = dim
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self._dim):
            raise ValueError(f"vectors must have shape ({len(ids)}, {self._dim}), got {vectors.shape}")
        with self._lock:
            self._index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: npt.NDArray[np.int64]) -> int:
        if len(ids) == 0:
            return 0
        with self._lock:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
            return int(self._index.remove_ids(selector))

    def search(self, vectors: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock:
            if self._index.ntotal == 0:
                n = len(vectors)
                return np.full((n, k), -1.0, np.float32), np.full((n, k), -1, np.int64)
            similarities, ids = self._index.search(vectors, k)
        return similarities.astype(np.float32), ids.astype(np.int64)
