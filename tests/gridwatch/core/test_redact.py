"""Credential masking in URLs, free text and log records."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from gridwatch.core.redact import RedactingFilter, install_redaction, mask_url, redact_text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:secret@10.0.0.7:554/Streaming/101", "rtsp://***@10.0.0.7:554/Streaming/101"),
        ("rtsps://admin:secret@cam.example/live", "rtsps://***@cam.example/live"),
        ("http://user:pw@host/ISAPI/Event", "http://***@host/ISAPI/Event"),
        ("https://token@host:8443/x", "https://***@host:8443/x"),
        ("rtsp://admin@10.0.0.7/", "rtsp://***@10.0.0.7/"),
        ("rtsp://admin:p@ss@10.0.0.7/x", "rtsp://***@10.0.0.7/x"),  # raw "@" in the password
        ("rtsp://admin:s%40cret@10.0.0.7", "rtsp://***@10.0.0.7"),
        ("RTSP://Admin:Secret@10.0.0.7", "RTSP://***@10.0.0.7"),
        ("rtsp://10.0.0.7:554/x", "rtsp://10.0.0.7:554/x"),  # nothing to mask
        ("rtsp://10.0.0.7/path@with-at", "rtsp://10.0.0.7/path@with-at"),  # "@" in the path stays
        ("http://host/?next=a@b", "http://host/?next=a@b"),
        ("/var/videos/demo.mp4", "/var/videos/demo.mp4"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_redact_text_masks_every_url_in_a_message() -> None:
    text = (
        "[rtsp @ 0x55d0c0] method DESCRIBE failed on 'rtsp://a:one@h1/s' "
        "then rtsp://b:two@h2:554/s2 (user@example.org stays)"
    )
    masked = redact_text(text)
    assert "one" not in masked
    assert "two" not in masked
    assert "'rtsp://***@h1/s'" in masked
    assert "rtsp://***@h2:554/s2" in masked
    assert "[rtsp @ 0x55d0c0]" in masked
    assert "user@example.org" in masked


def test_redact_text_without_urls_is_unchanged() -> None:
    assert redact_text("camera cam1 offline: timeout") == "camera cam1 offline: timeout"


def _record(msg: object, args: tuple[object, ...] | None = None, **kwargs: object) -> logging.LogRecord:
    return logging.LogRecord("t", logging.WARNING, __file__, 1, msg, args, None, **kwargs)  # type: ignore[arg-type]


def test_filter_masks_formatted_arguments() -> None:
    record = _record("cannot open %s after %d tries", ("rtsp://u:secret@h/x", 3))
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "cannot open rtsp://***@h/x after 3 tries"
    assert "secret" not in str(record.msg)
    assert not record.args


def test_filter_masks_exception_text() -> None:
    try:
        raise ConnectionError("cannot open rtsp://u:secret@h/x")
    except ConnectionError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    RedactingFilter().filter(record)
    assert record.exc_text is not None
    assert "secret" not in record.exc_text
    assert "rtsp://***@h/x" in record.exc_text


def test_filter_keeps_records_with_malformed_arguments() -> None:
    record = _record("rtsp://u:secret@h %d", ("not a number",))
    assert RedactingFilter().filter(record) is True
    assert "secret" not in record.getMessage()


@pytest.fixture
def isolated_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    logger = logging.getLogger("gridwatch.test_redact")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()
        logger.propagate = True


def test_install_redaction_masks_what_handlers_write(
    isolated_logger: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = isolated_logger
    first = install_redaction(logger)
    second = install_redaction(logger)
    assert first is second
    assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1
    assert all(sum(isinstance(f, RedactingFilter) for f in h.filters) == 1 for h in logger.handlers)

    logger.info("camera %s at %s", "cam1", "rtsp://admin:hunter2@10.0.0.7/live")
    child = logging.getLogger("gridwatch.test_redact.child")
    child.warning("ffmpeg said: rtsp://admin:hunter2@10.0.0.7/live 401")  # propagated record
    output = stream.getvalue()
    assert "hunter2" not in output
    assert output.count("rtsp://***@10.0.0.7/live") == 2
