"""The JSON shapes of camera and gate health in ``/status``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from gridwatch.core.config.cameras import CameraConfig
from gridwatch.core.interfaces import SourceStatus


def camera_declarations(cameras: Iterable[CameraConfig]) -> dict[str, dict[str, object]]:
    """Each camera's lawful-use declarations by camera id, as an auditor reads them in ``/status``."""
    return {
        camera.id: {
            "location_class": camera.location_class,
            "signage_verified_at": camera.signage_verified_at.isoformat(),
        }
        for camera in cameras
    }


def camera_status_dict(status: SourceStatus, declaration: dict[str, object] | None = None) -> dict[str, object]:
    """``declaration``: the camera's entry of ``camera_declarations`` (None: a camera no longer configured)."""

    def iso(value: dt.datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return {
        "id": status.source_id,
        "kind": status.kind,
        "state": str(status.state),
        "last_frame_at": iso(status.last_frame_at),
        "last_error": status.last_error,
        "reconnects": status.reconnects,
        "frames_in": status.frames_in,
        "frames_out": status.frames_out,
        "frames_dropped": status.frames_dropped,
        "fps_in": round(status.fps_in, 2),
        "fps_out": round(status.fps_out, 2),
        "declaration": declaration,
        **status.extra,
    }


def gate_status_dict(status: SourceStatus, dropped: int) -> dict[str, object]:
    extra = dict(status.extra)
    return {
        "id": status.source_id,
        "kind": status.kind,
        "state": str(status.state),
        "connected": bool(extra.pop("connected", False)),
        "last_event_at": None if status.last_frame_at is None else status.last_frame_at.isoformat(),
        "last_error": status.last_error,
        "heartbeats": extra.pop("heartbeats", 0),
        "events": extra.pop("events", status.frames_in),
        "events_per_minute": extra.pop("events_per_minute", 0),
        "rejected": extra.pop("rejected", 0),
        "reconnects": status.reconnects,
        "dropped": dropped,
        **extra,
    }
