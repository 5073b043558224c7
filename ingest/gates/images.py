"""Check a gate's face snapshot before it goes to recognition, from its headers only: no decode.

Devices send truncated pictures when a connection drops mid-part, and a hostile sender can send
anything — among it a few hundred bytes whose header asks for a 6000×6600 decode (~240 MB and 0.7 s
of CPU each). So the check reads only the JPEG markers (in memory, nothing touches the disk): the
byte size, the start and end markers, the frame size from the SOF header, and how many bytes of
image data there are for that many pixels. A picture that passes is decoded exactly once, by
recognition (``recognition.stage.decode_jpeg``); the caps below bound what that decode can cost.

Operating limits (what a device sees when one is hit: ISAPI push a 4xx with ``{"error": reason}``,
MQTT a ``rejected`` acknowledgement with the reason, the device streams a counted rejection):

- ``MAX_SIDE``: width and height at most 4096 pixels (413).
- ``MAX_PIXELS``: at most 16 MP (413). A face terminal's snapshot is ≤ 1920×1080 (2 MP); the largest
  photo in the test data is 2204×1850 (4 MP). The decode of 16 MP is ~48 MB of pixels.
- ``MAX_PIXELS_PER_BYTE``: at most 512 pixels per byte of entropy-coded image data (400). Measured:
  the 235 real JPEGs in the test data have 0.6–20 pixels per byte; real gate snapshots (20–200 KB for
  ≤ 1920×1080) 10–104; a real face re-encoded at quality 10 38; even a flat grey frame at quality 1
  (nothing in it) 62 (baseline) and 255 (progressive). The 520-byte 6000×6600 probe had ~76,000.
  Counting only the bytes after the first SOS marker means padding metadata cannot buy pixels.
- Only 8-bit Huffman JPEG (SOF0 baseline, SOF1 extended, SOF2 progressive) with 1 or 3 components
  (415): what cameras write; arithmetic, lossless and hierarchical coding only widen the decoder
  surface an attacker can reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.gates.common import PayloadRejected

JPEG_START = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
MAX_SIDE = 4096
MAX_PIXELS = 16_000_000
MAX_PIXELS_PER_BYTE = 512

# Start-of-frame markers carry the picture size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not SOFs.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SUPPORTED_SOF = frozenset({0xC0, 0xC1, 0xC2})
_SUPPORTED_COMPONENTS = frozenset({1, 3})
_SOS = 0xDA
# Markers without a length field.
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])
# Marker segments (and fill bytes) read before giving up: real files have 10–30 (APPn, DQT, SOF, DHT, SOS).
# Without a bound, 2 MB of empty comment segments would be half a million steps on the event loop.
MAX_MARKER_STEPS = 256


@dataclass(frozen=True, slots=True)
class JpegHeader:
    """What the markers before the image data say: enough to know the cost of a decode."""

    marker: int  # the SOF marker (0xC0 baseline, 0xC2 progressive, ...)
    precision: int
    width: int
    height: int
    components: int
    scan_offset: int | None  # where the first SOS marker starts; None when no SOS follows the SOF

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_jpeg_header(data: bytes) -> JpegHeader | None:
    """The first SOF header and where the image data starts, or ``None`` if the markers do not lead to a SOF.

    Walks the marker segments by their lengths: every step moves forward, and there are at most
    ``MAX_MARKER_STEPS`` of them.
    """
    pos = 2
    end = len(data)
    frame: tuple[int, int, int, int, int] | None = None
    for _ in range(MAX_MARKER_STEPS):
        if pos + 4 > end:
            break
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        if marker == _SOS:
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            break
        if frame is None and marker in _SOF_MARKERS:
            if pos + 10 > end:
                return None
            precision = data[pos + 4]
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            frame = (marker, precision, width, height, data[pos + 9])
        pos += 2 + length
    else:
        return None
    if frame is None:
        return None
    sos_at = pos if pos + 4 <= end and data[pos] == 0xFF and data[pos + 1] == _SOS else None
    marker, precision, width, height, components = frame
    return JpegHeader(marker, precision, width, height, components, sos_at)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the first SOF header, or ``None`` if the markers do not lead to one."""
    header = read_jpeg_header(data)
    return None if header is None else (header.width, header.height)


def check_jpeg(data: bytes, *, max_bytes: int) -> JpegHeader:
    """The header of ``data`` if it is one complete JPEG within the operating limits; else ``PayloadRejected``.

    Cheap (markers only, no decode): safe to call on the event loop.
    """
    if len(data) > max_bytes:
        raise PayloadRejected(f"picture of {len(data)} bytes exceeds the limit of {max_bytes} bytes", status_code=413)
    if not data.startswith(JPEG_START):
        raise PayloadRejected("picture is not a JPEG image", status_code=415)
    # Some devices pad a part with CR/LF or NUL bytes after the end-of-image marker.
    trimmed = data.rstrip(b"\r\n\x00")
    if not trimmed.endswith(JPEG_END):
        raise PayloadRejected("picture is truncated (no JPEG end-of-image marker)")
    header = read_jpeg_header(data)
    if header is None:
        raise PayloadRejected("picture has no readable JPEG frame header")
    if header.marker not in _SUPPORTED_SOF or header.precision != 8:
        raise PayloadRejected("picture uses a JPEG coding cameras do not write (8-bit Huffman only)", status_code=415)
    if header.components not in _SUPPORTED_COMPONENTS:
        raise PayloadRejected(f"picture has {header.components} colour components (1 or 3 accepted)", status_code=415)
    width, height = header.width, header.height
    if width == 0 or height == 0:
        raise PayloadRejected(f"picture of {width}x{height} pixels is empty")
    if width > MAX_SIDE or height > MAX_SIDE or header.pixels > MAX_PIXELS:
        raise PayloadRejected(
            f"picture of {width}x{height} pixels exceeds the limit of {MAX_SIDE} pixels a side "
            f"and {MAX_PIXELS} pixels in all",
            status_code=413,
        )
    if header.scan_offset is None:
        raise PayloadRejected("picture has no JPEG image data (no start-of-scan marker after the frame header)")
    scan_bytes = len(trimmed) - header.scan_offset
    if header.pixels > scan_bytes * MAX_PIXELS_PER_BYTE:
        raise PayloadRejected(
            f"picture of {width}x{height} pixels has only {scan_bytes} bytes of image data "
            f"(more than {MAX_PIXELS_PER_BYTE} pixels a byte: not a photograph)"
        )
    return header
