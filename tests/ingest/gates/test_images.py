"""The JPEG check of face snapshots (in memory only)."""

from __future__ import annotations

import pytest

from ingest.gates.common import PayloadRejected
from ingest.gates.images import check_jpeg, jpeg_size
from tests.support.gate_payloads import FACES, face_jpeg


def test_a_real_face_jpeg_passes_and_its_size_is_read() -> None:
    data = face_jpeg("obama")
    check_jpeg(data, max_bytes=len(data))
    size = jpeg_size(data)
    assert size is not None
    assert size[0] > 100
    assert size[1] > 100


def _huge_header() -> bytes:
    # SOI, an SOF0 header claiming 60000x60000 pixels, EOI.
    sof = b"\xff\xc0\x00\x11\x08" + (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big") + b"\x03" + b"\x00" * 9
    return b"\xff\xd8" + sof + b"\xff\xd9"


@pytest.mark.parametrize(
    ("build", "status_code", "reason"),
    [
        (lambda: (FACES / "alex_lacamoire" / "alex1.png").read_bytes()[:50_000], 415, "not a JPEG"),
        (lambda: b"", 415, "not a JPEG"),
        (lambda: face_jpeg("kit")[:30_000], 400, "truncated"),
        (lambda: face_jpeg("kit")[:2] + b"\xff" + b"\x00" * 100 + b"\xff\xd9", 400, "frame header"),
        (_huge_header, 400, "out of range"),
        (lambda: b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"\x00" * 200 + b"\xff\xd9", 400, ""),
        (lambda: face_jpeg("obama"), 413, "exceeds the limit"),
    ],
    ids=["png", "empty", "truncated", "no-sof", "huge-dimensions", "undecodable", "too-large"],
)
def test_bad_pictures_are_rejected_with_a_reason(build: object, status_code: int, reason: str) -> None:
    data = build()  # type: ignore[operator]
    with pytest.raises(PayloadRejected) as caught:
        check_jpeg(data, max_bytes=100_000)
    assert caught.value.status_code == status_code
    assert reason in caught.value.reason


def test_padding_after_the_end_marker_is_tolerated() -> None:
    data = face_jpeg("kit") + b"\r\n\x00\x00"
    check_jpeg(data, max_bytes=len(data))
