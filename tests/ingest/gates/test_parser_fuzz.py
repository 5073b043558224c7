"""Property-based fuzz tests of every gate parser, without a server (bounded, run in CI).

Each parser takes what a device (or anyone on its network) sends. Whatever the bytes, it may only
answer with its own rejection type — ``PayloadRejected`` (``CaptureRejected`` for MQTT captures),
``MultipartError`` for a Content-Type — never with ``RecursionError``, ``OverflowError``,
``UnicodeDecodeError`` or any other exception: those escaped the handlers, left MQTT captures
unacknowledged (the terminal resends forever) or reached recognition (issue 13). And what a parser
accepts is usable downstream: its device time converts to UTC.

Inputs are real payloads with fields replaced by hostile JSON (deep nesting, 10**400, 5,000-digit
numbers, NaN, year-1 and year-9999 times with offsets, invalid UTF-8), then mutated byte-wise.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridwatch.core.config.gates import MqttGateConfig
from gridwatch.core.interfaces import GateEvent
from ingest.gates import dahua, isapi, mqtt
from ingest.gates.common import PayloadRejected, device_time
from ingest.gates.images import check_jpeg
from ingest.gates.multipart import (
    MalformedPart,
    MultipartError,
    MultipartStreamReader,
    Part,
    boundary_from_content_type,
)
from tests.ingest.gates.conftest import push_config, small_face_jpeg
from tests.support.gate_payloads import (
    DAHUA_BOUNDARY,
    dahua_access_data,
    dahua_heartbeat_part,
    dahua_stream_part,
    isapi_event,
    isapi_heartbeat,
    isapi_push_body,
)

FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
RECEIVED_AT = dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)
FACE = small_face_jpeg("obama", width=64)
PUSH_CONFIG = push_config()
MQTT_CONFIG = MqttGateConfig.model_validate(
    {"id": "door-east", "kind": "mqtt", "host": "127.0.0.1", "topic": "t", "timezone": "Asia/Shanghai"}
)

# JSON text no ``json.dumps`` of a Python value yields, each of which once broke a parser or recognition.
HOSTILE_TOKENS = [
    "[" * 5000 + "]" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    "1" * 5000,
    str(10**400),
    "-" + str(10**400),
    "1e400",
    "-1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "1.5",
    "-1",
    "0",
    "true",
    "null",
    '"0001-01-01T00:00:00+14:00"',
    '"9999-12-31T23:59:59-14:00"',
    '"0001-01-01 00:00:00"',
    '"9999-12-31T23:59:59"',
    '"2024-02-30T08:00:00"',
    '"2024-05-01T08:30:00+99:00"',
    '"\\ud800"',
    '"\\u0000"',
    '""',
    '"' + "x" * 300 + '"',
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
value_texts = st.one_of(st.sampled_from(HOSTILE_TOKENS), json_values.map(json.dumps))


@st.composite
def hostile_json(draw: st.DrawFn, document: dict[str, Any], keys: list[str], nested: str | None = None) -> bytes:
    """``document`` with some of ``keys`` (at the top or inside ``nested``) set to hostile JSON text."""
    document = json.loads(json.dumps(document))
    inner = document.get(nested, document) if nested else document
    replacements = draw(st.dictionaries(st.sampled_from(keys), value_texts, max_size=3))
    for index, key in enumerate(replacements):
        target = draw(st.sampled_from([document, inner])) if isinstance(inner, dict) else document
        target[key] = f"@@{index}@@"
    text = json.dumps(document)
    for index, token in enumerate(replacements.values()):
        text = text.replace(f'"@@{index}@@"', token)
    return draw(mutated(text.encode()))


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` truncated, with bytes inserted (invalid UTF-8 among them) or flipped, a few times over."""
    for _ in range(draw(st.integers(0, 2))):
        operation = draw(st.sampled_from(["truncate", "insert", "flip"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if operation == "truncate":
            data = data[:position]
        elif operation == "insert":
            data = (
                data[:position]
                + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]) | st.binary(max_size=8))
                + data[position:]
            )
        elif data:
            data = data[:position] + bytes([data[position] ^ draw(st.integers(1, 255))]) + data[position + 1 :]
    return data


def has_a_reason(error: ValueError) -> None:
    """A rejection always says why (it is returned to the device and logged)."""
    assert str(error).strip()


def assert_usable(event: GateEvent) -> None:
    """What a parser accepts, recognition and the rules can use without raising."""
    assert event.device_time.tzinfo is not None
    assert event.device_time.astimezone(dt.UTC).year >= 1970
    assert event.device_time + dt.timedelta(days=365) > event.device_time


