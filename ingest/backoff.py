"""Capped exponential backoff with full jitter, for reconnect loops.

Attempt ``n`` (from 0) waits a uniformly random time in ``[0, min(max_s, initial_s * factor**n)]``
("full jitter"): many cameras that lost the same switch do not reconnect in lock-step.
"""

from __future__ import annotations

import math
import random

from gridwatch.core.config.cameras import BackoffConfig


class Backoff:
    """Delays for consecutive failed attempts; ``reset()`` after a success."""

    def __init__(
        self, initial_s: float, max_s: float, factor: float = 2.0, *, rng: random.Random | None = None
    ) -> None:
        if initial_s <= 0 or max_s <= 0:
            raise ValueError("initial_s and max_s must be positive")
        if factor < 1:
            raise ValueError("factor must be >= 1")
        self.initial_s = initial_s
        self.max_s = max(max_s, initial_s)
        self.factor = factor
        self._rng = rng if rng is not None else random.Random()
        self._attempts = 0

    @classmethod
    def from_config(cls, config: BackoffConfig, *, rng: random.Random | None = None) -> Backoff:
        return cls(config.initial_s, config.max_s, config.factor, rng=rng)

    @property
    def attempts(self) -> int:
        """Failed attempts since the last ``reset()``."""
        return self._attempts

    @property
    def ceiling_s(self) -> float:
        """The upper bound of the next delay."""
        # Compare in log space: factor**attempts overflows a float long before a reconnect loop ends.
        if self._attempts * math.log(self.factor) >= math.log(self.max_s / self.initial_s):
            return self.max_s
        return float(self.initial_s * self.factor**self._attempts)

    def next_delay(self) -> float:
        """The time to wait before the next attempt; each call counts one more failed attempt."""
        delay = self._rng.uniform(0.0, self.ceiling_s)
        self._attempts += 1
        return delay

    def reset(self) -> None:
        self._attempts = 0
