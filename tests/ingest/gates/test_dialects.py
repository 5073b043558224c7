"""Payload fixtures of each dialect, and their mapping to ``GateEvent`` (unit level)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from gridwatch.core.config.gates import DahuaStreamGateConfig, IsapiPushGateConfig
from gridwatch.core.interfaces import SourceStatus
from ingest.gates.common import PayloadRejected
from ingest.gates.dahua import (
    DahuaEvent,
    direction_of,
    is_heartbeat,
    parse_access_data,
    parse_events,
    snapshot_url,
)
from ingest.gates.dahua import to_gate_event as dahua_event
from ingest.gates.isapi import parse_notification
from ingest.gates.isapi import to_gate_event as isapi_event_of
from ingest.gates.serials import SerialTracker
from tests.support import gate_payloads

FIXTURES = Path(__file__).with_name("fixtures")
RECEIVED = dt.datetime(2024, 5, 1, 1, 0, tzinfo=dt.UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def isapi_config(**overrides: Any) -> IsapiPushGateConfig:
    values: dict[str, Any] = {"id": "g", "kind": "isapi_push", "username": "u", "password": "p"} | overrides
    return IsapiPushGateConfig.model_validate(values)


def dahua_config(**overrides: Any) -> DahuaStreamGateConfig:
    values: dict[str, Any] = {"id": "d", "kind": "dahua_stream", "url": "http://10.0.0.9:8080"} | overrides
    return DahuaStreamGateConfig.model_validate(values)


@pytest.mark.parametrize(
    ("name", "built"),
    [
        ("isapi_access_controller_event.json", gate_payloads.isapi_event(1)),
        ("isapi_heartbeat.json", gate_payloads.isapi_heartbeat()),
        ("dahua_access_control.json", {"data": gate_payloads.dahua_access_data(1)}),
        ("mqtt_capture.json", json.loads(gate_payloads.mqtt_capture(device_no="x", sequence_no=1, picture=b""))),
    ],
)
def test_the_builders_make_the_fixture_shapes(name: str, built: dict[str, Any]) -> None:
    stored = fixture(name)
    assert set(built) <= set(stored)
    if "AccessControllerEvent" in built:
        assert set(built["AccessControllerEvent"]) <= set(stored["AccessControllerEvent"])
    if "data" in built:
        assert set(built["data"]) <= set(stored["data"])


def test_the_isapi_fixture_maps_to_a_gate_event_and_keeps_unknown_fields() -> None:
    notification = parse_notification((FIXTURES / "isapi_access_controller_event.json").read_bytes())
    assert notification.is_access_event
    assert not notification.is_heartbeat
    assert notification.access is not None
    assert notification.access.model_extra is not None
    assert notification.access.model_extra["frontSerialNo"] == 1233
    config = isapi_config(doors=[{"door": "1", "direction": "out"}], timezone="Europe/Berlin")

    event = isapi_event_of(notification, config, received_at=RECEIVED, pictures=[b"face"])

    assert (event.gate_id, event.door, event.direction, event.serial) == ("g", "1", "out", 1234)
    assert (event.verify_mode, event.device_person_id, event.card_no) == ("face", "1001", "3209876543")
    assert event.event_type == "5/75"
    assert event.face_image == b"face"
    assert event.device_time == dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)


def test_the_isapi_heartbeat_fixture_is_a_heartbeat() -> None:
    assert parse_notification((FIXTURES / "isapi_heartbeat.json").read_bytes()).is_heartbeat


@pytest.mark.parametrize(
    ("doors", "default", "door", "reader", "expected"),
    [
        ([{"door": "1", "direction": "in"}], None, 1, 2, "in"),
        ([{"door": "2", "direction": "out"}], "in", 1, 2, "out"),  # the reader's entry when the door has none
        ([], "in", 1, 2, "in"),
        ([], None, None, None, None),
    ],
)
def test_isapi_direction_comes_from_the_config(
    doors: list[dict[str, str]], default: str | None, door: int | None, reader: int | None, expected: str | None
) -> None:
    raw = json.dumps(gate_payloads.isapi_event(1, door=door, card_reader=reader)).encode()
    event = isapi_event_of(
        parse_notification(raw), isapi_config(doors=doors, default_direction=default), received_at=RECEIVED, pictures=[]
    )
    assert event.direction == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"null", "not an object"),
        (b'{"eventType": 5}', "eventType"),
        (b'{"eventType": "AccessControllerEvent", "AccessControllerEvent": {"serialNo": -1}}', "serialNo"),
        (b'{"eventType": "AccessControllerEvent", "AccessControllerEvent": {"picturesNumber": 99}}', "picturesNumber"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_unusable_isapi_json_is_rejected_without_echoing_values(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadRejected) as caught:
        parse_notification(raw)
    assert reason in caught.value.reason
    assert "input_value" not in caught.value.reason


def test_the_dahua_fixture_maps_to_a_gate_event() -> None:
    stored = fixture("dahua_access_control.json")
    data_text = json.dumps(stored["data"], indent=3)
    text = f"Code={stored['Code']};action={stored['action']};index={stored['index']};data={data_text}"
    [line] = parse_events(text)
    assert (line.code, line.action, line.index) == ("AccessControl", "Pulse", 0)
    data = parse_access_data(line)
    assert data.model_extra is not None
    assert data.model_extra["SimilarityScore"] == 93

    event = dahua_event(data, dahua_config(), received_at=RECEIVED, face_image=b"jpeg", action=line.action)

    assert (event.door, event.direction, event.serial, event.verify_mode) == ("1", "in", 5678, "face")
    assert event.device_time == dt.datetime.fromtimestamp(1714523400, dt.UTC)
    assert (event.device_person_id, event.card_no, event.event_type) == ("1001", "3209876543", "AccessControl/Pulse")


def test_several_dahua_events_in_one_part_and_heartbeats() -> None:
    text = (gate_payloads.dahua_access_text(1) + gate_payloads.dahua_access_text(2, entry=False)).decode()
    events = parse_events(text)
    assert [parse_access_data(event).rec_no for event in events] == [1, 2]
    assert is_heartbeat("Heartbeat\r\n")
    assert not is_heartbeat(text)
    assert parse_events("Code=VideoMotion;action=Start;index=0") == [DahuaEvent("VideoMotion", "Start", 0, None)]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hello", "is not 'Code="),
        ("Code=AccessControl;action=Pulse;index=0;data={broken", "invalid JSON"),
        ("Code=AccessControl;action=Pulse;index=0;data=[1]", "not a JSON object"),
        ("   ", "empty"),
    ],
)
def test_unreadable_dahua_text_is_rejected(text: str, reason: str) -> None:
    with pytest.raises(PayloadRejected) as caught:
        parse_events(text)
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("doors", "default", "kind", "expected"),
    [
        ([{"door": "1", "direction": "out"}], None, "Entry", "out"),  # the configured reader wins
        ([], None, "Entry", "in"),
        ([], None, "Exit", "out"),
        ([], "in", "Unknown", "in"),
    ],
)
def test_dahua_direction(doors: list[dict[str, str]], default: str | None, kind: str, expected: str) -> None:
    data = parse_access_data(
        DahuaEvent("AccessControl", "Pulse", 0, gate_payloads.dahua_access_data(1) | {"Type": kind})
    )
    assert direction_of(data, dahua_config(doors=doors, default_direction=default)) == expected


@pytest.mark.parametrize(
    ("snap", "expected"),
    [
        (
            "/mnt/appdata1/userpic/SnapShot/1.jpg",
            "http://10.0.0.9:8080/cgi-bin/RPC_Loadfile/mnt/appdata1/userpic/SnapShot/1.jpg",
        ),
        ("/cgi-bin/snapshot.cgi?channel=1", "http://10.0.0.9:8080/cgi-bin/snapshot.cgi?channel=1"),
        ("pics/1.jpg", "http://10.0.0.9:8080/pics/1.jpg"),
        ("http://10.0.0.9:8080/x.jpg", "http://10.0.0.9:8080/x.jpg"),
        ("http://evil.example/x.jpg", PayloadRejected),
        ("http://10.0.0.9:9999/x.jpg", PayloadRejected),
        ("//evil.example/x.jpg", PayloadRejected),
        ("", PayloadRejected),
    ],
)
def test_snapshot_urls_resolve_against_the_device_and_never_leave_it(
    snap: str, expected: str | type[Exception]
) -> None:
    if isinstance(expected, str):
        assert snapshot_url("http://10.0.0.9:8080", snap) == expected
    else:
        with pytest.raises(expected):
            snapshot_url("http://10.0.0.9:8080", snap)


def test_serial_tracker_counts_duplicates_and_gaps() -> None:
    status = SourceStatus(source_id="g", kind="test")
    tracker = SerialTracker(status, memory=3)
    for serial in (1, 2, 5):
        tracker.record(serial)
    assert tracker.is_duplicate(2)
    assert not tracker.is_duplicate(3)
    assert (status.extra["serial_gaps"], status.extra["missed_events"], status.extra["last_serial"]) == (1, 2, 5)
    tracker.record(6)  # memory of 3: serial 1 is forgotten
    assert not tracker.is_duplicate(1)
    assert tracker.record(4).missed == 0  # a late event fills no new gap
