"""A FAISS index of normalised embeddings: inner product = cosine similarity.

Two kinds, chosen per registry by its size at start (``recognition.index_build``):

- ``flat``: ``IndexIDMap2`` over an exact inner-product scan. The default for small registries.
- ``pq4_sq8``: every vector is scanned, but as a 4-bit product-quantisation code (``IndexPQFastScan``,
  32 bytes per 512-d vector, scanned with SIMD lookups); the ``rerank`` best candidates are re-scored on
  8-bit scalar codes (``IndexScalarQuantizer``, 512 bytes per vector) and the similarities returned are
  those. 1M vectors take ~0.6 GB instead of flat float32's 2 GB. An exhaustive scan does not depend on
  how the gallery is clustered: an inverted file (IVF) does, and misses genuine probes (cosine ~0.5 from
  their enrolment) in weakly structured galleries (``benchmarks/search_scale.py``).

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
PQ4_SQ8 = "pq4_sq8"


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """What ``/status`` shows of a registry's index."""

    kind: str
    size: int
    rerank: int | None  # candidates re-scored per probe (compressed kind)
    recall: float | None  # recall@1 against exact search measured at build (None: not measured)
    fallback_reason: str | None  # why a large registry searches exactly (its compressed index missed the recall target)

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "size": self.size,
            "rerank": self.rerank,
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
        rescore: Any = None,
        packed: Any = None,
        rerank: int = 64,
        kind: str = FLAT,
        recall: float | None = None,
        fallback_reason: str | None = None,
    ) -> None:
        """``index``: an empty FAISS index taking ids (default: an exact flat scan). ``rescore``: an empty
        ``IndexIDMap2`` whose reconstructed vectors re-score the ``rerank`` best candidates of ``index``.
        ``packed``: the ``IndexPQFastScan`` inside ``index``, whose freed slots a removal clears."""
        self._dim = dim
        self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dim)) if index is None else index
        self._rescore: Any = rescore
        self._packed: Any = packed
        self.rerank = rerank
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
        rerank = None if self._rescore is None else self.rerank
        return IndexInfo(self._kind, len(self), rerank, self._recall, self._fallback_reason)

    def measured(self, recall: float) -> None:
        """Record the recall@1 the start-up check measured (shown by ``info``)."""
        self._recall = recall

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32]) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self._dim):
            raise ValueError(f"vectors must have shape ({len(ids)}, {self._dim}), got {vectors.shape}")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self._lock:
            self._index.add_with_ids(vectors, ids)
            if self._rescore is not None:
                self._rescore.add_with_ids(vectors, ids)

    def remove(self, ids: npt.NDArray[np.int64]) -> int:
        if len(ids) == 0:
            return 0
        with self._lock:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
            if self._rescore is not None:
                self._rescore.remove_ids(selector)
            removed = int(self._index.remove_ids(selector))
            if self._packed is not None:
                _clear_freed_slots(self._packed)
            return removed

    def search(self, vectors: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The ``k`` nearest ids of each probe; missing neighbours have id -1."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        faiss.omp_set_num_threads(1)  # this thread only: see the module
        with self._lock:
            if self._index.ntotal == 0:
                n = len(vectors)
                return np.full((n, k), -1.0, np.float32), np.full((n, k), -1, np.int64)
            if self._rescore is None:
                similarities, ids = self._index.search(vectors, k)
            else:
                similarities, ids = self._reranked(vectors, k)
        return similarities.astype(np.float32), ids.astype(np.int64)

    def _reranked(
        self, vectors: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The best ``rerank`` (at least ``k``) candidates by their compressed codes, re-scored on the finer
        codes; missing neighbours are -1, as FAISS returns them."""
        _, candidates = self._index.search(vectors, max(k, self.rerank))
        similarities = np.full((len(vectors), k), -np.inf, np.float32)
        ids = np.full((len(vectors), k), -1, np.int64)
        for row, found in enumerate(candidates):
            found = found[found >= 0]
            scores = self._rescore.reconstruct_batch(found) @ vectors[row]
            best = np.argsort(-scores, kind="stable")[:k]
            similarities[row, : len(best)] = scores[best]
            ids[row, : len(best)] = found[best]
        return similarities, ids


def _clear_freed_slots(packed: Any) -> None:
    """Zero the packed 4-bit codes past the last vector of an ``IndexPQFastScan`` after a removal.

    FAISS 1.15's removal moves the codes down but leaves the freed slots as they were, and its ``add``
    ORs new codes into its slots: the first vectors added after a removal would get garbled codes (and
    never be found). Zeroing also leaves no trace of the removed codes in the freed slots.
    """
    packer = packed.get_CodePacker()
    zero = np.zeros(packed.code_size, np.uint8)
    blocks = faiss.rev_swig_ptr(packed.codes.get(), packed.codes.size()).reshape(-1, packer.block_size)
    for slot in range(int(packed.ntotal), int(packed.ntotal2)):
        block = slot // packer.nvec
        packer.pack_1(zero, slot % packer.nvec, blocks[block : block + 1])
