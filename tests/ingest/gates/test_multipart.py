"""The incremental multipart reader of endless device streams."""

from __future__ import annotations

import pytest

from ingest.gates.multipart import (
    MalformedPart,
    MultipartError,
    MultipartStreamReader,
    Part,
    boundary_from_content_type,
)
from tests.support.gate_payloads import (
    dahua_access_text,
    dahua_heartbeat_part,
    dahua_stream_part,
    face_jpeg,
    isapi_event,
    isapi_heartbeat,
    isapi_stream_parts,
)


def feed_all(reader: MultipartStreamReader, data: bytes, step: int) -> list[Part | MalformedPart]:
    out: list[Part | MalformedPart] = []
    for start in range(0, len(data), step):
        out += reader.feed(data[start : start + step])
    return out


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("multipart/mixed; boundary=MIME_boundary", "MIME_boundary"),
        ('multipart/form-data; boundary="quoted b"', "quoted b"),
        ("multipart/x-mixed-replace; boundary=myboundary", "myboundary"),
        (
            "multipart/form-data; boundary=------------------------d74496d66958873e",
            "------------------------d74496d66958873e",
        ),
        ("Multipart/Mixed; charset=utf-8; BOUNDARY=abc", "abc"),
        ("text/plain; boundary=x", MultipartError),
        ("multipart/mixed", MultipartError),
        (None, MultipartError),
    ],
)
def test_boundary_from_content_type(content_type: str | None, expected: str | type[Exception]) -> None:
    if isinstance(expected, str):
        assert boundary_from_content_type(content_type) == expected
    else:
        with pytest.raises(expected):
            boundary_from_content_type(content_type)


@pytest.mark.parametrize("step", [1, 7, 4096, 10**7])
def test_isapi_stream_parts_come_out_whole_whatever_the_chunking(step: int) -> None:
    face = face_jpeg("kit")
    stream = isapi_stream_parts(isapi_event(1), [face]) + isapi_stream_parts(isapi_heartbeat())
    reader = MultipartStreamReader("MIME_boundary", max_part_bytes=1_000_000)

    parts = feed_all(reader, stream, step)

    assert [type(part) for part in parts] == [Part, Part, Part]
    event, picture, heartbeat = parts
    assert isinstance(event, Part)
    assert event.body.startswith(b"{")
    assert event.content_type == "application/json"
    assert isinstance(picture, Part)
    assert picture.body == face
    assert picture.name == "Picture"
    assert isinstance(heartbeat, Part)
    assert b"heartBeat" in heartbeat.body


def test_a_part_with_content_length_is_complete_before_the_next_boundary() -> None:
    # Dahua writes the boundary *before* each part: without Content-Length framing the event would wait.
    reader = MultipartStreamReader("myboundary", max_part_bytes=100_000)
    text = dahua_access_text(3)
    parts = reader.feed(dahua_stream_part(text))
    assert len(parts) == 1
    assert isinstance(parts[0], Part)
    assert parts[0].body == text


def test_a_part_without_content_length_ends_at_the_next_boundary() -> None:
    reader = MultipartStreamReader("b", max_part_bytes=1000)
    assert reader.feed(b"--b\r\nContent-Type: text/plain\r\n\r\nhello") == []
    parts = reader.feed(b" world\r\n--b\r\n")
    assert parts == [Part({"content-type": "text/plain"}, b"hello world")]


def test_an_oversized_part_that_arrives_whole_with_its_delimiter_is_refused() -> None:
    """Found by the fuzz test: without Content-Length, a part and the next delimiter in one chunk."""
    reader = MultipartStreamReader("b", max_part_bytes=4)
    items = reader.feed(b"--b\r\nContent-Type: text/plain\r\n\r\nfar too long\r\n--b\r\n\r\nok\r\n--b--\r\n")
    assert items == [MalformedPart("part exceeds the limit of 4 bytes"), Part({}, b"ok")]


def test_a_part_without_headers_and_bare_line_feeds_are_read() -> None:
    reader = MultipartStreamReader("b", max_part_bytes=1000)
    parts = reader.feed(b"--b\r\n\r\nHeartbeat\r\n--b\nContent-Type: text/plain\n\nx\n--b\n")
    assert parts == [Part({}, b"Heartbeat"), Part({"content-type": "text/plain"}, b"x")]


def test_junk_a_bad_header_and_oversized_parts_are_reported_and_the_stream_goes_on() -> None:
    reader = MultipartStreamReader("myboundary", max_part_bytes=50)
    stream = (
        b"junk before the first part\r\n"
        + dahua_heartbeat_part()
        + b"--myboundary\r\nthis header has no colon\r\n\r\nbody\r\n"
        + b"--myboundary\r\nContent-Length: 100000\r\n\r\n"
        + b"x" * 100_000
        + b"\r\n--myboundary\r\nContent-Type: text/plain\r\n\r\n"
        + b"y" * 500  # too long, no Content-Length
        + b"\r\n"
        + dahua_heartbeat_part()
        + b"--myboundary\r\nContent-Length: abc\r\n\r\nz\r\n"
        + dahua_heartbeat_part()
    )

    items = feed_all(reader, stream, 333)

    bodies = [item.body for item in items if isinstance(item, Part)]
    reasons = [item.reason for item in items if isinstance(item, MalformedPart)]
    assert bodies == [b"Heartbeat", b"Heartbeat", b"Heartbeat"]
    assert any("outside any part" in reason for reason in reasons)
    assert "malformed part header line" in reasons
    assert any("100000 bytes exceeds" in reason for reason in reasons)
    assert any("part exceeds the limit" in reason for reason in reasons)
    assert "malformed part Content-Length" in reasons
    assert reader.buffered < 200


def test_a_wrong_content_length_falls_back_to_the_boundary() -> None:
    reader = MultipartStreamReader("b", max_part_bytes=1000)
    parts = reader.feed(b"--b\r\nContent-Length: 500\r\n\r\nshort\r\n--b\r\nContent-Length: 2\r\n\r\nok\r\n--b\r\n")
    assert [part.body for part in parts if isinstance(part, Part)] == [b"short", b"ok"]


def test_the_close_delimiter_ends_the_stream() -> None:
    reader = MultipartStreamReader("b", max_part_bytes=1000)
    parts = reader.feed(b"--b\r\n\r\nlast\r\n--b--\r\n")
    assert parts == [Part({}, b"last")]
    assert reader.closed
    assert reader.feed(b"--b\r\n\r\nmore\r\n--b\r\n") == []


def test_a_longer_boundary_sharing_the_prefix_is_not_a_delimiter() -> None:
    reader = MultipartStreamReader("b", max_part_bytes=1000)
    parts = reader.feed(b"--b\r\n\r\nbody with\r\n--bX inside\r\n--b\r\n")
    assert parts == [Part({}, b"body with\r\n--bX inside")]
