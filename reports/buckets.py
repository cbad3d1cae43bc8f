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
# Lower edges in seconds; bucket i holds [EDGES[i], EDGES[i + 1]), the last is open-ended.
EDGES: tuple[int, ...] = (
    0,
    5 * _MIN,
    10 * _MIN,
    15 * _MIN,
    30 * _MIN,
    45 * _MIN,
    1 * _HOUR,
    90 * _MIN,
    2 * _HOUR,
    3 * _HOUR,
    4 * _HOUR,
    5 * _HOUR,
    6 * _HOUR,
    8 * _HOUR,
    10 * _HOUR,
    12 * _HOUR,
    16 * _HOUR,
    20 * _HOUR,
    24 * _HOUR,
    32 * _HOUR,
    40 * _HOUR,
    48 * _HOUR,
    64 * _HOUR,
    80 * _HOUR,
    100 * _HOUR,
    120 * _HOUR,
    160 * _HOUR,
    200 * _HOUR,
    300 * _HOUR,
    400 * _HOUR,
    600 * _HOUR,
    1000 * _HOUR,
)
COUNT = len(EDGES)


def bucket_of(duration: timedelta) -> int:
    """Index of the bucket holding `duration` (negative durations go to the first bucket)."""
    seconds = duration.total_seconds()
    return max(0, bisect_right(EDGES, seconds) - 1)


def bucket_label(index: int) -> str:
    """A short human label such as "4–5 h" or "≥ 1000 h"."""

    def fmt(seconds: int) -> str:
        if seconds < _HOUR:
            return f"{seconds // _MIN} min"
        hours = seconds / _HOUR
        return f"{hours:g} h"

    low = EDGES[index]
    if index + 1 >= COUNT:
        return f"≥ {fmt(low)}"
    return f"{fmt(low)} – {fmt(EDGES[index + 1])}"
