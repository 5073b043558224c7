"""Scanners that look for traces of faces in files: images and embedding-like vectors.

An embedding is found by its shape, not by its value: any run of ``dim`` consecutive float32
values (at any byte offset) whose squared sum is 1 is counted as a stored unit vector. This
finds vectors however they are stored (SQLite blobs, WAL pages, raw dumps, .npy files).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_MAGIC = {
    "jpeg": b"\xff\xd8\xff",
    "png": b"\x89PNG\r\n\x1a\n",
    "webp": b"WEBP",
    "bmp-dib": b"BM6",
}


def image_signatures(data: bytes) -> list[str]:
    return [name for name, magic in IMAGE_MAGIC.items() if magic in data]


def unit_vectors(data: bytes, dim: int = 512, tol: float = 1e-4) -> set[bytes]:
    """The distinct unit-norm float32 vectors of length ``dim`` stored anywhere in ``data``."""
    found: set[bytes] = set()
    for offset in range(4):
        usable = (len(data) - offset) // 4
        if usable < dim:
            continue
        with np.errstate(invalid="ignore", over="ignore"):
            values = np.frombuffer(data, dtype="<f4", count=usable, offset=offset).astype(np.float64)
            plausible = np.isfinite(values) & (np.abs(values) < 1.0)
            squares = np.where(plausible, values * values, 10.0)  # an implausible value spoils its windows
        window = np.ones(dim)
        sums = np.convolve(squares, window, mode="valid")
        nonzero = np.convolve((np.abs(values) > 1e-6).astype(np.float64), window, mode="valid")
        candidates = np.flatnonzero((np.abs(sums - 1.0) < tol) & (nonzero > dim * 0.9))
        # Windows shifted by a value or two around a stored vector also sum to about 1: keep the
        # best window of each cluster of overlapping candidates.
        cluster: list[int] = []
        for start in [*candidates.tolist(), None]:
            if cluster and (start is None or start - cluster[-1] >= dim):
                best = min(cluster, key=lambda s: abs(sums[s] - 1.0))
                found.add(np.round(values[best : best + dim], 3).astype(np.float32).tobytes())
                cluster = []
            if start is not None:
                cluster.append(start)
    return found


def scan_tree(root: Path, dim: int = 512) -> tuple[dict[str, list[str]], set[bytes]]:
    """Image signatures per file, and the distinct unit vectors in all files under ``root``."""
    images: dict[str, list[str]] = {}
    vectors: set[bytes] = set()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if sigs := image_signatures(data):
            images[str(path.relative_to(root))] = sigs
        vectors |= unit_vectors(data, dim)
    return images, vectors
