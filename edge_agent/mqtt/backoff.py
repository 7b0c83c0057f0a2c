"""Reconnect delays: exponential growth with jitter, capped.

A fleet of gateways that lost the same broker must not come back in lock
step, so every delay is drawn at random from the upper half of a window
that doubles per failed attempt ("equal jitter"): the first delay lies in
``[min_s, 2 * min_s]``, later ones never exceed ``max_s`` and never fall
below ``min_s``. The lower bound keeps a gateway from hammering a broker
that is down; the random half spreads a fleet's reconnects out.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]

# Growth factor per failed attempt: doubling reaches a 120 s cap from 1 s in
# seven attempts, fast enough to notice a broker that is back within minutes.
GROWTH_FACTOR = 2.0
# Largest exponent used: 2**64 times any sane minimum is past every cap.
MAX_EXPONENT = 64


class Backoff:
    """Hand out reconnect delays for one reconnect loop."""

    def __init__(
        self, min_s: float, max_s: float, *, rng: random.Random | None = None
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(
                f"backoff bounds: need 0 < min_s <= max_s, got {min_s}, {max_s}"
            )
        self.min_s = min_s
        self.max_s = max_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay_s(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        # Cap the exponent too: a gateway offline for weeks must not overflow.
        exponent = min(self.attempt + 1, MAX_EXPONENT)
        window_s = min(self.max_s, self.min_s * GROWTH_FACTOR**exponent)
        self.attempt += 1
        return self._rng.uniform(max(self.min_s, window_s / 2), window_s)

    def reset(self) -> None:
        """Start again from the smallest window (after a good connection)."""
        self.attempt = 0
