"""Choose and build a registry's index by its size, and check its recall at start.

Below ``IndexPolicy.ivf_min_size`` vectors the exact flat scan is fast enough (its cost grows with the
registry: ~1.6 ms per probe per 10k vectors on one core), so it stays. From there on an IVF-SQ8 index
is trained on a sample of the registry's own vectors, filled, and checked: a sample of stored vectors
perturbed to cosine 0.5–0.6 (a genuine probe's similarity to its enrolment) is searched both exactly and
with the IVF at growing ``nprobe``; the first ``nprobe`` whose recall@1 reaches the target is kept. If
none does within the scan budget (``max_scanned``), the registry falls back to exact search and says why
(the log, and ``/status`` through ``FaissIndex.info``). Gallery that lacks structure, e.g. uniformly
random unit vectors, is the case that falls back: an inverted file cannot find a neighbour at cosine 0.5
without scanning most of it.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt

from recognition.index import FLAT, IVF_SQ8, FaissIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexPolicy:
    """How a registry's index is chosen and checked (measured: ``benchmarks/search_scale.py``)."""

    ivf_min_size: int = 20_000  # below: exact flat scan (≤ ~3 ms per probe on one core)
    recall_target: float = 0.99  # recall@1 against exact search, for probes at cosine 0.5–0.6
    recall_sample: int = 300  # probes of the start-up recall check
    max_lists: int = 1024  # IVF lists: ~sqrt(size), capped so that training stays in seconds at 1M
    train_per_list: int = 40  # training sample = lists × this (k-means needs ~40 points per centroid)
    train_iterations: int = 10
    min_nprobe: int = 8
    max_scanned: int = 40_000  # vectors one probe may scan (nprobe × size / lists): ~4 ms of SQ8 on one core
    seed: int = 0

    def lists_for(self, size: int) -> int:
        return max(16, min(self.max_lists, int(math.sqrt(size))))

    def nprobes_for(self, size: int, lists: int) -> list[int]:
        """Doubling from ``min_nprobe`` up to the scan budget (or every list)."""
        top = min(lists, max(1, self.max_scanned * lists // max(size, 1)))
        nprobes, nprobe = [], min(self.min_nprobe, top)
        while nprobe < top:
            nprobes.append(nprobe)
            nprobe *= 2
        return [*nprobes, top]


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
    """The index for these vectors (exact below the policy's size, else a checked IVF-SQ8 or the fallback)."""
    if len(ids) < policy.ivf_min_size:
        index = FaissIndex(dim)
        index.add(ids, vectors)
        return index
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building uses every core (this thread only)
    rng = np.random.default_rng(policy.seed)
    ivf = _trained_ivf(dim, vectors, policy, rng)
    ivf.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
    nprobe, recall = _calibrate(ivf, ids, vectors, policy, rng)
    if recall >= policy.recall_target:
        ivf.nprobe = nprobe
        log.info("registry %s: IVF-SQ8 index, %d vectors, nprobe %d, recall@1 %.3f", name, len(ids), nprobe, recall)
        return FaissIndex(dim, index=ivf, kind=IVF_SQ8, recall=recall)
    reason = (
        f"recall@1 {recall:.3f} < {policy.recall_target} at nprobe {nprobe} of {ivf.nlist} lists ({len(ids)} vectors)"
    )
    log.warning("registry %s: IVF index cannot reach its recall target, exact search instead: %s", name, reason)
    del ivf
    index = FaissIndex(dim, kind=FLAT, recall=1.0, fallback_reason=reason)
    index.add(ids, vectors)
    return index


def _trained_ivf(
    dim: int, vectors: npt.NDArray[np.float32], policy: IndexPolicy, rng: np.random.Generator
) -> faiss.IndexIVFScalarQuantizer:
    """An IVF-SQ8 index trained on a sample of the vectors (the Python wrapper keeps the quantizer alive)."""
    lists = policy.lists_for(len(vectors))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, lists, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    ivf.cp.niter = policy.train_iterations
    ivf.cp.seed = policy.seed
    sample = min(len(vectors), lists * policy.train_per_list)
    rows = np.sort(rng.choice(len(vectors), sample, replace=False))
    ivf.train(vectors[rows])
    return ivf


def _calibrate(
    ivf: faiss.IndexIVFScalarQuantizer,
    ids: npt.NDArray[np.int64],
    vectors: npt.NDArray[np.float32],
    policy: IndexPolicy,
    rng: np.random.Generator,
) -> tuple[int, float]:
    """The smallest ``nprobe`` in the budget reaching the recall target, with its recall (else the last tried)."""
    rows = rng.choice(len(vectors), min(len(vectors), policy.recall_sample), replace=False)
    probes = mated_probes(rng, vectors[rows], 0.5, 0.6)
    _, exact = faiss.knn(probes, vectors, 1, faiss.METRIC_INNER_PRODUCT)
    exact_ids = ids[exact[:, 0]]
    nprobe, recall = 0, 0.0
    for nprobe in policy.nprobes_for(len(vectors), ivf.nlist):
        ivf.nprobe = nprobe
        _, found = ivf.search(probes, 1)
        recall = float((found[:, 0] == exact_ids).mean())
        if recall >= policy.recall_target:
            break
    return nprobe, recall
