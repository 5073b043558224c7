"""Choose and build a registry's index by its size, and check its recall at start.

Below ``IndexPolicy.compressed_min_size`` vectors the exact flat scan is fast enough (its cost grows with
the registry: ~1.5 ms per probe at 10k vectors, ~4.5 ms at 20k, on one core), so it stays. From there on the compressed
kind (``recognition.index``: a 4-bit PQ fast scan of every vector, its best candidates re-scored on 8-bit
codes) is trained on a sample of the registry's own vectors, filled, and checked: a sample of stored
vectors perturbed to cosine 0.5–0.6 (a genuine probe's similarity to its enrolment) is searched both
exactly and with the index at growing re-scoring depth; the first depth whose recall@1 reaches the target
is kept. If none does, the registry falls back to exact search and says why (the log, and ``/status``
through ``FaissIndex.info``).

Why not an inverted file (IVF-SQ8, measured by ``benchmarks/search_scale.py``): a genuine probe lies at
cosine ~0.5 from its enrolment, so the IVF finds it only if the gallery is strongly clustered; on random
unit vectors, and on a 1M clustered gallery with 2000 clusters, it reached recall@1 0.80–0.95 while
scanning 4–40% of the lists.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt

from recognition.index import FLAT, PQ4_SQ8, FaissIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexPolicy:
    """How a registry's index is chosen and checked (measured: ``benchmarks/search_scale.py``)."""

    compressed_min_size: int = 10_000  # below: exact flat scan (≤ ~1.5 ms per probe on one core)
    recall_target: float = 0.99  # recall@1 against exact search, for probes at cosine 0.5–0.6
    recall_sample: int = 300  # probes of the start-up recall check
    train_sample: int = 20_000  # vectors the codebooks are trained on
    subquantizers: int = 64  # PQ sub-vectors of 4 bits each: 32 bytes per vector
    rerank_depths: tuple[int, ...] = (32, 64, 128, 256)  # tried in order by the start-up check
    seed: int = 0


def mated_probes(
    rng: np.random.Generator, vectors: npt.NDArray[np.float32], low: float, high: float
) -> npt.NDArray[np.float32]:
    """One unit probe per vector, at a cosine drawn uniformly in [low, high] from it (a genuine probe)."""
    cosine = rng.uniform(low, high, len(vectors)).astype(np.float32)[:, None]
    noise = rng.standard_normal(vectors.shape).astype(np.float32)
    noise -= (noise * vectors).sum(axis=1, keepdims=True) * vectors  # orthogonal to the vector
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return np.ascontiguousarray(cosine * vectors + np.sqrt(1.0 - cosine**2) * noise, dtype=np.float32)


def build_index(
    dim: int,
    ids: npt.NDArray[np.int64],
    vectors: npt.NDArray[np.float32],
    policy: IndexPolicy,
    *,
    name: str = "",
) -> FaissIndex:
    """The index for these vectors (exact below the policy's size, else a checked compressed index or the
    exact fallback)."""
    if len(ids) < policy.compressed_min_size:
        index = FaissIndex(dim)
        index.add(ids, vectors)
        return index
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building uses every core (this thread only)
    rng = np.random.default_rng(policy.seed)
    index = _compressed(dim, vectors, policy, rng)
    index.add(ids, vectors)
    rerank, recall = _calibrate(index, ids, vectors, policy, rng)
    if recall >= policy.recall_target:
        log.info("registry %s: PQ4+SQ8 index, %d vectors, rerank %d, recall@1 %.3f", name, len(ids), rerank, recall)
        return index
    reason = f"recall@1 {recall:.3f} < {policy.recall_target} re-scoring {rerank} candidates ({len(ids)} vectors)"
    log.warning("registry %s: compressed index cannot reach its recall target, exact search instead: %s", name, reason)
    del index
    fallback = FaissIndex(dim, kind=FLAT, recall=1.0, fallback_reason=reason)
    fallback.add(ids, vectors)
    return fallback


def _compressed(
    dim: int, vectors: npt.NDArray[np.float32], policy: IndexPolicy, rng: np.random.Generator
) -> FaissIndex:
    """An empty compressed index, its codebooks trained on a sample (the wrappers keep inner indexes alive)."""
    sample = vectors[np.sort(rng.choice(len(vectors), min(len(vectors), policy.train_sample), replace=False))]
    scan = faiss.IndexPQFastScan(dim, policy.subquantizers, 4, faiss.METRIC_INNER_PRODUCT)
    scan.train(sample)
    rescore = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    rescore.train(sample)
    return FaissIndex(
        dim,
        index=faiss.IndexIDMap(scan),
        rescore=faiss.IndexIDMap2(rescore),
        packed=scan,
        rerank=policy.rerank_depths[0],
        kind=PQ4_SQ8,
    )


def _calibrate(
    index: FaissIndex,
    ids: npt.NDArray[np.int64],
    vectors: npt.NDArray[np.float32],
    policy: IndexPolicy,
    rng: np.random.Generator,
) -> tuple[int, float]:
    """The smallest re-scoring depth reaching the recall target, with its recall (else the deepest tried);
    the index keeps that depth and its recall."""
    rows = rng.choice(len(vectors), min(len(vectors), policy.recall_sample), replace=False)
    probes = mated_probes(rng, vectors[rows], 0.5, 0.6)
    _, exact = faiss.knn(probes, vectors, 1, faiss.METRIC_INNER_PRODUCT)
    exact_ids = ids[exact[:, 0]]
    recall = 0.0
    for depth in policy.rerank_depths:
        index.rerank = depth
        _, found = index.search(probes, 1)
        recall = float((found[:, 0] == exact_ids).mean())
        if recall >= policy.recall_target:
            break
    index.measured(recall)
    return index.rerank, recall
