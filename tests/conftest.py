"""Shared fixtures. The suite runs against real PostgreSQL and Redis; if either is
unreachable the run stops at once with a loud message (a failure, never a skip)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, time, timedelta

import pytest

from tests import factories


def _check_services() -> list[str]:
    problems = []
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        problems.append(
            f"DATABASE_URL must point at PostgreSQL for the suite (got {database['ENGINE']})"
        )
    else:
        import psycopg2

        try:
            psycopg2.connect(
                host=database["HOST"] or "127.0.0.1",
                port=database["PORT"] or 5432,
                user=database["USER"],
                password=database["PASSWORD"],
                dbname="postgres",
                connect_timeout=3,
            ).close()
        except psycopg2.OperationalError as exc:
            problems.append(
                f"PostgreSQL unreachable at {database['HOST']}:{database['PORT']}: {exc}"
            )
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        problems.append("REDIS_URL is not set")
    else:
        import redis

        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
        except redis.RedisError as exc:
            problems.append(f"Redis unreachable at {redis_url}: {exc}")
    return problems


def pytest_sessionstart(session):
    problems = _check_services()
    if problems:
        banner = "\n".join(f"  !!! {p}" for p in problems)
        message = (
            "\n"
            + "!" * 78
            + "\n  The test suite needs real PostgreSQL and Redis.\n"
            + banner
            + "\n  Start them (see README) or set DATABASE_URL / REDIS_URL.\n"
            + "!" * 78
        )
        pytest.exit(message, returncode=3)


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.AXES_ENABLED = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_dashboard_fragment_from_another_test():
    # Writes invalidate cached dashboards when they commit, and a test's writes never commit
    # (its transaction is rolled back): without a new epoch, a dashboard cached by one test
    # could be served in the next (the cache is the shared Redis).
    from reports import cache as report_cache

    report_cache.forget_every_fragment()


# A Monday 10:00 in Berlin (CET), well inside office hours.
MONDAY_10 = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


@pytest.fixture
def org(db):
    """A small organisation: IT (supplier) and Finance (customer) with a 9–17 standard."""
    return factories.build_org()


@pytest.fixture
def monday_10():
    return MONDAY_10


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


__all__ = ["hours", "time"]
