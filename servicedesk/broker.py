"""Kombu's Redis transport with one fix: a worker survives Redis going away.

With Celery 5.7 / kombu 5.7, when the broker connection drops while the worker holds
unacknowledged messages (our ETA tasks, held for up to SLA_SCHEDULE_HORIZON_SECONDS), the
consumer closes the broken connection twice: the first close clears the transport's
`client`, the second tries to restore the unacked messages, builds a Redis connection pool
from that `client` and dies with ``AttributeError: 'NoneType' object has no attribute
'hostname'``. Celery treats the AttributeError as unrecoverable and the worker exits
(same failure as celery/kombu#582 and #970). Raising the Redis *connection* error the
cleanup code already ignores lets the consumer reconnect instead. Messages it could not
restore stay in Redis's unacked set (restored after the visibility timeout) or are gone with
a restarted Redis; the SLA sweep fires whatever they carried (SPEC §4).

`servicedesk.celery` registers this class for ``redis://`` URLs; tests/test_worker_faults.py
stops and restarts Redis under a running worker to hold it to that.
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous=False):
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class RedisTransport(kombu_redis.Transport):
    Channel = Channel


def register() -> None:
    """Use RedisTransport for every redis:// broker URL in this process."""
    TRANSPORT_ALIASES["redis"] = "servicedesk.broker:RedisTransport"
