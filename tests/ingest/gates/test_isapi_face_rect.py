"""ISAPI ``FaceRect`` (normalised 0..1, as some firmwares send it) becomes ``GateEvent.face_rect``; a bad or
empty rectangle is a hint dropped, never a reason to lose the access event."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from gridwatch.core.config.gates import IsapiPushGateConfig
from gridwatch.core.interfaces import FaceRect, GateEvent
from ingest.gates.isapi import parse_notification, to_gate_event
from tests.support.gate_payloads import face_jpeg, isapi_event

ISAPI = IsapiPushGateConfig.model_validate({"id": "g", "kind": "isapi_push", "username": "u", "password": "p"})
RECEIVED = dt.datetime(2024, 5, 1, 1, 0, tzinfo=dt.UTC)


def event_with(rect: Any, *, pictures: int = 1) -> GateEvent:
    payload = isapi_event(3, extra_event={"FaceRect": rect})
    if rect is None:
        del payload["AccessControllerEvent"]["FaceRect"]
    notification = parse_notification(json.dumps(payload).encode())
    return to_gate_event(notification, ISAPI, received_at=RECEIVED, pictures=[face_jpeg()] * pictures)


def test_the_emulators_face_rect_is_parsed() -> None:
    event = event_with({"height": 0.32, "width": 0.21, "x": 0.4, "y": 0.2})
    assert event.face_rect == FaceRect(x=0.4, y=0.2, width=0.21, height=0.32)
    assert event.face_rect.pixels(1000, 500) == pytest.approx((400.0, 100.0, 610.0, 260.0))
    assert event.face_image is not None


@pytest.mark.parametrize(
    "rect",
    [
        pytest.param(None, id="absent"),
        pytest.param({"height": 0, "width": 0, "x": 0, "y": 0}, id="zeros-no-face-located"),
        pytest.param({"height": 1.7, "width": 0.2, "x": 0.1, "y": 0.1}, id="out-of-range"),
        pytest.param({"height": 0.2, "width": 0.2, "x": "left"}, id="malformed"),
        pytest.param("0.1,0.1,0.2,0.2", id="not-an-object"),
    ],
)
def test_no_usable_face_rect_leaves_none_and_keeps_the_event(rect: Any) -> None:
    event = event_with(rect)
    assert event.face_rect is None
    assert (event.serial, event.face_image is not None) == (3, True)


def test_a_face_rect_without_a_picture_is_dropped() -> None:
    assert event_with({"height": 0.3, "width": 0.2, "x": 0.4, "y": 0.2}, pictures=0).face_rect is None


def test_a_face_rect_reaching_past_the_edge_is_clipped() -> None:
    rect = FaceRect(x=0.9, y=0.8, width=0.2, height=0.3)
    assert rect.pixels(100, 100) == pytest.approx((90.0, 80.0, 100.0, 100.0))


@pytest.mark.parametrize(("values", "reason"), [((0.1, 0.1, 0.0, 0.2), "width"), ((-0.1, 0.1, 0.2, 0.2), "0..1")])
def test_a_face_rect_is_normalised_and_not_empty(values: tuple[float, float, float, float], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        FaceRect(*values)
