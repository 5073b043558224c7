"""Build the evaluation set used in the README section "Recognition quality" from the shared test data.

    .venv/bin/python benchmarks/eval_set.py /tmp/gridwatch-eval-set

Writes identity folders: a symlink per shared single-face photo (the `group` folder is left
out: its photos show several people), plus `obama/video_fNNN.png`, crops of the clip's last shot
(frames 216-272, every 8th) around Barack Obama in the audience: real mated probes from video,
small (≈65 px), turned (≈60° yaw) and soft. The crop box was placed by hand around his seat; the
eval counts any crop that does not hold exactly one face. Nothing here goes into the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.paths import CLIP, TESTDATA  # noqa: E402

OBAMA_FRAMES = range(216, 275, 8)
OBAMA_BOX = (0, 230, 255, 388)  # y0, y1, x0, x1 in the 640x360 frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out
    faces = TESTDATA / "faces"
    for folder in sorted(p for p in faces.iterdir() if p.is_dir() and p.name != "group"):
        (out / folder.name).mkdir(parents=True, exist_ok=True)
        for photo in folder.iterdir():
            link = out / folder.name / photo.name
            if not link.exists():
                link.symlink_to(photo)
    capture = cv2.VideoCapture(str(CLIP))
    index, written = 0, 0
    y0, y1, x0, x1 = OBAMA_BOX
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index in OBAMA_FRAMES:
            crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
            cv2.imwrite(str(out / "obama" / f"video_f{index:03d}.png"), crop)
            written += 1
        index += 1
    capture.release()
    print(f"{out}: shared photos linked, {written} video crops of obama written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
