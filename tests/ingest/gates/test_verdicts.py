"""The gate's own verdict (ISAPI authentication minors, Dahua ``Status``); refusals reach recognition."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridwatch.core.config.gates import DahuaStreamGateConfig, IsapiPushGateConfig
from gridwatch.core.interfaces import GateEvent
from ingest.gates.dahua import DahuaAccessData, parse_access_data, parse_events
from ingest.gates.dahua import to_gate_event as dahua_event_of
from ingest.gates.isapi import parse_notification
from ingest.gates.isapi import to_gate_event as isapi_event_of
from tests.ingest.gates.conftest import PUSH_PASSWORD, PUSH_USER, PushServer
from tests.ingest.polling import eventually
from tests.support import gate_payloads
from tests.support.gate_payloads import face_jpeg, isapi_event, isapi_push_body

FIXTURES = Path(__file__).with_name("fixtures")
RECEIVED = dt.datetime(2024, 5, 1, 1, 0, tzinfo=dt.UTC)
ISAPI = IsapiPushGateConfig.model_validate({"id": "g", "kind": "isapi_push", "username": "u", "password": "p"})
DAHUA = DahuaStreamGateConfig.model_validate({"id": "d", "kind": "dahua_stream", "url": "http://10.0.0.9:8080"})
_serials = itertools.count(7000)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize(
    ("major", "minor", "verdict"),
    [
        pytest.param(5, 75, "granted", id="face-verify-pass"),
        pytest.param(5, 76, "denied", id="face-verify-fail"),
        pytest.param(5, 80, "denied", id="face-recognize-fail"),
        pytest.param(5, 78, "denied", id="employee-and-face-fail"),
        pytest.param(5, 1, "granted", id="legal-card"),
        pytest.param(5, 9, "denied", id="invalid-card"),
        pytest.param(5, 6, "denied", id="card-no-right"),
        pytest.param(5, 21, None, id="door-unlocked-says-nothing"),
        pytest.param(3, 76, None, id="another-major-type"),
    ],
)
def test_isapi_minor_types_give_the_terminal_verdict(major: int, minor: int, verdict: str | None) -> None:
    notification = parse_notification(json.dumps(isapi_event(1, major=major, minor=minor)).encode())
    assert notification.verdict == verdict
    event = isapi_event_of(notification, ISAPI, received_at=RECEIVED, pictures=[])
    assert event.verdict == verdict
    assert event.event_type == f"{major}/{minor}"


def test_the_isapi_face_authentication_failure_fixture_is_a_refusal_with_its_snapshot() -> None:
    stored = fixture("isapi_face_auth_failed.json")
    built = gate_payloads.isapi_event(1, minor=76, employee_no=None, name=None)
    assert set(built["AccessControllerEvent"]) <= set(stored["AccessControllerEvent"])
    notification = parse_notification(json.dumps(stored).encode())

    event = isapi_event_of(notification, ISAPI, received_at=RECEIVED, pictures=[b"face"])

    assert (event.verdict, event.event_type, event.serial, event.event_id) == ("denied", "5/76", 1235, "1235")
    assert event.device_person_id is None  # the terminal knew nobody
    assert event.reaches_recognition


def test_an_isapi_event_without_a_verdict_or_a_picture_does_not_reach_recognition() -> None:
    notification = parse_notification(json.dumps(isapi_event(1, minor=21, pictures=0)).encode())
    event = isapi_event_of(notification, ISAPI, received_at=RECEIVED, pictures=[])
    assert (event.verdict, event.face_image, event.reaches_recognition) == (None, None, False)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        pytest.param(1, "granted", id="opened"),
        pytest.param(0, "denied", id="refused"),
        pytest.param(2, None, id="other"),
    ],
)
def test_dahua_status_gives_the_controller_verdict(status: int, verdict: str | None) -> None:
    text = gate_payloads.dahua_access_text(5, status=status).decode()
    [parsed] = parse_events(text)
    event = dahua_event_of(parse_access_data(parsed), DAHUA, received_at=RECEIVED, face_image=None, action="Pulse")
    assert event.verdict == verdict
    assert event.reaches_recognition is (verdict == "denied")


def test_a_dahua_event_without_status_has_no_verdict() -> None:
    data = DahuaAccessData.model_validate({"RecNo": 9, "Method": 15})
    event = dahua_event_of(data, DAHUA, received_at=RECEIVED, face_image=b"face", action="Pulse")
    assert event.verdict is None


def test_the_dahua_refusal_fixture_maps_to_a_denied_event() -> None:
    stored = fixture("dahua_access_refused.json")
    assert set(gate_payloads.dahua_access_data(1, status=0)) <= set(stored["data"])
    data = DahuaAccessData.model_validate(stored["data"])
    event = dahua_event_of(data, DAHUA, received_at=RECEIVED, face_image=None, action="Pulse")
    assert (event.verdict, event.serial, event.device_person_id) == ("denied", 5679, None)
    assert event.device_time == dt.datetime(2024, 5, 1, 0, 31, 12, tzinfo=dt.UTC)


# --- a refusal reaches the handler even without a picture (a real push server) --------------------


async def post(server: PushServer, event: dict[str, Any], pictures: list[bytes]) -> int:
    body, content_type = isapi_push_body(event, pictures)
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            server.url, content=body, headers={"Content-Type": content_type}, auth=(PUSH_USER, PUSH_PASSWORD)
        )
    return response.status_code


async def test_a_pushed_refusal_reaches_the_handler_with_or_without_a_picture(push_server: PushServer) -> None:
    without, with_face, granted = next(_serials), next(_serials), next(_serials)
    assert await post(push_server, isapi_event(without, minor=76, pictures=0, employee_no=None), []) == 200
    assert await post(push_server, isapi_event(with_face, minor=76, employee_no=None), [face_jpeg("kit")]) == 200
    assert await post(push_server, isapi_event(granted, minor=75, pictures=0), []) == 200  # nothing to do

    await eventually(lambda: len(push_server.events) == 2, 5, "the two refusals")
    assert push_server.counter("events") == 3
    by_serial: dict[int | None, GateEvent] = {e.serial: e for e in push_server.events}
    assert set(by_serial) == {without, with_face}
    assert (by_serial[without].verdict, by_serial[without].face_image) == ("denied", None)
    assert (by_serial[with_face].verdict, by_serial[with_face].face_image) == ("denied", face_jpeg("kit"))
