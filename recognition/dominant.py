"""The dominant face of an image: the subject, when an image shows several faces.

Enrolment photos and gate snapshots often show a second face in the background. The subject is
taken to be:

- with a terminal's ``FaceRect`` (gate events): the one face whose centre lies inside that
  rectangle (if several do, the largest of those by the margin below);
- otherwise the largest face, when its shorter box side is at least ``DOMINANCE_RATIO`` times that
  of the next largest (1.5: a face at least 2.25 times the area).

Anything else is ambiguous and refused, with the reason. The choice is reported in words, so that
an operator (or the eval report) can see which face was used and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridwatch.core.faces import Faces

DOMINANCE_RATIO = 1.5


@dataclass(frozen=True, slots=True)
class DominantFace:
    """``index`` of the face used (None: refused) and, in words, why."""

    index: int | None
    faces: int
    reason: str

    @property
    def chosen(self) -> bool:
        return self.index is not None


def dominant_face(
    faces: Faces,
    *,
    face_rect: tuple[float, float, float, float] | None = None,
    ratio: float = DOMINANCE_RATIO,
) -> DominantFace:
    """The subject among ``faces`` (boxes ``x1, y1, x2, y2``); ``face_rect`` in the same pixels."""
    n = len(faces)
    if n == 0:
        return DominantFace(None, 0, "no face found")
    sides = np.minimum(faces.widths, faces.heights).astype(np.float64)
    candidates = np.arange(n)
    where = ""
    if face_rect is not None:
        x1, y1, x2, y2 = face_rect
        cx = (faces.boxes[:, 0] + faces.boxes[:, 2]) / 2
        cy = (faces.boxes[:, 1] + faces.boxes[:, 3]) / 2
        candidates = np.flatnonzero((cx >= x1) & (cx <= x2) & (cy >= y1) & (cy <= y2))
        if len(candidates) == 0:
            return DominantFace(None, n, f"{n} face(s) found, none inside the terminal's FaceRect")
        if len(candidates) == 1:
            return DominantFace(int(candidates[0]), n, f"{n} faces found; used the one inside the terminal's FaceRect")
        where = " inside the terminal's FaceRect"
    if len(candidates) == 1:
        return DominantFace(int(candidates[0]), n, "one face")
    order = candidates[np.argsort(sides[candidates])[::-1]]
    first, second = sides[order[0]], sides[order[1]]
    if first >= ratio * second:
        return DominantFace(
            int(order[0]),
            n,
            f"{n} faces found{where}; used the largest ({first:.0f} px, {first / second:.1f}x the next, "
            f"{second:.0f} px)",
        )
    return DominantFace(
        None,
        n,
        f"{n} faces found{where}, none clearly the subject (the largest, {first:.0f} px, is not {ratio:g}x "
        f"the next, {second:.0f} px); use a photo of one person",
    )
