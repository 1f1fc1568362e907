"""Exponential backoff with jitter for reconnects and retries ("full jitter" with a floor, so
a fleet of gateways does not reconnect in step and none spins)."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base: float = 0.25, cap: float = 30.0,
                 rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError("0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy

    def next(self) -> float:
        """The delay before the next attempt: uniform in [ceiling/2, ceiling], where the ceiling
        doubles per attempt from ``base`` up to ``cap``."""
        ceiling: float = min(self.cap, self.base * float(1 << min(self.attempts, 30)))
        self.attempts += 1
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def reset(self) -> None:
        self.attempts = 0
