"""The analysis keys of a camera (roi, motion, detector_size, tracking): bounded, and a mistake is
reported with its file, line and key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridwatch.core.config.loader import ConfigError, load_config

CAMERA = """
cameras:
  - id: cam
    kind: file
    path: a.mp4
    location_class: lobby
    signage_verified_at: 2026-01-15
{extra}
"""


def load(tmp_path: Path, extra: str) -> None:
    (tmp_path / "gridwatch.yaml").write_text(CAMERA.format(extra=extra))
    load_config(tmp_path / "gridwatch.yaml")


def test_the_analysis_keys_load(tmp_path: Path) -> None:
    (tmp_path / "gridwatch.yaml").write_text(
        CAMERA.format(
            extra="""    roi: [[0.1, 0.2], [0.9, 0.2], [0.9, 1.0], [0.1, 1.0]]
    motion: {enabled: true, max_skip_s: 3}
    detector_size: 320
    tracking: {max_embeddings_per_track: 2}"""
        )
    )
    (camera,) = load_config(tmp_path / "gridwatch.yaml").config.cameras
    assert camera.roi == [(0.1, 0.2), (0.9, 0.2), (0.9, 1.0), (0.1, 1.0)]
    assert (camera.motion.enabled, camera.motion.max_skip_s) == (True, 3.0)
    assert camera.detector_size == 320
    assert camera.tracking.max_embeddings_per_track == 2


@pytest.mark.parametrize(
    ("extra", "line", "key_path"),
    [
        ("    roi: [[0, 0], [1.5, 0], [1, 1]]", 8, "cameras[0].roi[1][0]"),
        ("    roi: [[0, 0], [1, 0]]", 8, "cameras[0].roi"),
        ("    motion: {enabled: true, max_skip_s: 0}", 8, "cameras[0].motion.max_skip_s"),
        ("    detector_size: 300", 8, "cameras[0].detector_size"),
        ("    tracking: {max_embeddings_per_track: 0}", 8, "cameras[0].tracking.max_embeddings_per_track"),
    ],
)
def test_a_bad_value_is_reported_with_its_file_line_and_key(
    tmp_path: Path, extra: str, line: int, key_path: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, extra)
    ((file, at, key),) = [(i.file, i.line, i.key_path) for i in raised.value.issues]
    assert (file.name, at, key) == ("gridwatch.yaml", line, key_path)
