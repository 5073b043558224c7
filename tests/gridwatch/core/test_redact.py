"""Credential masking in URLs, free text and log records."""

from __future__ import annotations

import base64
import io
import logging
import re
import sys
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from gridwatch.core.redact import (
    RedactingFilter,
    SecretSet,
    install_redaction,
    mask_url,
    redact_text,
    register_secrets,
)


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


# --- configured secrets -------------------------------------------------------------------------

PASSWORD = "Gw@ta%5!x:q7"


def test_a_secret_is_masked_raw_percent_encoded_and_base64() -> None:
    secrets = SecretSet()
    secrets.add([("viewer", PASSWORD)])
    basic = base64.b64encode(f"viewer:{PASSWORD}".encode()).decode()
    for form in (
        PASSWORD,
        quote(PASSWORD, safe=""),
        re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(PASSWORD, safe="")),
        quote(PASSWORD, safe="!$&'()*+,;=:"),
        base64.b64encode(PASSWORD.encode()).decode(),
        basic,
    ):
        masked = secrets.mask(f"[rtsp @ 0x55] 401 ({form}) Authorization: Basic {basic}")
        assert masked == "[rtsp @ 0x55] 401 (***) Authorization: Basic ***", form


def test_a_percent_encoded_secret_is_masked_decoded_too() -> None:
    secrets = SecretSet()
    secrets.add([quote(PASSWORD, safe="")])
    assert secrets.mask(f"login {PASSWORD} failed") == "login *** failed"


def test_the_set_grows_and_short_secrets_are_left_to_the_url_masking() -> None:
    secrets = SecretSet()
    assert secrets.add(["abc"]) == 0  # too short to mask in free text
    assert secrets.mask("abc") == "abc"
    assert secrets.add(["first-secret"]) > 0
    assert secrets.add(["first-secret"]) == 0
    secrets.add(["second-secret"])
    assert secrets.mask("first-secret second-secret") == "*** ***"


def test_redact_text_masks_registered_secrets() -> None:
    register_secrets(["Zq9-registered-for-test"])
    assert redact_text("got Zq9-registered-for-test back") == "got *** back"


def test_of_two_secrets_one_extending_the_other_the_longer_is_masked_whole() -> None:
    secrets = SecretSet()
    secrets.add(["shared-prefix", "shared-prefix-and-more", "shared-other"])
    assert secrets.mask("a shared-prefix-and-more b shared-prefix-and c shared-other") == "a *** b ***-and c ***"
