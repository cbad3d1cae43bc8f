"""Helpers for the escalation tests: point this process's Celery app at another broker and
read what was published (kombu's in-memory transport is a real broker, in-process)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from kombu import pools

from servicedesk.celery import app


def _reset_pools() -> None:
    # kombu keeps one pool per broker URL in a process-wide registry: clear it, not just
    # our reference, or a later switch back would find a closed pool.
    pools.reset()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None


@contextmanager
def celery_broker(url: str):
    """Publish from this process to `url` for the duration of the block."""
    old = app.conf.broker_url
    _reset_pools()
    app.conf.broker_url = url
    try:
        yield app
    finally:
        _reset_pools()
        app.conf.broker_url = old


@dataclass
class Published:
    task: str
    args: list
    eta: str | None


def drain(queue: str = "celery") -> list[Published]:
    """Take every message waiting in `queue` of the current (memory://) broker."""
    found = []
    with app.connection_for_read() as conn:
        simple = conn.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get_nowait()
                except simple.Empty:
                    break
                args = message.payload[0] if isinstance(message.payload, list) else []
                found.append(Published(message.headers["task"], args, message.headers.get("eta")))
                message.ack()
        finally:
            simple.close()
    return found
