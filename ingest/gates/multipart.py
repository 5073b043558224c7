"""An incremental reader of endless multipart streams (ISAPI ``alertStream``, Dahua ``attach``).

Why not ``python-multipart``'s push parser (which the push endpoint does use, for finite bodies)?
Three things an endless device stream needs that it does not do:

- **Content-Length framing.** A boundary parser can only close a part when the *next* boundary
  arrives. Dahua writes the boundary *before* each part, so the last event would wait for the next
  heartbeat (seconds). Devices send ``Content-Length`` per part; with it a part is complete the moment
  its bytes are in, and the boundary is the fallback when the header is missing.
- **Resynchronisation.** A malformed part (bad header, oversized part, garbage between parts) is
  reported and skipped up to the next boundary; the stream goes on. A strict parser stops for good.
- **Bounded memory.** Each part is capped; an endless part without a boundary cannot eat the heap.

``feed()`` takes bytes as they arrive and returns what became complete: ``Part`` or ``MalformedPart``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

MAX_HEADER_BYTES = 16 * 1024

_BOUNDARY_PARAM = re.compile(r'boundary\s*=\s*(?:"(?P<quoted>[^"]+)"|(?P<token>[^;\s]+))', re.IGNORECASE)
_DISPOSITION_NAME = re.compile(r'(?:^|;)\s*name\s*=\s*(?:"(?P<quoted>[^"]*)"|(?P<token>[^;\s]*))', re.IGNORECASE)


class MultipartError(ValueError):
    """The stream cannot be read as multipart at all (e.g. no boundary in its Content-Type)."""


def boundary_from_content_type(content_type: str | None) -> str:
    """The ``boundary`` parameter of a multipart Content-Type header."""
    if not content_type or not content_type.strip().lower().startswith("multipart/"):
        raise MultipartError(f"expected a multipart response, got Content-Type {(content_type or '')[:80]!r}")
    match = _BOUNDARY_PARAM.search(content_type)
    if match is None:
        raise MultipartError("multipart Content-Type without a boundary")
    # Taken as given: leading dashes are part of many boundaries (curl's: "------------------------abc").
    boundary = match["quoted"] or match["token"]
    if len(boundary) > 200:
        raise MultipartError("multipart boundary longer than 200 characters")
    if not boundary.isascii():
        # RFC 2046 boundaries are ASCII; a UTF-8 header value could not even be encoded to match bytes.
        raise MultipartError("multipart boundary with non-ASCII characters")
    return boundary


@dataclass(frozen=True, slots=True)
class Part:
    """One complete part: lower-cased header names and the raw body."""

    headers: dict[str, str]
    body: bytes = field(repr=False)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def name(self) -> str | None:
        """The ``name`` of a ``Content-Disposition: form-data; name=...`` header, if any."""
        disposition = self.headers.get("content-disposition")
        if disposition is None:
            return None
        match = _DISPOSITION_NAME.search(disposition)
        if match is None:
            return None
        return match["quoted"] if match["quoted"] is not None else match["token"]


@dataclass(frozen=True, slots=True)
class MalformedPart:
    """Something in the stream that is not a usable part; ``reason`` is safe to log."""

    reason: str


class _State(enum.Enum):
    SEEK = "seek"  # looking for the next delimiter
    HEADERS = "headers"
    BODY = "body"
    DISCARD = "discard"  # dropping an oversized part up to the next delimiter
    SKIP = "skip"  # dropping a known number of bytes (an oversized part with Content-Length)
    CLOSED = "closed"  # the close delimiter was seen


class MultipartStreamReader:
    """Splits an endless multipart byte stream into parts. Not thread-safe; one per connection."""

    def __init__(self, boundary: str, *, max_part_bytes: int, max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        if not boundary:
            raise MultipartError("empty multipart boundary")
        self._delimiter = b"--" + boundary.encode("latin-1")
        self._max_part_bytes = max_part_bytes
        self._max_header_bytes = max_header_bytes
        self._buffer = bytearray()
        self._state = _State.SEEK
        self._headers: dict[str, str] = {}
        self._length: int | None = None
        self._skip = 0
        self._scan_from = 0  # where the next delimiter search starts (avoids rescanning a growing body)

    @property
    def closed(self) -> bool:
        """Whether the close delimiter (``--boundary--``) was seen: the sender ended the stream."""
        return self._state is _State.CLOSED

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a part."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Part | MalformedPart]:
        """Add received bytes; return the parts (and malformed pieces) they completed, in order."""
        if self._state is _State.CLOSED:
            return []
        self._buffer += data
        out: list[Part | MalformedPart] = []
        while self._step(out):
            pass
        return out

    # Each step consumes what it can and returns whether another step may make progress.
    def _step(self, out: list[Part | MalformedPart]) -> bool:
        if self._state is _State.SEEK:
            return self._seek(out)
        if self._state is _State.HEADERS:
            return self._read_headers(out)
        if self._state is _State.BODY:
            return self._read_body(out)
        if self._state is _State.DISCARD:
            return self._discard()
        if self._state is _State.SKIP:
            return self._skip_bytes()
        return False

    def _seek(self, out: list[Part | MalformedPart]) -> bool:
        index = self._buffer.find(self._delimiter)
        if index < 0:
            # Keep a tail that may be the start of a delimiter; report anything else as junk.
            keep = len(self._delimiter) - 1
            junk = bytes(self._buffer[:-keep]) if len(self._buffer) > keep else b""
            if junk.strip():
                out.append(MalformedPart(f"{len(junk)} bytes outside any part skipped"))
            if junk:
                del self._buffer[: len(junk)]
            return False
        # The line after the delimiter: "--" closes the stream, else optional padding and a line break.
        after = index + len(self._delimiter)
        if len(self._buffer) < after + 2:
            return False
        skipped = bytes(self._buffer[:index])
        if self._buffer[after : after + 2] == b"--":
            if skipped.strip():
                out.append(MalformedPart(f"{len(skipped)} bytes outside any part skipped"))
            self._buffer.clear()
            self._state = _State.CLOSED
            return False
        line_end = self._buffer.find(b"\n", after)
        if line_end < 0:
            if len(self._buffer) - after > 256:
                out.append(MalformedPart("delimiter line too long"))
                del self._buffer[:after]
                return True
            return False
        if self._buffer[after:line_end].strip():
            # "--boundaryX..." is not our delimiter: a longer boundary or body bytes. Skip past it.
            del self._buffer[:after]
            return True
        if skipped.strip():
            out.append(MalformedPart(f"{len(skipped)} bytes outside any part skipped"))
        del self._buffer[: line_end + 1]
        self._state = _State.HEADERS
        return True

    def _read_headers(self, out: list[Part | MalformedPart]) -> bool:
        end, sep = self._header_end()
        if end < 0:
            if len(self._buffer) > self._max_header_bytes:
                out.append(MalformedPart("part headers exceed the size limit"))
                self._state = _State.SEEK
                return True
            return False
        block = bytes(self._buffer[:end])
        del self._buffer[: end + sep]
        headers: dict[str, str] = {}
        for raw_line in block.split(b"\n"):
            line = raw_line.rstrip(b"\r")
            if not line:
                continue
            name, colon, value = line.partition(b":")
            if not colon or not name.strip() or name != name.strip():
                out.append(MalformedPart("malformed part header line"))
                self._state = _State.SEEK
                return True
            headers[name.decode("latin-1").lower()] = value.decode("latin-1").strip()
        self._headers = headers
        self._length = None
        length_text = headers.get("content-length")
        if length_text is not None:
            if not length_text.isdigit() or len(length_text) > 12:
                out.append(MalformedPart("malformed part Content-Length"))
                self._state = _State.SEEK
                return True
            self._length = int(length_text)
            if self._length > self._max_part_bytes:
                out.append(MalformedPart(f"part of {self._length} bytes exceeds the limit of {self._max_part_bytes}"))
                self._skip = self._length
                self._state = _State.SKIP
                return True
        self._state = _State.BODY
        self._scan_from = 0
        return True

    def _header_end(self) -> tuple[int, int]:
        """Index and length of the blank line ending the headers (CRLF CRLF, or bare LF LF)."""
        # A part with no headers at all starts its body right after the delimiter line.
        if self._buffer.startswith(b"\r\n"):
            return 0, 2
        if self._buffer.startswith(b"\n"):
            return 0, 1
        crlf = self._buffer.find(b"\r\n\r\n")
        lf = self._buffer.find(b"\n\n")
        if crlf >= 0 and (lf < 0 or crlf <= lf):
            return crlf, 4
        if lf >= 0:
            return lf, 2
        return -1, 0

    def _read_body(self, out: list[Part | MalformedPart]) -> bool:
        delimiter_at = self._find_delimiter()
        if self._length is not None and (delimiter_at < 0 or delimiter_at >= self._length):
            if len(self._buffer) < self._length:
                return False
            body = bytes(self._buffer[: self._length])
            del self._buffer[: self._length]
            out.append(Part(self._headers, body))
            self._state = _State.SEEK
            return True
        if delimiter_at < 0:
            if len(self._buffer) > self._max_part_bytes:
                out.append(MalformedPart(f"part exceeds the limit of {self._max_part_bytes} bytes"))
                self._state = _State.DISCARD
                return True
            return False
        # The line break before the delimiter belongs to the delimiter, not the body.
        body = bytes(self._buffer[:delimiter_at])
        if body.endswith(b"\r\n"):
            body = body[:-2]
        elif body.endswith(b"\n"):
            body = body[:-1]
        del self._buffer[:delimiter_at]
        if len(body) > self._max_part_bytes:
            # The whole part arrived in one piece, delimiter included: the bound holds here too.
            out.append(MalformedPart(f"part exceeds the limit of {self._max_part_bytes} bytes"))
        else:
            out.append(Part(self._headers, body))
        self._state = _State.SEEK
        return True

    def _find_delimiter(self) -> int:
        """Start of the next ``\\n--boundary`` in the buffer (at the ``\\n`` + 1), or -1."""
        needle = b"\n" + self._delimiter
        while True:
            index = self._buffer.find(needle, self._scan_from)
            if index < 0:
                self._scan_from = max(0, len(self._buffer) - len(needle) + 1)
                return -1
            after = bytes(self._buffer[index + len(needle) : index + len(needle) + 2])
            # A delimiter is followed by a line break, padding or "--"; "--boundaryX" is body text.
            if after[:1] in (b"\r", b"\n", b" ", b"\t") or after == b"--":
                return index + 1
            if after in (b"", b"-"):
                self._scan_from = index  # cannot tell yet: look again when more bytes are in
                return -1
            self._scan_from = index + 1

    def _discard(self) -> bool:
        delimiter_at = self._find_delimiter()
        if delimiter_at < 0:
            keep = len(self._delimiter) + 1
            if len(self._buffer) > keep:
                del self._buffer[:-keep]
                self._scan_from = 0
            return False
        del self._buffer[:delimiter_at]
        self._state = _State.SEEK
        return True

    def _skip_bytes(self) -> bool:
        taken = min(self._skip, len(self._buffer))
        del self._buffer[:taken]
        self._skip -= taken
        if self._skip:
            return False
        self._state = _State.SEEK
        return True
