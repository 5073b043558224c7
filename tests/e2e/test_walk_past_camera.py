"""One walk past a camera, through the whole service: the real clip played once by a file camera,
the performer enrolled in two registries. Counters, not time, say what happened."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from gridwatch.core.config.loader import load_config
from gridwatch.service import Service
from tests.support.e2e import assert_no_trace_of_unmatched_faces, enrol
from tests.support.metrics import sample
from tests.support.paths import CLIP, TESTDATA

pytestmark = pytest.mark.e2e

PERFORMER = TESTDATA / "faces" / "lin_manuel_miranda" / "lin1.png"
MAX_EMBEDDINGS_PER_TRACK = 3
# The performer's frontal faces in the clip score about 0.41-0.65 against this photo, the audience's near 0
# (measured): a threshold of 0.4 makes a match likely even when a loaded machine drops frames.


def write_config(root: Path, camera: str, registries: tuple[str, str]) -> Path:
    config = root / "config"
    config.mkdir()
    entries = "\n".join(
        f"  - {{name: {name}, purpose: walk test, legal_basis: test fixture, retention_days: 1, threshold: 0.4}}"
        for name in registries
    )
    (config / "gridwatch.yaml").write_text(
        f"""
service:
  name: walk
  data_dir: {root / "data"}
cameras:
  - id: {camera}
    kind: file
    location_class: lobby
    signage_verified_at: 2026-01-15
    path: "{CLIP}"
    loop: false
    fps: 3  # recognition keeps up with it on a loaded 2-core machine; more dropped frames split tracks
    tracking: {{max_embeddings_per_track: {MAX_EMBEDDINGS_PER_TRACK}}}
registries:
{entries}
rules:
  - {{id: seen-{registries[0]}, kind: seen, registries: [{registries[0]}], cooldown_s: 3600}}
notifier:
  console: {{enabled: true}}
"""
    )
    return config


async def test_one_walk_past_a_camera_is_one_sighting_per_registry_and_matched_track(tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:6]
    camera, registries = f"walk-{uid}", (f"watch-{uid}", f"residents-{uid}")
    config = write_config(tmp_path, camera, registries)
    for registry in registries:
        enrol(config, PERFORMER, "Performer", registry=registry)
    service = Service(load_config(config))
    await service.start()
    try:
        async with asyncio.timeout(120):
            while not service.status()["cameras"][0].get("ended"):  # type: ignore[index]
                await asyncio.sleep(0.2)
            # The last frame handed over is recognised before the service stops (and ends the tracks).
            delivered = -1
            while delivered != service.camera_status()[0].frames_out:
                delivered = service.camera_status()[0].frames_out
                await asyncio.sleep(1.0)
    finally:
        await service.stop()

    matched = sample("gridwatch_tracks_total", source=camera, outcome="matched")
    ended = sum(
        sample("gridwatch_tracks_total", source=camera, outcome=outcome)
        for outcome in ("matched", "unmatched", "unembedded")
    )
    counts = (
        {
            name: sample(name, source=camera)
            for name in (
                "gridwatch_faces_detected_total",
                "gridwatch_faces_gated_total",
                "gridwatch_faces_embedded_total",
            )
        }
        | {
            outcome: sample("gridwatch_tracks_total", source=camera, outcome=outcome)
            for outcome in ("matched", "unmatched", "unembedded")
        }
        | {"sightings": sample("gridwatch_sightings_total", registry=registries[0], source_kind="camera")}
    )
    assert matched >= 1, counts
    for registry in registries:
        # One sighting per registry and matched track, however many frames showed the performer (one pass
        # of the performer is one track when no frame is dropped: tests/recognition/test_tracks.py).
        assert sample("gridwatch_sightings_total", registry=registry, source_kind="camera") == matched
    assert sample("gridwatch_faces_embedded_total", source=camera) <= ended * MAX_EMBEDDINGS_PER_TRACK
    assert sample("gridwatch_faces_detected_total", source=camera) > 2 * sample(
        "gridwatch_faces_embedded_total", source=camera
    )
    assert_no_trace_of_unmatched_faces(tmp_path / "data", enrolled=1)
