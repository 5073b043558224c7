"""Capped exponential backoff with full jitter."""

from __future__ import annotations

import random

import pytest

from gridwatch.core.config.cameras import BackoffConfig
from ingest.backoff import Backoff


def test_ceiling_grows_by_factor_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 4.0, 2.0, rng=random.Random(1))
    ceilings = []
    for _ in range(6):
        ceilings.append(backoff.ceiling_s)
        backoff.next_delay()
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.attempts == 6


def test_delays_are_jittered_within_the_ceiling() -> None:
    backoff = Backoff(1.0, 8.0, 2.0, rng=random.Random(7))
    for _ in range(50):
        ceiling = backoff.ceiling_s
        delay = backoff.next_delay()
        assert 0.0 <= delay <= ceiling
    delays = {Backoff(1.0, 8.0, rng=random.Random(seed)).next_delay() for seed in range(20)}
    assert len(delays) > 1  # jitter, not a fixed delay


def test_reset_starts_over() -> None:
    backoff = Backoff(0.5, 30.0, 3.0)
    for _ in range(4):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.ceiling_s == 0.5


def test_many_attempts_do_not_overflow() -> None:
    backoff = Backoff(0.5, 3600.0, 10.0)
    for _ in range(5000):
        backoff.next_delay()
    assert backoff.ceiling_s == 3600.0


def test_from_config() -> None:
    backoff = Backoff.from_config(BackoffConfig(initial_s=0.2, max_s=1.0, factor=3.0))
    assert (backoff.initial_s, backoff.max_s, backoff.factor) == (0.2, 1.0, 3.0)


@pytest.mark.parametrize(
    ("initial_s", "max_s", "factor", "error"),
    [
        (0.0, 1.0, 2.0, ValueError),
        (1.0, -1.0, 2.0, ValueError),
        (1.0, 2.0, 0.5, ValueError),
        (1.0, 2.0, 1.0, None),
    ],
)
def test_arguments_are_checked(initial_s: float, max_s: float, factor: float, error: type[Exception] | None) -> None:
    if error is None:
        Backoff(initial_s, max_s, factor)
    else:
        with pytest.raises(error):
            Backoff(initial_s, max_s, factor)
