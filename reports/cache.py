"""Rendered dashboard fragments in the cache, invalidated exactly (issue 10).

A fragment (the figures of a department dashboard, the organisation map) is stored with what
it was computed from, and served again only while all of it still holds:

- **Generation tokens**, one per department plus one for the whole organisation and an epoch.
  Every write of the reports' facts or roll-ups (reports/services.py) replaces the tokens of
  the departments it touched (supplier and customer, before and after the change) when the
  transaction commits, so a reader that computed from the pre-commit snapshot cannot keep its
  fragment. A rebuild replaces the epoch. A
  reader reads the tokens *before* it reads the database, so a fragment is never newer-keyed
  than its data.
- **Valid until**: the figures that depend on "now" (breached now, at risk, a pending clock
  counted breached once its deadline has passed) change at the next pending deadline or
  warning instant of the scope; the fragment is not served from that instant on.
- **Labels fingerprint**: department, service and agent names, slugs and codes, and the
  services' confidential flag are not roll-ups; a hash of those rows is stored and compared
  with a fresh read (one small query) on every hit.

The cache is a speed-up, never a source of truth: if it is unreachable, the page is computed.
A timeout bounds how long an entry can outlive a lost invalidation (cache down during a bump).
Only a cache the processes share (Redis) is used: with a per-process one (the embedded mode's
LocMemCache) a write served by another web worker, or fired by the Celery worker, would bump
the tokens in its own process only, so every page is computed.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

logger = logging.getLogger(__name__)

PREFIX = "reports:gen:"
EPOCH = f"{PREFIX}epoch"
ORGANISATION = f"{PREFIX}all"
# Seconds; a bound on staleness only if an invalidation was lost (the cache was unreachable).
TIMEOUT = 600
# Backends whose entries live in one process: no other process's invalidation reaches them.
PER_PROCESS_BACKENDS = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}


def _shared() -> bool:
    return settings.CACHES.get("default", {}).get("BACKEND") not in PER_PROCESS_BACKENDS


def department_key(department_id: int) -> str:
    return f"{PREFIX}{department_id}"


def _set_tokens(keys: Iterable[str]) -> None:
    token = uuid.uuid4().hex
    try:
        cache.set_many(dict.fromkeys(keys, token), timeout=None)
    except Exception:  # the cache is a speed-up: a write must not fail because of it
        logger.exception("reports cache: could not invalidate %s", sorted(keys))


def _bump(keys: set[str]) -> None:
    # When the write commits (at once outside a transaction): a reader reads the tokens before
    # the database, so whatever it computed from the rows before the commit carries tokens
    # this replaces. A bump before the commit as well would guard nothing more: a reader
    # between it and the commit still computes from the old rows, under the new tokens.
    # Robust: a commit hook of the same transaction that raised must not skip it.
    transaction.on_commit(lambda: _set_tokens(keys), robust=True)


def departments_changed(department_ids: Iterable[int]) -> None:
    """Invalidate the dashboards of these departments and the organisation map."""
    keys = {department_key(pk) for pk in department_ids if pk}
    keys.add(ORGANISATION)
    _bump(keys)


def facts_changed(*facts: dict | None) -> None:
    """Invalidate what depends on these (old and new) facts of a ticket."""
    departments_changed(
        {fact[name] for fact in facts if fact for name in ("supplier_id", "customer_id")}
    )


def forget_every_fragment() -> None:
    """Invalidate every fragment now, whatever transaction is open (a new epoch)."""
    _set_tokens({EPOCH})


def everything_changed() -> None:
    """Invalidate every fragment (after a rebuild or a bulk rewrite of the roll-ups)."""
    _bump({EPOCH, ORGANISATION})


# --- Labels ---------------------------------------------------------------------------------


def label_rows(user_ids: Iterable[int] = ()) -> list[tuple]:
    """The rows behind every label a fragment shows, in one query (any backend)."""
    user_ids = sorted({int(pk) for pk in user_ids if pk})
    sql = (
        "SELECT 'd', id, name, slug, code, CASE WHEN active THEN 1 ELSE 0 END "
        "FROM departments_department "
        "UNION ALL SELECT 's', id, name, '', '', "
        "CASE WHEN confidential THEN 1 ELSE 0 END + 2 * department_id "
        "FROM departments_service"
    )
    if user_ids:
        sql += (
            " UNION ALL SELECT 'u', id, username, first_name, last_name, 0 "
            f"FROM departments_user WHERE id IN ({', '.join(['%s'] * len(user_ids))})"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, user_ids)
        return sorted(cursor.fetchall())


def fingerprint(rows: list[tuple]) -> str:
    return hashlib.blake2b(repr(rows).encode(), digest_size=16).hexdigest()


# --- Fragments ------------------------------------------------------------------------------


def cached_fragment(
    *,
    key: str,
    generation_keys: list[str],
    now: datetime,
    compute: Callable[[], tuple[str, datetime | None, list[int], list[tuple]]],
) -> str:
    """The fragment under `key`, computed by `compute` unless a valid copy is stored.

    `compute()` returns (html, valid_until or None, agent user ids it labelled, the
    `label_rows` it labelled from).
    """
    if not _shared():
        return compute()[0]
    keys = [EPOCH, *generation_keys]
    try:
        found = cache.get_many([key, *keys])
    except Exception:
        logger.exception("reports cache: unreachable, computing %s", key)
        return compute()[0]
    tokens = {name: found.get(name) for name in keys}
    entry = found.get(key)
    if (
        entry is not None
        and None not in tokens.values()
        and entry["tokens"] == tokens
        and (entry["until"] is None or now < entry["until"])
        and entry["labels"] == fingerprint(label_rows(entry["users"]))
    ):
        return entry["html"]
    try:
        missing = [name for name, token in tokens.items() if token is None]
        if missing:
            for name in missing:
                cache.add(name, uuid.uuid4().hex, timeout=None)
            tokens.update(cache.get_many(missing))
    except Exception:
        logger.exception("reports cache: unreachable, computing %s", key)
        return compute()[0]
    html, until, users, labels = compute()
    if None not in tokens.values():
        try:
            cache.set(
                key,
                {
                    "tokens": tokens,
                    "until": until,
                    "users": sorted(users),
                    "labels": fingerprint(labels),
                    "html": html,
                },
                timeout=TIMEOUT,
            )
        except Exception:
            logger.exception("reports cache: could not store %s", key)
    return html
