"""Property-based fuzz test of the ISAPI push endpoint on a real server (bounded, runs in CI).

Arbitrary and mutated multipart bodies and headers must never produce a 5xx, and never stop the
endpoint: after every example a valid event is still accepted.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.gates.conftest import PUSH_PASSWORD, PUSH_USER, PushServer, small_face_jpeg
from tests.support.gate_payloads import isapi_event, isapi_heartbeat, isapi_push_body

_serials = itertools.count(1_000_000)
GOOD_AUTH = "Basic " + base64.b64encode(f"{PUSH_USER}:{PUSH_PASSWORD}".encode()).decode()
FACE = small_face_jpeg("obama")


def _valid_body() -> tuple[bytes, str]:
    return isapi_push_body(isapi_event(next(_serials)), [FACE])


# JSON values that look like ISAPI fields but have any type.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
event_keys = st.sampled_from(
    [
        "eventType",
        "dateTime",
        "AccessControllerEvent",
        "serialNo",
        "doorNo",
        "picturesNumber",
        "cardNo",
        "employeeNoString",
        "currentVerifyMode",
        "cardReaderNo",
        "majorEventType",
        "subEventType",
    ]
)


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A real event or heartbeat with fields replaced by values of arbitrary types."""
    event = draw(st.sampled_from([isapi_event(next(_serials)), isapi_heartbeat()]))
    inner = event.get("AccessControllerEvent", event)
    for key, value in draw(st.dictionaries(event_keys, json_values, max_size=4)).items():
        target = draw(st.sampled_from([event, inner]))
        target[key] = value
    return json.dumps(event).encode()


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    body, _ = isapi_push_body(
        draw(mutated_events()),
        draw(st.lists(st.sampled_from([FACE, FACE[:300], b"", b"\xff\xd8\xff\xe0junk\xff\xd9"]), max_size=3)),
        json_part_name=draw(st.sampled_from(["AccessControllerEvent", "event_log", "Picture", "x"])),
    )
    for _ in range(draw(st.integers(0, 3))):
        operation = draw(st.sampled_from(["truncate", "insert", "flip", "duplicate"]))
        position = draw(st.integers(0, max(0, len(body) - 1)))
        if operation == "truncate":
            body = body[:position]
        elif operation == "insert":
            body = body[:position] + draw(st.binary(max_size=40)) + body[position:]
        elif operation == "flip" and body:
            body = body[:position] + bytes([body[position] ^ draw(st.integers(1, 255))]) + body[position + 1 :]
        elif operation == "duplicate":
            body = body + body[position : position + 2000]
    return body


bodies = st.one_of(mutated_bodies(), st.binary(max_size=2000))
content_types = st.one_of(
    st.just("multipart/form-data; boundary=MIME_boundary"),
    st.sampled_from(
        [
            "multipart/form-data",
            "multipart/form-data; boundary=",
            'multipart/form-data; boundary="MIME_boundary"',
            "multipart/form-data; boundary=other",
            "multipart/mixed; boundary=MIME_boundary",
            "application/json",
            "text/plain",
            "",
        ]
    ),
    st.text(max_size=60).map(lambda text: f"multipart/form-data; boundary={text}"),
)
extra_headers = st.dictionaries(
    st.sampled_from(["Content-Length", "Transfer-Encoding", "Content-Encoding", "Authorization", "Expect"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    max_size=2,
)


def raw_post(base_url: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes] | None:
    """POST over a plain socket, so that requests no well-behaved client would send reach the server.

    Returns the status and body, or ``None`` when the server closed the connection without an answer
    (what an HTTP server does with a request it cannot frame, e.g. a body shorter than its Content-Length).
    """
    host, port = base_url.removeprefix("http://").split(":")
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        head += f"Content-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("utf-8") + b"\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        response = bytearray()
        while chunk := sock.recv(65536):
            response += chunk
    if not response:
        return None
    status_line, _, rest = bytes(response).partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


@pytest.mark.timeout(240)
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, content_type=content_types, headers=extra_headers)
def test_no_input_yields_a_5xx_or_stops_the_endpoint(
    module_push_server: PushServer, body: bytes, content_type: str, headers: dict[str, str]
) -> None:
    server = module_push_server
    answer = raw_post(
        server.base_url, server.source.path, {"Authorization": GOOD_AUTH, "Content-Type": content_type, **headers}, body
    )
    if answer is not None:
        status, payload = answer
        assert status < 500, payload[:500]
        if status >= 400 and payload.startswith(b"{"):
            assert "error" in json.loads(payload)
    valid, valid_type = _valid_body()
    with httpx.Client(timeout=10) as client:
        check = client.post(server.url, content=valid, headers={"Authorization": GOOD_AUTH, "Content-Type": valid_type})
    assert check.status_code == 200, check.text