# --- ISAPI --------------------------------------------------------------------------------------

ISAPI_KEYS = [
    "eventType",
    "dateTime",
    "AccessControllerEvent",
    "serialNo",
    "doorNo",
    "cardReaderNo",
    "picturesNumber",
    "majorEventType",
    "subEventType",
    "employeeNoString",
    "cardNo",
    "currentVerifyMode",
]
isapi_payloads = st.one_of(
    hostile_json(isapi_event(7), ISAPI_KEYS, nested="AccessControllerEvent"),
    hostile_json(isapi_heartbeat(), ISAPI_KEYS),
    st.binary(max_size=200),
)


@FUZZ
@given(raw=isapi_payloads)
def test_isapi_parser_only_rejects(raw: bytes) -> None:
    try:
        notification = isapi.parse_notification(raw)
        if notification.is_access_event:
            assert_usable(isapi.to_gate_event(notification, PUSH_CONFIG, received_at=RECEIVED_AT, pictures=[FACE]))
    except PayloadRejected as rejected:
        has_a_reason(rejected)


# --- Dahua --------------------------------------------------------------------------------------

DAHUA_KEYS = ["CardNo", "Method", "Name", "ReaderID", "RecNo", "SnapURL", "Status", "Type", "UserID", "UTC"]


@st.composite
def dahua_texts(draw: st.DrawFn) -> bytes:
    data = draw(hostile_json(dahua_access_data(5, utc=1714523400, snap_url="/cgi-bin/snap.jpg"), DAHUA_KEYS))
    action = draw(st.sampled_from([b"Pulse", b"Start", b"Stop", b""]))
    return b"Code=AccessControl;action=" + action + b";index=0;data=" + data + b"\r\n"


@FUZZ
@given(raw=st.one_of(dahua_texts(), st.binary(max_size=200)), snap=st.text(max_size=60))
def test_dahua_parser_only_rejects(raw: bytes, snap: str) -> None:
    try:
        # As the stream handler does: text first (invalid UTF-8 is its rejection), then the events.
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise PayloadRejected("event part is not UTF-8 text") from None
        for event in dahua.parse_events(text):
            data = dahua.parse_access_data(event)
            if data.snap_url:
                dahua.snapshot_url("http://10.0.0.9", data.snap_url)
            assert_usable(
                dahua.to_gate_event(data, PUSH_CONFIG, received_at=RECEIVED_AT, face_image=FACE, action=event.action)
            )
    except PayloadRejected as rejected:
        has_a_reason(rejected)
    try:
        dahua.snapshot_url("http://10.0.0.9:8080/", snap)
    except PayloadRejected as rejected:
        has_a_reason(rejected)


# --- MQTT ---------------------------------------------------------------------------------------

MQTT_KEYS = ["device_no", "sequence_no", "cap_time", "face_picture", "pic", "door_no", "user_id", "card_no"]
MQTT_CAPTURE = {
    "device_no": "T-01",
    "sequence_no": 9,
    "cap_time": "2024-05-01 08:30:00",
    "face_picture": base64.b64encode(FACE).decode(),
    "door_no": 2,
}


@FUZZ
@given(payload=st.one_of(hostile_json(MQTT_CAPTURE, MQTT_KEYS), st.binary(max_size=200)))
def test_mqtt_parser_only_rejects(payload: bytes) -> None:
    try:
        capture, address = mqtt.parse_capture(payload, MQTT_CONFIG)
    except mqtt.CaptureRejected as rejected:
        has_a_reason(rejected)
        # Whatever it could read of the address is sendable: the acknowledgement must go out.
        json.dumps({"device_no": rejected.address.device_no, "sequence_no": rejected.address.sequence_no})
        return
    assert address.device_no == capture.device_no
    try:
        jpeg = mqtt.capture_picture(capture, MQTT_CONFIG.max_image_bytes)
        assert_usable(mqtt.to_gate_event(capture, MQTT_CONFIG, received_at=RECEIVED_AT, jpeg=jpeg))
    except PayloadRejected as rejected:
        has_a_reason(rejected)


# --- multipart and pictures ---------------------------------------------------------------------


