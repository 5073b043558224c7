"""Builders of gate terminal payloads, one per dialect, from the field lists in DESIGN.md §4.

The field names come from public integrations (Hikvision ISAPI access-control events, Dahua's
``eventManager.cgi`` attach stream, MQTT face terminals). Every builder accepts ``extra`` fields so
tests can prove that unknown fields are tolerated. Face pictures are real JPEGs from the shared
test data, held in memory only.

ISAPI (push to gridwatch, or the ``alertStream`` long poll)::

    event = isapi_event(serial=17, door=1, employee_no="1001")
    body, content_type = isapi_push_body(event, [face_jpeg("obama")])
    httpx.post(url, content=body, headers={"Content-Type": content_type}, auth=("user", "pw"))

Dahua (the ``attach`` stream)::

    part = dahua_stream_part(dahua_access_text(rec_no=5, snap_url="/cgi-bin/snap/5.jpg"))

MQTT (a face terminal's capture)::

    payload = mqtt_capture(device_no="T1", sequence_no=9, picture=face_jpeg("obama"))
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.paths import TESTDATA

FACES = TESTDATA / "faces"

# One real face photo per identity (all JPEG files in the shared test data).
FACE_FILES: dict[str, Path] = {
    "obama": FACES / "obama" / "obama.jpg",
    "obama2": FACES / "obama" / "obama2.jpg",
    "biden": FACES / "biden" / "biden.jpg",
    "kit": FACES / "kit_harington" / "kit2.jpeg",
    "rose": FACES / "rose_leslie" / "rose1.jpg",
    "alex": FACES / "alex_lacamoire" / "alex2.jpg",
}

ISAPI_BOUNDARY = "MIME_boundary"
DAHUA_BOUNDARY = "myboundary"
DEFAULT_DEVICE_TIME = "2024-05-01T08:30:00+08:00"


@functools.cache
def face_jpeg(name: str = "obama") -> bytes:
    """The bytes of a real face JPEG from the shared test data (``FACE_FILES`` keys)."""
    data = FACE_FILES[name].read_bytes()
    if not data.startswith(b"\xff\xd8\xff"):
        raise ValueError(f"{FACE_FILES[name]} is not a JPEG file")
    return data


# --- Hikvision ISAPI ---------------------------------------------------------------------------


def isapi_event(
    serial: int,
    *,
    door: int | None = 1,
    card_reader: int | None = 1,
    employee_no: str | None = "1001",
    card_no: str | None = None,
    name: str | None = "Resident",
    verify_mode: str | None = "face",
    date_time: str | None = DEFAULT_DEVICE_TIME,
    pictures: int = 1,
    major: int = 5,
    minor: int = 75,
    extra: Mapping[str, Any] | None = None,
    extra_event: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An ISAPI ``AccessControllerEvent`` notification (major 5 / minor 75: face authentication passed)."""
    inner: dict[str, Any] = {
        "deviceName": "Main gate terminal",
        "majorEventType": major,
        "subEventType": minor,
        "serialNo": serial,
        "currentVerifyMode": verify_mode,
        "mask": "no",
        "picturesNumber": pictures,
        "userType": "normal",
        "attendanceStatus": "undefined",
        "FaceRect": {"height": 0.32, "width": 0.21, "x": 0.4, "y": 0.2},
    }
    optional = {
        "name": name,
        "employeeNoString": employee_no,
        "cardNo": card_no,
        "doorNo": door,
        "cardReaderNo": card_reader,
    }
    inner.update({key: value for key, value in optional.items() if value is not None})
    inner = {key: value for key, value in inner.items() if value is not None}
    inner.update(extra_event or {})
    event: dict[str, Any] = {
        "ipAddress": "192.168.1.64",
        "portNo": 80,
        "protocol": "HTTP",
        "macAddress": "44:19:b6:00:00:01",
        "channelID": 1,
        "activePostCount": 1,
        "eventType": "AccessControllerEvent",
        "eventState": "active",
        "eventDescription": "Access Controller Event",
        "AccessControllerEvent": inner,
    }
    if date_time is not None:
        event["dateTime"] = date_time
    event.update(extra or {})
    return event


def isapi_heartbeat(date_time: str | None = DEFAULT_DEVICE_TIME) -> dict[str, Any]:
    """The heartbeat a terminal sends to its HTTP host (and, in JSON format, on the alert stream)."""
    beat: dict[str, Any] = {
        "ipAddress": "192.168.1.64",
        "portNo": 80,
        "protocol": "HTTP",
        "macAddress": "44:19:b6:00:00:01",
        "channelID": 1,
        "activePostCount": 0,
        "eventType": "heartBeat",
        "eventState": "active",
        "eventDescription": "heartBeat",
    }
    if date_time is not None:
        beat["dateTime"] = date_time
    return beat


def _part(headers: Sequence[tuple[str, str]], body: bytes, boundary: str) -> bytes:
    head = "".join(f"{key}: {value}\r\n" for key, value in headers)
    return f"--{boundary}\r\n{head}\r\n".encode() + body + b"\r\n"


