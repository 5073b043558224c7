"""Scanners that look for traces of faces in files and records: images and embedding-like vectors.

An embedding is found by its shape, not by its value: any run of ``dim`` consecutive float32
values (at any byte offset) whose squared sum is 1 is counted as a stored unit vector. This
finds vectors however they are stored (SQLite blobs, WAL pages, raw dumps, .npy files).

One known face is also found by its value (``face_traces``): any piece of its embedding, of its
aligned crop or of its photo, wherever it lies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognition.analyzer import ARCFACE_INPUT, InsightFaceAnalyzer
from recognition.enroll import decode_image

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


@dataclass(frozen=True)
class FaceTraces:
    """Byte patterns only a copy of one particular face would contain, by kind.

    - ``vector``: every 16-byte window of its embedding, as float32 and as float64 (4 and 2 values);
    - ``crop``: rows of its aligned 112x112 crop, as the recogniser sees it (raw BGR bytes);
    - ``photo``: 64-byte pieces of the JPEG's compressed body.
    """

    name: str
    needles: dict[str, list[bytes]]

    def found_in(self, data: bytes) -> list[str]:
        """The kinds of trace of this face in ``data``."""
        return [kind for kind, needles in self.needles.items() if any(needle in data for needle in needles)]


def face_traces(analyzer: InsightFaceAnalyzer, photo: Path) -> FaceTraces:
    """The traces of the largest face of ``photo``, computed the way recognition computes them."""
    from insightface.utils import face_align

    data = photo.read_bytes()
    image = decode_image(data, what=photo.name)
    faces = analyzer.detect(image)
    assert len(faces) > 0, f"{photo}: no face"
    largest = int(np.argmax(faces.widths * faces.heights))
    face = faces.select(np.array([largest]))
    embedded = analyzer.embed(image, face)
    assert embedded.embeddings is not None
    vector = embedded.embeddings[0].astype("<f4")
    as_double = vector.astype("<f8")
    crop = face_align.norm_crop(image, landmark=face.landmarks[0], image_size=ARCFACE_INPUT)
    body = data[len(data) // 4 :]
    return FaceTraces(
        photo.name,
        {
            "vector": [vector[i : i + 4].tobytes() for i in range(len(vector) - 3)]
            + [as_double[i : i + 2].tobytes() for i in range(len(as_double) - 1)],
            "crop": [np.ascontiguousarray(crop[row]).tobytes() for row in (24, 56, 88)],
            "photo": [body[i : i + 64] for i in range(0, len(body) - 64, max(len(body) // 16, 64))],
        },
    )
