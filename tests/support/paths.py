"""Where the tests find the repository and the shared test data."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# Real photos and a real clip live in `shared/testdata`, beside the repository (not inside it);
# GRIDWATCH_TESTDATA points elsewhere when they are kept somewhere else.
TESTDATA = Path(os.environ.get("GRIDWATCH_TESTDATA", str(REPO_ROOT.parent / "shared" / "testdata")))

CLIP = TESTDATA / "video" / "short_hamilton_clip.mp4"
