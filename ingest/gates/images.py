"""Check a gate's face snapshot before it goes to recognition: a whole JPEG of sane size.

Devices send truncated pictures when a connection drops mid-part, and a hostile sender can send
anything. The check is done in memory only (nothing touches the disk): size limit, the JPEG start
and end markers, the frame size from the SOF header (so a tiny file cannot ask for a huge
decode), and finally ``cv2.imdecode``. The decoded pixels are thrown away; recognition decodes again.
"""

from __future__ import annotations

import cv2
import numpy as np

from ingest.gates.common import PayloadRejected

JPEG_START = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
MAX_PIXELS = 40_000_000  # 40 MP: far above any face terminal's snapshot

# Start-of-frame markers carry the picture size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not SOFs.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the first SOF header, or ``None`` if the markers do not lead to one."""
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if pos + 9 > end:
                return None
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        if marker == 0xDA:  # start of scan before any SOF
            return None
        pos += 2 + length
    return None


def check_jpeg(data: bytes, *, max_bytes: int) -> None:
    """Raise ``PayloadRejected`` unless ``data`` is one complete, decodable JPEG of at most ``max_bytes``.

    CPU-bound (a decode): call it in a worker thread from async code.
    """
    if len(data) > max_bytes:
        raise PayloadRejected(f"picture of {len(data)} bytes exceeds the limit of {max_bytes} bytes", status_code=413)
    if not data.startswith(JPEG_START):
        raise PayloadRejected("picture is not a JPEG image", status_code=415)
    # Some devices pad a part with CR/LF or NUL bytes after the end-of-image marker.
    if not data.rstrip(b"\r\n\x00").endswith(JPEG_END):
        raise PayloadRejected("picture is truncated (no JPEG end-of-image marker)")
    size = jpeg_size(data)
    if size is None:
        raise PayloadRejected("picture has no readable JPEG frame header")
    width, height = size
    if width == 0 or height == 0 or width * height > MAX_PIXELS:
        raise PayloadRejected(f"picture of {width}x{height} pixels is out of range")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise PayloadRejected("picture cannot be decoded as a JPEG image")