@st.composite
def multipart_streams(draw: st.DrawFn) -> tuple[str, bytes, list[int]]:
    pieces = draw(
        st.lists(
            st.sampled_from(
                [
                    dahua_heartbeat_part(),
                    dahua_stream_part(b"Code=AccessControl;action=Pulse;index=0"),
                    isapi_push_body(isapi_event(1), [FACE], boundary=DAHUA_BOUNDARY)[0],
                    b"--" + DAHUA_BOUNDARY.encode() + b"\r\nContent-Length: 99999999999\r\n\r\n",
                    b"--" + DAHUA_BOUNDARY.encode() + b"\r\nContent-Length: -1\r\n\r\nxx\r\n",
                    b"--" + DAHUA_BOUNDARY.encode() + b"--\r\n",
                ]
            ),
            max_size=4,
        )
    )
    stream = draw(mutated(b"".join(pieces)))
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    boundary = draw(st.sampled_from([DAHUA_BOUNDARY, "MIME_boundary", "-", "x" * 70]))
    return boundary, stream, cuts


@FUZZ
@given(stream=multipart_streams(), max_part_bytes=st.integers(1, 20_000))
def test_multipart_reader_never_raises(stream: tuple[str, bytes, list[int]], max_part_bytes: int) -> None:
    boundary, data, cuts = stream
    reader = MultipartStreamReader(boundary, max_part_bytes=max_part_bytes, max_header_bytes=1024)
    start = 0
    for cut in [*cuts, len(data)]:
        for item in reader.feed(data[start:cut]):
            assert isinstance(item, Part | MalformedPart)
            if isinstance(item, Part):
                assert len(item.body) <= max_part_bytes
                _ = item.name, item.content_type
        start = cut
    # Bounded memory: what is held is at most a part, its headers and a delimiter.
    assert reader.buffered <= max_part_bytes + 1024 + len(boundary) + 64 or reader.closed


@FUZZ
@given(
    content_type=st.one_of(st.text(max_size=80), st.text(max_size=60).map(lambda t: f"multipart/mixed; boundary={t}"))
)
def test_boundary_parser_only_raises_multipart_error(content_type: str) -> None:
    try:
        assert boundary_from_content_type(content_type)
    except MultipartError as error:
        has_a_reason(error)


@FUZZ
@given(
    data=st.one_of(
        mutated(FACE), mutated(FACE[:600] + FACE[-2:]), st.binary(max_size=300).map(lambda b: b"\xff\xd8\xff" + b)
    )
)
def test_picture_check_only_rejects(data: bytes) -> None:
    try:
        header = check_jpeg(data, max_bytes=len(FACE) + 100)
    except PayloadRejected as rejected:
        has_a_reason(rejected)
        return
    assert 0 < header.width <= 4096
    assert 0 < header.height <= 4096


def test_the_fuzzed_payloads_start_out_valid() -> None:
    """The fuzz starts from payloads every parser accepts: the mutations, not the seeds, are rejected."""
    notification = isapi.parse_notification(json.dumps(isapi_event(7)).encode())
    assert_usable(isapi.to_gate_event(notification, PUSH_CONFIG, received_at=RECEIVED_AT, pictures=[FACE]))
    capture, _ = mqtt.parse_capture(json.dumps(MQTT_CAPTURE).encode(), MQTT_CONFIG)
    assert_usable(mqtt.to_gate_event(capture, MQTT_CONFIG, received_at=RECEIVED_AT, jpeg=FACE))
    [event] = dahua.parse_events(
        "Code=AccessControl;action=Pulse;index=0;data=" + json.dumps(dahua_access_data(5, utc=1714523400))
    )
    assert_usable(
        dahua.to_gate_event(
            dahua.parse_access_data(event), PUSH_CONFIG, received_at=RECEIVED_AT, face_image=FACE, action="Pulse"
        )
    )
    reader = MultipartStreamReader(DAHUA_BOUNDARY, max_part_bytes=100_000)
    assert isinstance(reader.feed(isapi_push_body(isapi_event(1), [FACE], boundary=DAHUA_BOUNDARY)[0])[0], Part)
    check_jpeg(FACE, max_bytes=len(FACE))


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01 00:00:00",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        float("nan"),
        float("inf"),
        1e300,
        -1.0,
        10**400,
    ],
)
def test_device_times_that_would_overflow_downstream_are_rejected(value: str | float) -> None:
    with pytest.raises(PayloadRejected, match="device time"):
        device_time(value, PUSH_CONFIG, received_at=RECEIVED_AT)


@pytest.mark.parametrize(
    "value", ["1970-01-01T00:00:00Z", "2000-01-01 00:00:00", "2099-12-31T23:59:59+08:00", 0, 1.7e9]
)
def test_reset_clocks_and_ordinary_times_pass(value: str | float) -> None:
    assert device_time(value, PUSH_CONFIG, received_at=RECEIVED_AT).tzinfo is not None
