"""A FAISS index of normalised embeddings: inner product = cosine similarity.

Two kinds, chosen per registry by its size at start (``recognition.index_build``):

- ``flat``: ``IndexIDMap2`` over an exact inner-product scan. The default for small registries.
- ``ivf_sq8``: an inverted file (``IndexIVFScalarQuantizer``, 8-bit codes: 512 bytes per 512-d vector,
  a quarter of flat float32) that scans ``nprobe`` of its lists per probe.

Both support removal by id, which erasure requests and expiry need (HNSW cannot delete). The index
lives in memory only: it is built from the registry store at start, never written to disk.

A single probe is searched on one thread (``faiss.omp_set_num_threads(1)`` in the calling thread): a
probe's scan is too short to gain from OpenMP, and the recognition threads already share the cores.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

FLAT = "flat"
IVF_SQ8 = "ivf_sq8"


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """What ``/status`` shows of a registry's index."""

    kind: str
    size: int
    nprobe: int | None
    recall: float | None  # recall@1 against exact search measured at build (None: not measured)
    fallback_reason: str | None  # why a large registry searches exactly (its IVF missed the recall target)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "size": self.size,
            "nprobe": self.nprobe,
            "recall": self.recall,
            "fallback_reason": self.fallback_reason,
        }


class FaissIndex:
    """Thread-safe: one lock around every call into the FAISS index (adds and removals are not
    safe against a concurrent search)."""

    def __init__(
        self,
        dim: int,
        *,
        index: Any = None,
        kind: str = FLAT,
        recall: float | None = None,
        fallback_reason: str | None = None,
    ) -> None:
        """``index``: an empty or filled FAISS index taking ids (default: an empty exact flat scan)."""
        self._dim = dim
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim)) if index is None else index
        self._kind = kind
        self._recall = recall
        self._fallback_reason = fallback_reason
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def info(self) -> IndexInfo:
        nprobe = int(self._index.nprobe) if self._kind == IVF_SQ8 else None
        return IndexInfo(self._kind, len(self), nprobe, self._recall, self._fallback_reason)

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
        """The ``k`` nearest ids of each probe; missing neighbours have id -1."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        faiss.omp_set_num_threads(1)  # this thread only: see the module
        with self._lock:
            if self._index.ntotal == 0:
                n = len(vectors)
                return np.full((n, k), -1.0, np.float32), np.full((n, k), -1, np.int64)
            similarities, ids = self._index.search(vectors, k)
        return similarities.astype(np.float32), ids.astype(np.int64)
