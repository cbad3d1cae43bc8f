"""API rate limits counted per fixed window: one cache round trip per request.

DRF's SimpleRateThrottle keeps, per client, the list of its request times in the cache, and
reads it and writes it back on every request: two round trips, and a list as long as the
rate allows (a person may make 6,000 requests a minute here: ~50 kB pickled each way). A
counter per window answers the question the limit asks — more than N requests in this
window? — with one increment. A fixed window lets a client make up to twice the rate across
a window's boundary; the limit guards against runaway clients, it is not an exact quota.
"""

from __future__ import annotations

from django.core.cache import cache
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


def _count(key: str, timeout: int) -> int:
    """Add one to the counter `key` (created with `timeout` seconds to live) and return it."""
    incr_with_expiry = getattr(cache, "incr_with_expiry", None)
    if incr_with_expiry is not None:  # servicedesk.cache.RedisCache: one round trip
        return incr_with_expiry(key, timeout)
    cache.add(key, 0, timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, timeout)
        return 1


class _CountingThrottle:
    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        count = _count(f"{self.key}:{window}", self.duration + 1)
        if count > self.num_requests:
            return self.throttle_failure()
        return self.throttle_success()

    def throttle_success(self) -> bool:
        return True

    def wait(self) -> float:
        """Seconds until the window ends (the Retry-After header)."""
        return max(0.0, self.window_ends - self.now)


class CountingAnonRateThrottle(_CountingThrottle, AnonRateThrottle):
    """AnonRateThrottle's limit (per client address), counted per fixed window."""


class CountingUserRateThrottle(_CountingThrottle, UserRateThrottle):
    """UserRateThrottle's limit (per person, or address when anonymous), counted per fixed
    window."""
