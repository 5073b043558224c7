"""``isapi_push`` on a real uvicorn server, posted to by a real HTTP client."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable

import cv2
import httpx
import numpy as np
import pytest

from gridwatch.core.interfaces import SourceState
from tests.ingest.gates.conftest import PUSH_PASSWORD, PUSH_USER, PushServer
from tests.ingest.polling import eventually
from tests.support.gate_payloads import face_jpeg, isapi_event, isapi_heartbeat, isapi_push_body

AUTH = (PUSH_USER, PUSH_PASSWORD)
_serials = itertools.count(1000)


def next_serial() -> int:
    return next(_serials)


def big_jpeg(min_bytes: int) -> bytes:
    """A JPEG of noise, larger than ``min_bytes``."""
    rng = np.random.default_rng(7)
    side = 400
    while True:
        image = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        if len(encoded) > min_bytes:
            return encoded.tobytes()
        side += 200


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


async def post(
    http: httpx.AsyncClient, server: PushServer, body: bytes, content_type: str, auth: tuple[str, str] = AUTH
) -> httpx.Response:
    return await http.post(server.url, content=body, headers={"Content-Type": content_type}, auth=auth)


async def post_valid(http: httpx.AsyncClient, server: PushServer, serial: int | None = None) -> httpx.Response:
    body, content_type = isapi_push_body(isapi_event(serial or next_serial()), [face_jpeg("kit")])
    return await post(http, server, body, content_type)


async def test_a_valid_event_reaches_the_handler_with_face_door_direction_and_device_time(
    push_server: PushServer, client: httpx.AsyncClient
) -> None:
    face = face_jpeg("obama")
    event = isapi_event(
        4242,
        door=2,
        employee_no="E-77",
        card_no="12345678",
        verify_mode="cardOrFace",
        date_time="2024-05-01T08:30:00+08:00",
        extra={"unknownTopLevel": {"a": 1}},
        extra_event={"someNewField": "kept", "helmet": "no"},
    )
    body, content_type = isapi_push_body(event, [face])

    response = await post(client, push_server, body, content_type)

    assert response.status_code == 200
    assert response.json() == {"statusCode": 1, "statusString": "OK", "subStatusCode": "ok"}
    await eventually(lambda: len(push_server.events) == 1, 5, "one gate event")
    got = push_server.events[0]
    assert got.gate_id == "gate-a"
    assert got.face_image == face
    assert got.door == "2"
    assert got.direction == "out"
    assert got.serial == 4242
    assert got.verify_mode == "cardOrFace"
    assert got.device_person_id == "E-77"
    assert got.card_no == "12345678"
    assert got.event_type == "5/75"
    assert got.device_time == dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)
    assert got.device_time.utcoffset() == dt.timedelta(hours=8)
    assert got.received_at.tzinfo is not None
    status = push_server.source.status
    assert status.state is SourceState.ONLINE
    assert push_server.counter("events") == 1
    assert push_server.counter("rejected") == 0
    assert "face_image" not in repr(got)


async def test_a_device_time_without_offset_is_in_the_gate_time_zone(
    push_server: PushServer, client: httpx.AsyncClient
) -> None:
    body, content_type = isapi_push_body(
        isapi_event(next_serial(), date_time="2024-05-01T08:30:00"), [face_jpeg("kit")]
    )
    assert (await post(client, push_server, body, content_type)).status_code == 200
    await eventually(lambda: len(push_server.events) == 1, 5, "one gate event")
    assert push_server.events[0].device_time == dt.datetime(2024, 5, 1, 0, 30, tzinfo=dt.UTC)  # Asia/Shanghai


async def test_heartbeats_are_counted_and_answered(push_server: PushServer, client: httpx.AsyncClient) -> None:
    body, content_type = isapi_push_body(isapi_heartbeat())
    for _ in range(3):
        response = await post(client, push_server, body, content_type)
        assert response.status_code == 200
        assert response.json()["statusString"] == "OK"
    assert push_server.counter("heartbeats") == 3
    assert push_server.events == []


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: isapi_push_body(isapi_event(next_serial(), pictures=0)), id="no-picture"),
        pytest.param(
            lambda: isapi_push_body(isapi_event(next_serial(), pictures=0) | {"eventType": "doorStatus"}),
            id="other-event-type",
        ),
        pytest.param(
            lambda: (json.dumps(isapi_event(next_serial(), pictures=0)).encode(), "application/json"),
            id="bare-json",
        ),
    ],
)
async def test_an_event_without_a_picture_is_counted_but_yields_no_face(
    push_server: PushServer, client: httpx.AsyncClient, build: Callable[[], tuple[bytes, str]]
) -> None:
    body, content_type = build()
    assert (await post(client, push_server, body, content_type)).status_code == 200
    assert push_server.counter("events") == 1
    assert push_server.events == []


@pytest.mark.parametrize(
    ("part_name", "boundary"),
    [("event_log", "MIME_boundary"), ("anything", "MIME_boundary"), ("event_log", "-" * 24 + "d74496d66958873e")],
    ids=["event_log", "first-part", "curl-style-boundary"],
)
async def test_the_json_part_may_be_event_log_or_simply_the_first_part(
    push_server: PushServer, client: httpx.AsyncClient, part_name: str, boundary: str
) -> None:
    body, content_type = isapi_push_body(
        isapi_event(next_serial()), [face_jpeg("kit")], json_part_name=part_name, boundary=boundary
    )
    assert (await post(client, push_server, body, content_type)).status_code == 200
    await eventually(lambda: len(push_server.events) == 1, 5, "one gate event")


def _truncated_body() -> tuple[bytes, str]:
    body, content_type = isapi_push_body(isapi_event(next_serial()), [face_jpeg("kit")])
    return body[: len(body) // 2], content_type


def _truncated_jpeg() -> tuple[bytes, str]:
    face = face_jpeg("kit")
    return isapi_push_body(isapi_event(next_serial()), [face[: len(face) * 2 // 3]])


BAD_INPUTS: list[tuple[str, Callable[[], tuple[bytes, str]], int, str]] = [
    (
        "garbage",
        lambda: (b"\x00\x01 not multipart at all", "multipart/form-data; boundary=MIME_boundary"),
        400,
        "malformed multipart",
    ),
    ("truncated-body", _truncated_body, 400, "malformed multipart"),
    ("no-boundary", lambda: (b"--x\r\n\r\n", "multipart/form-data"), 400, "boundary"),
    ("wrong-content-type", lambda: (b"hello", "text/plain"), 415, "multipart"),
    ("invalid-json", lambda: isapi_push_body(b"{not json", [face_jpeg("kit")]), 400, "not valid JSON"),
    ("json-array", lambda: isapi_push_body(b"[1, 2]", [face_jpeg("kit")]), 400, "not an object"),
    ("missing-event-type", lambda: isapi_push_body({"dateTime": "2024-05-01T08:30:00"}), 400, "eventType"),
    (
        "bad-serial-type",
        lambda: isapi_push_body(isapi_event(1, extra_event={"serialNo": "abc"}), [face_jpeg("kit")]),
        400,
        "serialNo",
    ),
    (
        "bad-device-time",
        lambda: isapi_push_body(isapi_event(next_serial(), date_time="yesterday at noon"), [face_jpeg("kit")]),
        400,
        "device time",
    ),
    ("missing-picture", lambda: isapi_push_body(isapi_event(next_serial(), pictures=1)), 400, "picture"),
    (
        "not-a-jpeg",
        lambda: isapi_push_body(isapi_event(next_serial()), [b"\x89PNG\r\n\x1a\n" + b"0" * 500]),
        415,
        "not a JPEG",
    ),
    ("truncated-jpeg", _truncated_jpeg, 400, "truncated"),
    ("picture-too-large", lambda: isapi_push_body(isapi_event(next_serial()), [big_jpeg(450_000)]), 413, "exceeds"),
    (
        "empty-multipart",
        lambda: (b"--MIME_boundary--\r\n", "multipart/form-data; boundary=MIME_boundary"),
        400,
        "no parts",
    ),
]


@pytest.mark.parametrize(
    ("build", "status_code", "reason"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
async def test_bad_input_gets_a_clear_4xx_is_counted_and_the_endpoint_keeps_working(
    push_server: PushServer,
    client: httpx.AsyncClient,
    build: Callable[[], tuple[bytes, str]],
    status_code: int,
    reason: str,
) -> None:
    body, content_type = build()

    response = await post(client, push_server, body, content_type)

    assert response.status_code == status_code
    assert reason.lower() in response.json()["error"].lower()
    assert PUSH_PASSWORD not in response.text
    assert push_server.counter("rejected") == 1
    assert push_server.events == []
    assert (await post_valid(client, push_server)).status_code == 200
    await eventually(lambda: len(push_server.events) == 1, 5, "the next valid event")


@pytest.mark.parametrize(
    "auth",
    [None, ("terminal", "wrong"), ("intruder", PUSH_PASSWORD), ("", "")],
    ids=["none", "wrong-password", "wrong-user", "empty"],
)
async def test_wrong_credentials_get_401_with_a_challenge_and_leak_nothing(
    push_server: PushServer,
    client: httpx.AsyncClient,
    auth: tuple[str | bytes, str | bytes] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body, content_type = isapi_push_body(isapi_event(next_serial()), [face_jpeg("kit")])
    response = await client.post(
        push_server.url, content=body, headers={"Content-Type": content_type}, auth=auth or httpx.USE_CLIENT_DEFAULT
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert response.json() == {"error": "authentication required"}
    assert push_server.counter("rejected") == 1
    assert push_server.events == []
    assert PUSH_PASSWORD not in caplog.text
    assert PUSH_PASSWORD not in repr(push_server.source)
    assert (await post_valid(client, push_server)).status_code == 200


async def test_a_malformed_authorization_header_gets_401(push_server: PushServer, client: httpx.AsyncClient) -> None:
    for header in ["Basic !!!notbase64", "Basic " + "dGVybWluYWw=", "Digest abc", "Bearer x"]:
        response = await client.post(push_server.url, content=b"x", headers={"Authorization": header})
        assert response.status_code == 401


async def test_an_oversized_body_gets_413_by_content_length_and_by_counting(
    push_server: PushServer, client: httpx.AsyncClient
) -> None:
    big = big_jpeg(300_000)
    body, content_type = isapi_push_body(isapi_event(next_serial()), [big, big, big, big])
    assert len(body) > 1_000_000

    declared = await post(client, push_server, body, content_type)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    # No Content-Length (chunked transfer): the limit is enforced while reading.
    streamed = await client.post(
        push_server.url,
        content=chunks(),
        headers={"Content-Type": content_type},
        auth=AUTH,
    )

    for response in (declared, streamed):
        assert response.status_code == 413
        assert "exceeds the limit" in response.json()["error"]
    assert push_server.counter("rejected") == 2
    assert (await post_valid(client, push_server)).status_code == 200


async def test_a_replayed_serial_is_answered_200_again_and_handed_on_once(
    push_server: PushServer, client: httpx.AsyncClient
) -> None:
    serial = next_serial()
    assert (await post_valid(client, push_server, serial)).status_code == 200

    # The terminal resends when our 200 was lost: it was taken, so "OK" again, and nothing twice.
    replay = await post_valid(client, push_server, serial)

    assert replay.status_code == 200
    assert push_server.counter("rejected") == 0
    assert push_server.counter("duplicates") == 1
    assert len(push_server.events) == 1
    assert (await post_valid(client, push_server, serial + 1)).status_code == 200


async def test_a_saturated_recognition_gets_503_with_retry_after_and_the_resend_is_taken(
    push_server: PushServer, client: httpx.AsyncClient
) -> None:
    serial = next_serial()
    push_server.busy_handler = True

    refused = await post_valid(client, push_server, serial)

    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "2"
    assert "busy" in refused.json()["error"]
    assert push_server.counter("busy") == 1
    assert push_server.counter("rejected") == 0
    assert push_server.counter("events") == 0
    push_server.busy_handler = False
    # Not recorded as received: the resend of the same serial is taken.
    assert (await post_valid(client, push_server, serial)).status_code == 200
    assert [event.serial for event in push_server.events] == [serial]


async def test_a_serial_gap_is_reported(push_server: PushServer, client: httpx.AsyncClient) -> None:
    for serial in (10, 11, 15):
        assert (await post_valid(client, push_server, serial)).status_code == 200
    assert push_server.counter("serial_gaps") == 1
    assert push_server.counter("missed_events") == 3


async def test_a_failing_handler_is_not_answered_ok(push_server: PushServer, client: httpx.AsyncClient) -> None:
    # Not recognised, so not durable: the terminal must keep the event and send it again.
    serial = next_serial()
    push_server.fail_handler = True
    failed = await post_valid(client, push_server, serial)
    assert failed.status_code == 500
    assert failed.json() == {"error": "the event could not be processed"}
    assert push_server.counter("handler_errors") == 1
    push_server.fail_handler = False
    assert (await post_valid(client, push_server, serial)).status_code == 200


async def test_a_stopped_source_answers_503_and_stop_is_idempotent(
    push_server: PushServer, client: httpx.AsyncClient
) -> None:
    # stop() runs on the test's loop; the source has no task of its own, so any loop will do.
    await push_server.source.stop()
    await push_server.source.stop()
    assert push_server.source.status.state is SourceState.STOPPED
    assert (await post_valid(client, push_server)).status_code == 503
