"""The camera entries of ``/status`` carry each camera's lawful-use declarations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from gridwatch.core.config.cameras import FileCameraConfig
from gridwatch.core.interfaces import SourceStatus
from gridwatch.status import camera_declarations, camera_status_dict


def test_each_camera_shows_its_declarations() -> None:
    cameras = [
        FileCameraConfig(
            id="gate-a",
            kind="file",
            path=Path("a.mp4"),
            location_class="compound_entrance",
            signage_verified_at=dt.date(2026, 1, 15),
        ),
        FileCameraConfig(
            id="lobby", kind="file", path=Path("b.mp4"), location_class="lobby", signage_verified_at=dt.date(2026, 3, 1)
        ),
    ]
    declarations = camera_declarations(cameras)
    entry = camera_status_dict(SourceStatus("gate-a", "file"), declarations.get("gate-a"))
    assert entry["declaration"] == {"location_class": "compound_entrance", "signage_verified_at": "2026-01-15"}
    assert declarations["lobby"] == {"location_class": "lobby", "signage_verified_at": "2026-03-01"}
    # A camera still reported while its config entry is gone (being stopped) has no declaration to show.
    assert camera_status_dict(SourceStatus("gone", "rtsp"), declarations.get("gone"))["declaration"] is None
