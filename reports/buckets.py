"""Fixed histogram buckets of business time to stop (pure, no ORM).

Every roll-up row keeps, per metric, how many stopped clocks fall in each bucket. A median or
p90 is then located in one bucket from the roll-ups alone, and the exact value is read from the
few per-ticket facts in that bucket (see reports/selectors.py), so the figures are exact while
the cost does not grow with history.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import timedelta

_MIN = 60
_HOUR = 3600
# Bucket 0 holds exactly zero (common: answered before the working day began), so a quantile
# that lands there needs no read at all. Then narrow buckets, so that the one bucket a quantile
# is read from holds a small share of the period's clocks.
_MINUTES = (1, 2, 3, 5, 7, 10, 15, 20, 25, 30, 40, 50)
_HOURS = (
    1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 20,
    22, 24, 28, 32, 36, 40, 44, 48, 56, 64, 72, 80, 90, 100, 120, 140, 160, 200, 250, 300,
    400, 500, 700, 1000, 1500,
)  # fmt: skip
# Lower edges in seconds; bucket i holds [EDGES[i], EDGES[i + 1]), the last is open-ended.
EDGES: tuple[float, ...] = (
    0,
    1e-6,
    *(m * _MIN for m in _MINUTES),
    *(h * _HOUR for h in _HOURS),
)
COUNT = len(EDGES)
ZERO_BUCKET = 0


def bucket_of(duration: timedelta) -> int:
    """Index of the bucket holding `duration` (negative durations go to the first bucket)."""
    seconds = duration.total_seconds()
    return max(0, bisect_right(EDGES, seconds) - 1)


def bucket_label(index: int) -> str:
    """A short human label such as "4–4.5 h", "0" or "≥ 1500 h"."""

    def fmt(seconds: float) -> str:
        if seconds < _HOUR:
            return f"{seconds / _MIN:g} min"
        return f"{seconds / _HOUR:g} h"

    if index == ZERO_BUCKET:
        return "0"
    if index == 1:
        return f"< {fmt(EDGES[2])}"
    low = EDGES[index]
    if index + 1 >= COUNT:
        return f"≥ {fmt(low)}"
    return f"{fmt(low)} – {fmt(EDGES[index + 1])}"
