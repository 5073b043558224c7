"""The rate-limited log filter: one line per template per interval, a per-logger cap, the suppressed count."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from gridwatch.core.logs import RateLimitFilter, prepare_handler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def captured(clock: Clock) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Two handlers sharing one filter on the ``uvicorn.error`` and ``ingest.gates.x`` loggers, like the service's."""
    first, second = io.StringIO(), io.StringIO()
    rate_limit = RateLimitFilter(interval_s=60, per_logger=5, clock=clock)
    handlers = [prepare_handler(logging.StreamHandler(stream), rate_limit) for stream in (first, second)]
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "ingest.gates.x", "gridwatch.service")]
    for logger in loggers:
        logger.propagate = False
        logger.setLevel(logging.INFO)
        for handler in handlers:
            logger.addHandler(handler)
    try:
        yield first, second
    finally:
        for logger in loggers:
            for handler in handlers:
                logger.removeHandler(handler)
            logger.propagate = True
            logger.setLevel(logging.NOTSET)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_flood_of_one_template_writes_one_line_then_one_line_with_the_count(
    captured: tuple[io.StringIO, io.StringIO], clock: Clock
) -> None:
    first, second = captured
    log = logging.getLogger("uvicorn.error")
    for n in range(10_000):
        log.error("socket.accept() out of system resource: fd %d", n)
    assert len(lines(first)) == 1
    assert "fd 0" in lines(first)[0]

    clock.now += 61
    log.error("socket.accept() out of system resource: fd %d", 10_000)
    got = lines(first)
    assert len(got) == 2
    assert "fd 10000" in got[1]
    assert "[9999 more like this suppressed in 60 s]" in got[1]
    # Both handlers share the filter and say the same: the second handler did not see a "repeat".
    assert lines(second) == got


def test_different_templates_pass_up_to_the_per_logger_cap(captured: tuple[io.StringIO, io.StringIO]) -> None:
    first, _ = captured
    log = logging.getLogger("ingest.gates.x")
    for n in range(100):
        log.warning(f"gate g: rejected {n}")  # a new template each time, as an f-string makes
    assert len(lines(first)) == 5


def test_the_per_logger_count_is_reported_after_the_interval(
    captured: tuple[io.StringIO, io.StringIO], clock: Clock
) -> None:
    first, _ = captured
    log = logging.getLogger("ingest.gates.x")
    for n in range(8):
        log.warning(f"line {n}")
    clock.now += 60
    log.warning("after")
    assert lines(first)[-1].endswith("after [3 lines of this logger suppressed in 60 s]")


def test_loggers_outside_the_list_are_never_limited(captured: tuple[io.StringIO, io.StringIO]) -> None:
    first, _ = captured
    for _ in range(50):
        logging.getLogger("gridwatch.service").info("same line")
    assert len(lines(first)) == 50


def test_redaction_still_applies_after_the_rate_limit(captured: tuple[io.StringIO, io.StringIO]) -> None:
    first, _ = captured
    logging.getLogger("uvicorn.error").warning("could not reach %s", "rtsp://admin:hunter2@10.0.0.5/stream")
    assert "hunter2" not in first.getvalue()
    assert "10.0.0.5" in first.getvalue()


def test_the_table_of_templates_stays_bounded(clock: Clock) -> None:
    rate_limit = RateLimitFilter(loggers=("x",), per_logger=10**9, clock=clock)
    for n in range(10_000):
        record = logging.LogRecord("x", logging.WARNING, __file__, 1, f"template {n}", None, None)
        assert rate_limit.filter(record)
    assert len(rate_limit._templates) <= 1024
