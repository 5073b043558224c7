"""1:N search at scale: the index each registry gets by its size, against the exact flat scan.

Per gallery and size: a gallery of unit 512-d vectors (``recognition.index_galleries``):

- ``random``: uniformly random unit vectors (no structure: the worst case for an inverted file);
- ``clustered``: ``size / 500`` random centres, each vector at cosine ~0.5 from its centre and ~0.25 from
  its cluster's other vectors (people who look alike), ~0 from the rest;

and ``--probes`` mated probes, each a random gallery vector perturbed to a cosine drawn uniformly in
0.45–0.7 (a genuine probe's similarity to its enrolment). Measured, in order:

- exact neighbours of every probe (``faiss.knn``, every core): the reference of recall@1;
- baseline: the exact flat scan (``FaissIndex``, as before this index work), single probes on one thread,
  over ``--exact-probes`` probes (it is slow at 1M): p50/p99 ms;
- the policy's index (``recognition.index_build.build_index`` with the default ``IndexPolicy``, as the
  service builds it at start): build time (training, adding, the start-up recall check), its kind,
  its re-scoring depth, or why it fell back to exact search; RSS growth and the index's bytes; single-probe p50/p99
  on one thread over every probe (``--exact-probes`` if it is exact), recall@1 against exact search;
- p50/p99 are wall-clock; ``cpu_p99_ms`` is the search thread's CPU time, which on a shared machine
  leaves out the time other processes held the core (cache contention stays in);
- removal of 1% of the ids (one ``remove`` call), as an erasure batch or the expiry purge does.

Printed: a line per gallery and size, with ``ratio_p99`` = baseline p99 / index p99; last, one JSON line
with every figure. Nothing is asserted. Timings on a shared machine are pessimistic.

    .venv/bin/python benchmarks/search_scale.py [--sizes 10000,100000,1000000] [--probes 300] [--exact-probes 100]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

from recognition.index import PQ4_SQ8, FaissIndex
from recognition.index_build import IndexPolicy, build_index, mated_probes
from recognition.index_galleries import GALLERIES, gallery

DIM = 512


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def index_bytes(index: FaissIndex) -> int:
    """What the index holds: codes and ids (not the hash map from id to position of the re-scoring codes)."""
    info = index.info
    if info.kind == PQ4_SQ8:
        return info.size * (IndexPolicy().subquantizers // 2 + 8 + DIM + 8)
    return info.size * (DIM * 4 + 8)


def latencies_ms(
    index: FaissIndex, probes: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Single probes, one at a time, one thread (``FaissIndex.search`` pins its thread to one): wall-clock
    and the thread's CPU time per probe (the latter does not count the time other processes held the core)."""
    times, cpu_times, found = [], [], []
    index.search(probes[:1], 1)  # warm-up
    for row in range(len(probes)):
        start, cpu_start = time.perf_counter(), time.thread_time()
        _, ids = index.search(probes[row : row + 1], 1)
        cpu_times.append((time.thread_time() - cpu_start) * 1e3)
        times.append((time.perf_counter() - start) * 1e3)
        found.append(int(ids[0, 0]))
    return np.array(times), np.array(cpu_times), np.array(found, dtype=np.int64)


def measure(kind: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    vectors = gallery(kind, rng, size, DIM)
    ids = np.arange(size, dtype=np.int64)
    mates = rng.choice(size, args.probes, replace=False)
    probes = mated_probes(rng, vectors[mates], 0.45, 0.7)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    _, exact = faiss.knn(probes, vectors, 1, faiss.METRIC_INNER_PRODUCT)
    exact_ids = exact[:, 0].astype(np.int64)

    baseline = FaissIndex(DIM)
    baseline.add(ids, vectors)
    exact_times, exact_cpu, _ = latencies_ms(baseline, probes[: args.exact_probes])
    del baseline
    gc.collect()

    rss_before = rss_bytes()
    start = time.perf_counter()
    index = build_index(DIM, ids, vectors, IndexPolicy(), name=f"{kind}-{size}")
    build_s = time.perf_counter() - start
    rss_growth = rss_bytes() - rss_before
    info = index.info
    timed = probes if info.kind == PQ4_SQ8 else probes[: args.exact_probes]
    times, cpu, found = latencies_ms(index, timed)
    recall = float((found == exact_ids[: len(timed)]).mean())

    removed = rng.choice(size, size // 100, replace=False).astype(np.int64)
    start = time.perf_counter()
    index.remove(removed)
    remove_s = time.perf_counter() - start

    p99, exact_p99 = float(np.percentile(times, 99)), float(np.percentile(exact_times, 99))
    return {
        "gallery": kind,
        "size": size,
        "kind": info.kind,
        "rerank": info.rerank,
        "fallback_reason": info.fallback_reason,
        "start_check_recall": info.recall,
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(p99, 3),
        "cpu_p50_ms": round(float(np.percentile(cpu, 50)), 3),
        "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 3),
        "recall_at_1": round(recall, 4),
        "mate_is_exact_top1": round(float((exact_ids == mates).mean()), 4),
        "build_s": round(build_s, 2),
        "remove_1pct_s": round(remove_s, 4),
        "index_mb": round(index_bytes(index) / 2**20, 1),
        "rss_growth_mb": round(rss_growth / 2**20, 1),
        "exact_p50_ms": round(float(np.percentile(exact_times, 50)), 3),
        "exact_p99_ms": round(exact_p99, 3),
        "exact_cpu_p99_ms": round(float(np.percentile(exact_cpu, 99)), 3),
        "ratio_p99": round(exact_p99 / p99, 2),
        "ratio_cpu_p99": round(float(np.percentile(exact_cpu, 99) / np.percentile(cpu, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="gallery sizes, comma-separated")
    parser.add_argument("--galleries", default=",".join(GALLERIES), help="random and/or clustered")
    parser.add_argument("--probes", type=int, default=300, help="mated probes per size")
    parser.add_argument("--exact-probes", type=int, default=100, help="probes timed on an exact scan")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        for kind in args.galleries.split(","):
            result = measure(kind, size, args)
            results.append(result)
            print(
                f"{kind:9} {size:>8}: {result['kind']:7} rerank {result['rerank']}  "
                f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms (CPU {result['cpu_p99_ms']:.2f})  "
                f"recall@1 {result['recall_at_1']:.4f}  "
                f"build {result['build_s']:.1f} s  remove 1% {result['remove_1pct_s'] * 1e3:.1f} ms  "
                f"index {result['index_mb']:.0f} MB (RSS +{result['rss_growth_mb']:.0f} MB)  |  "
                f"exact p50 {result['exact_p50_ms']:.2f} ms  p99 {result['exact_p99_ms']:.2f} ms "
                f"(CPU {result['exact_cpu_p99_ms']:.2f})  → ratio p99 {result['ratio_p99']:.1f}× "
                f"(CPU {result['ratio_cpu_p99']:.1f}×)"
                + (f"  [fallback: {result['fallback_reason']}]" if result["fallback_reason"] else ""),
                flush=True,
            )
            gc.collect()
    machine = {"cpus": os.cpu_count(), "machine": platform.machine(), "faiss": faiss.__version__}
    print(json.dumps({"benchmark": "search_scale", "machine": machine, "results": results}))


if __name__ == "__main__":
    main()
