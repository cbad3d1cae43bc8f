"""Django's Redis cache backend, reusing one redis-py client per connection pool.

Django builds a new `redis.Redis` object for every cache operation (its response-callback
table alone is ~200 entries); the throttle, sessions and dashboard tokens make several cache
operations per request. A client is only a thin handle on its connection pool, and
redis-py clients are thread-safe, so one per pool is enough.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient


class _ReusingClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _ReusingClient

    def incr_with_expiry(self, key: str, timeout: int) -> int:
        """Add one to the integer at `key` (0 when missing) and keep it `timeout` more seconds,
        in one round trip (the API throttle's counters: servicedesk/api/throttling.py)."""
        key = self.make_and_validate_key(key)
        pipeline = self._cache.get_client(key, write=True).pipeline(transaction=False)
        pipeline.incr(key)
        pipeline.expire(key, timeout)
        return pipeline.execute()[0]
