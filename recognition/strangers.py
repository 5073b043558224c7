"""Unknown faces at gates watched by `stranger_at_gate` rules: short-lived look-alike clusters, in memory only.

A face that matched none of the known registries of the stranger rules watching its gate joins the
most similar cluster of that gate (cosine similarity at or above the known registries' threshold) or
opens a new one under a random label. The rules count attempts per (gate, label); the label means
nothing outside this process and nothing can be derived from it.

The vectors live here and nowhere else: never logged, never written, never sent. A cluster not seen
for the window of the rules watching its gate (their longest ``within_s``) is forgotten, and each
gate keeps at most ``max_per_source`` clusters (the least recently seen goes first), so a crowd
cannot grow the memory without end.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MAX_CLUSTERS_PER_SOURCE = 256

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class StrangerWatch:
    """What the stranger rules watching one gate need of recognition (derived from the config)."""

    known_registries: frozenset[str]  # a face that matches one of these is no stranger here
    threshold: float  # cosine similarity that joins a face to a cluster (the known registries' highest)
    window_s: float  # a cluster not seen for this long is forgotten (the rules' longest within_s)


class _Cluster:
    """Look-alike faces of one gate: the sum of their unit vectors (its direction is the centroid)."""

    __slots__ = ("last_seen", "total")

    def __init__(self, vector: npt.NDArray[np.float32], at: float) -> None:
        self.total = np.array(vector, dtype=np.float32, copy=True)
        self.last_seen = at

    def similarity(self, vector: npt.NDArray[np.float32]) -> float:
        norm = float(np.linalg.norm(self.total))
        return float(self.total @ vector) / norm if norm > 0 else 0.0

    def add(self, vector: npt.NDArray[np.float32], at: float) -> None:
        self.total += vector
        self.last_seen = at

    def wipe(self) -> None:
        # Overwritten before it is let go, so the freed memory holds no face.
        self.total.fill(0.0)


class StrangerClusters:
    """Thread-safe: recognition observes from worker threads while the stage's loop forgets."""

    def __init__(
        self,
        watch: Mapping[str, StrangerWatch] | None = None,
        *,
        max_per_source: int = MAX_CLUSTERS_PER_SOURCE,
        clock: Clock = time.monotonic,
    ) -> None:
        self._watch: dict[str, StrangerWatch] = dict(watch or {})
        self._max_per_source = max_per_source
        self._clock = clock
        self._clusters: dict[str, OrderedDict[str, _Cluster]] = {}
        self._lock = threading.Lock()

    def watching(self, source: str) -> StrangerWatch | None:
        """What the stranger rules watching ``source`` need; None when no rule watches it."""
        return self._watch.get(source)

    def reconfigure(self, watch: Mapping[str, StrangerWatch]) -> None:
        """Use new rules (config hot reload); the clusters of a gate no rule watches any more are forgotten."""
        with self._lock:
            self._watch = dict(watch)
            for source in [s for s in self._clusters if s not in self._watch]:
                self._drop(self._clusters.pop(source))

    def observe(self, source: str, vector: npt.NDArray[np.float32], *, threshold: float | None = None) -> str | None:
        """The label of the cluster an unknown face joins or opens at ``source`` (None: no rule watches it).

        ``threshold``: the similarity that joins a cluster now (the recognizer passes the known registries'
        thresholds in use, a `threshold: auto` one solved); the watch's configured one without it.

        ``vector`` is the face's L2-normalised embedding; it is copied into the cluster, never kept by reference.
        """
        watch = self._watch.get(source)
        if watch is None:
            return None
        now = self._clock()
        with self._lock:
            self._purge(now)
            clusters = self._clusters.setdefault(source, OrderedDict())
            best_label, best = None, -1.0
            for label, cluster in clusters.items():
                similarity = cluster.similarity(vector)
                if similarity > best:
                    best_label, best = label, similarity
            if best_label is not None and best >= (watch.threshold if threshold is None else threshold):
                clusters[best_label].add(vector, now)
                clusters.move_to_end(best_label)
                return best_label
            label = uuid.uuid4().hex
            clusters[label] = _Cluster(vector, now)
            while len(clusters) > self._max_per_source:
                _, evicted = clusters.popitem(last=False)
                evicted.wipe()
            return label

    def purge(self) -> int:
        """Forget the clusters past their gate's window now; how many were forgotten."""
        with self._lock:
            return self._purge(self._clock())

    def count(self, source: str | None = None) -> int:
        """Clusters held in memory, at one gate or at all."""
        with self._lock:
            if source is not None:
                return len(self._clusters.get(source, ()))
            return sum(len(clusters) for clusters in self._clusters.values())

    def _purge(self, now: float) -> int:
        forgotten = 0
        for source, clusters in list(self._clusters.items()):
            window_s = self._watch[source].window_s if source in self._watch else 0.0
            for label in [label for label, c in clusters.items() if now - c.last_seen > window_s]:
                clusters.pop(label).wipe()
                forgotten += 1
            if not clusters:
                del self._clusters[source]
        return forgotten

    @staticmethod
    def _drop(clusters: OrderedDict[str, _Cluster]) -> None:
        for cluster in clusters.values():
            cluster.wipe()
        clusters.clear()