def isapi_push_body(
    event: Mapping[str, Any] | bytes,
    pictures: Sequence[bytes] = (),
    *,
    boundary: str = ISAPI_BOUNDARY,
    json_part_name: str = "AccessControllerEvent",
) -> tuple[bytes, str]:
    """A complete ``multipart/form-data`` body as a terminal POSTs it, and its Content-Type.

    ``event`` may be raw bytes (for invalid-JSON tests). Pictures are parts named ``Picture``.
    """
    event_bytes = event if isinstance(event, bytes) else json.dumps(event).encode()
    body = _part(
        [
            ("Content-Disposition", f'form-data; name="{json_part_name}"'),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(event_bytes))),
        ],
        event_bytes,
        boundary,
    )
    for index, picture in enumerate(pictures):
        body += _part(
            [
                ("Content-Disposition", f'form-data; name="Picture"; filename="Picture{index}.jpg"'),
                ("Content-Type", "image/jpeg"),
                ("Content-Length", str(len(picture))),
                ("Content-ID", "pictureImage"),
            ],
            picture,
            boundary,
        )
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def isapi_stream_parts(
    event: Mapping[str, Any], pictures: Sequence[bytes] = (), *, boundary: str = ISAPI_BOUNDARY
) -> bytes:
    """One event of the endless ``alertStream`` body: the JSON part, then its ``Picture`` parts.

    No closing delimiter: the stream never ends.
    """
    event_bytes = json.dumps(event).encode()
    chunk = _part(
        [("Content-Type", 'application/json; charset="UTF-8"'), ("Content-Length", str(len(event_bytes)))],
        event_bytes,
        boundary,
    )
    for picture in pictures:
        chunk += _part(
            [
                ("Content-Disposition", 'form-data; name="Picture"; filename="Picture.jpg"'),
                ("Content-Type", "image/jpeg"),
                ("Content-Length", str(len(picture))),
                ("Content-ID", "pictureImage"),
            ],
            picture,
            boundary,
        )
    return chunk


def isapi_stream_content_type(boundary: str = ISAPI_BOUNDARY) -> str:
    return f"multipart/mixed; boundary={boundary}"


# --- Dahua -------------------------------------------------------------------------------------


def dahua_access_data(
    rec_no: int,
    *,
    reader_id: str | None = "1",
    entry: bool = True,
    utc: int | None = None,
    snap_url: str | None = None,
    user_id: str | None = "1001",
    card_no: str | None = None,
    name: str | None = "Resident",
    method: int = 15,
    status: int = 1,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``data`` object of a Dahua ``AccessControl`` event (Method 15: face)."""
    if utc is None:
        utc = int(dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC).timestamp())
    data: dict[str, Any] = {
        "CardType": 0,
        "ErrorCode": 0,
        "Method": method,
        "RecNo": rec_no,
        "Status": status,
        "Type": "Entry" if entry else "Exit",
        "UTC": utc,
        "CardNo": card_no,
        "Name": name,
        "ReaderID": reader_id,
        "SnapURL": snap_url,
        "UserID": user_id,
    }
    data = {key: value for key, value in data.items() if value is not None}
    data.update(extra or {})
    return data


def dahua_access_text(rec_no: int, *, action: str = "Pulse", index: int = 0, **data_kwargs: Any) -> bytes:
    """The text body of one ``AccessControl`` event part: ``Code=...;action=...;index=...;data={...}``."""
    data = dahua_access_data(rec_no, **data_kwargs)
    # Devices pretty-print the JSON over several lines; keep that shape.
    text = f"Code=AccessControl;action={action};index={index};data={json.dumps(data, indent=3)}\r\n"
    return text.encode()


def dahua_stream_part(text: bytes, *, boundary: str = DAHUA_BOUNDARY) -> bytes:
    """One part of the endless ``multipart/x-mixed-replace`` attach stream."""
    return _part([("Content-Type", "text/plain"), ("Content-Length", str(len(text)))], text, boundary)


def dahua_heartbeat_part(*, boundary: str = DAHUA_BOUNDARY) -> bytes:
    return dahua_stream_part(b"Heartbeat", boundary=boundary)


def dahua_stream_content_type(boundary: str = DAHUA_BOUNDARY) -> str:
    return f"multipart/x-mixed-replace; boundary={boundary}"


# --- MQTT face terminals -----------------------------------------------------------------------


def mqtt_capture(
    *,
    device_no: str,
    sequence_no: int,
    picture: bytes,
    cap_time: str = DEFAULT_DEVICE_TIME,
    picture_field: str = "face_picture",
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """A JSON capture as an MQTT face terminal publishes it (the picture base64-encoded).

    ``picture_field`` names the base64 field; it must match what ``ingest.gates.mqtt`` reads.
    """
    message: dict[str, Any] = {
        "device_no": device_no,
        "cap_time": cap_time,
        "sequence_no": sequence_no,
        picture_field: base64.b64encode(picture).decode("ascii"),
    }
    message.update(extra or {})
    return json.dumps(message).encode()
