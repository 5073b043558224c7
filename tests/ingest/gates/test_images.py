"""The JPEG check of face snapshots (in memory only)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ingest.gates.common import PayloadRejected
from ingest.gates.images import MAX_PIXELS, check_jpeg, jpeg_size
from tests.support.gate_payloads import FACES, face_jpeg
from tests.support.paths import TESTDATA


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
        (_huge_header, 413, "exceeds the limit of 4096 pixels"),
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


# --- operating limits, read from the headers only ---------------------------------------------


def _frame(width: int, height: int, *, marker: int = 0xC0, precision: int = 8, components: int = 3) -> bytes:
    """A SOF segment claiming ``width`` x ``height``."""
    body = bytes([precision]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes([components])
    body += b"\x01\x22\x00" * components
    return bytes([0xFF, marker]) + (2 + len(body)).to_bytes(2, "big") + body


def _crafted(width: int, height: int, scan_bytes: int, *, pad_comment: int = 0, **frame: int) -> bytes:
    """SOI, an optional comment of padding, a SOF, a SOS and ``scan_bytes`` of "image data", EOI."""
    comment = b"\xff\xfe" + (2 + pad_comment).to_bytes(2, "big") + b"x" * pad_comment if pad_comment else b""
    sos = b"\xff\xda\x00\x0c\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00"
    return b"\xff\xd8" + comment + _frame(width, height, **frame) + sos + b"\x55" * scan_bytes + b"\xff\xd9"


@pytest.mark.parametrize(
    ("data", "status_code", "reason"),
    [
        (_crafted(6000, 6600, 500), 413, "exceeds the limit of 4096 pixels a side"),
        (_crafted(4096, 4096, 100_000), 413, "16000000 pixels in all"),
        (_crafted(5000, 100, 100_000), 413, "4096 pixels a side"),
        (_crafted(1920, 1080, 500), 400, "not a photograph"),
        # Metadata padding does not count as image data.
        (_crafted(1920, 1080, 500, pad_comment=60_000), 400, "only 516 bytes of image data"),
        (_crafted(640, 480, 5000, marker=0xC9), 415, "8-bit Huffman"),
        (_crafted(640, 480, 5000, marker=0xC3), 415, "8-bit Huffman"),
        (_crafted(640, 480, 5000, precision=12), 415, "8-bit Huffman"),
        (_crafted(640, 480, 5000, components=4), 415, "colour components"),
        (_crafted(0, 480, 5000), 400, "empty"),
        (b"\xff\xd8" + _frame(640, 480) + b"\x00" * 5000 + b"\xff\xd9", 400, "no start-of-scan"),
        (b"\xff\xd8" + b"\xff" * 5000 + _frame(640, 480) + b"\xff\xd9", 400, "frame header"),
        (b"\xff\xd8" + b"\xff\xfe\x00\x02" * 1000 + _crafted(64, 64, 100)[2:], 400, "frame header"),
    ],
    ids=[
        "bomb-6000x6600",
        "16.7MP",
        "too-wide",
        "too-little-data",
        "padded-metadata",
        "arithmetic",
        "lossless",
        "12-bit",
        "cmyk",
        "zero-width",
        "no-scan",
        "endless-fill-bytes",
        "endless-segments",
    ],
)
def test_costly_or_exotic_pictures_are_rejected_from_the_header(data: bytes, status_code: int, reason: str) -> None:
    with pytest.raises(PayloadRejected) as caught:
        check_jpeg(data, max_bytes=200_000)
    assert caught.value.status_code == status_code
    assert reason in caught.value.reason


def test_a_plausible_header_passes_without_a_decode() -> None:
    # Nothing after the SOS is a valid scan: the check reads headers only; recognition decodes once.
    header = check_jpeg(_crafted(1920, 1080, 20_000), max_bytes=100_000)
    assert (header.width, header.height, header.components) == (1920, 1080, 3)


def test_every_real_photo_passes_the_operating_limits() -> None:
    photos = [path for path in TESTDATA.rglob("*") if path.suffix.lower() in (".jpg", ".jpeg")]
    assert len(photos) > 100
    for path in photos:
        data = path.read_bytes()
        header = check_jpeg(data, max_bytes=len(data))
        assert header.pixels <= MAX_PIXELS


@pytest.mark.parametrize("quality", [1, 10])
def test_real_gate_size_snapshots_at_low_quality_pass(quality: int) -> None:
    image = cv2.imdecode(np.frombuffer(face_jpeg("obama"), np.uint8), cv2.IMREAD_COLOR)
    ok, encoded = cv2.imencode(".jpg", cv2.resize(image, (1920, 1080)), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    check_jpeg(encoded.tobytes(), max_bytes=2_000_000)


def test_an_honest_6000x6600_encode_is_refused_for_its_pixels() -> None:
    ok, encoded = cv2.imencode(".jpg", np.full((6600, 6000), 128, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 1])
    assert ok
    with pytest.raises(PayloadRejected) as caught:
        check_jpeg(encoded.tobytes(), max_bytes=2_000_000)
    assert caught.value.status_code == 413
