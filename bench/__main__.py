"""Benchmark harness.

    python -m bench seed --tickets 100000           # 12 departments, 500 people, 100k tickets
    python -m bench seed --tickets 1000000          # tops the same database up to 1M
    python -m bench run [--duration 10] [--only queue,ticket]   # gunicorn + wrk, RESULTS.md
    python -m bench plans                           # EXPLAIN ANALYZE of the hot queries
    python -m bench all --tickets 100000            # seed, run, plans
    python -m bench ab --base <commit> [--only queue,ticket] [--rounds 3]   # before/after, paired

Defaults: DATABASE_URL=postgres://postgres@127.0.0.1:5432/sd_bench,
REDIS_URL=redis://127.0.0.1:6379/8 (set them to use another database). The database is kept
between runs so the 1M history is seeded once.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sd_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")
os.environ.setdefault("DEBUG", "0")
# The limit the benchmark's server runs with (bench/http.py): the in-process requests count
# against the same per-person counters as wrk's.
os.environ.setdefault("API_THROTTLE_USER", "10000000/min")


def _ensure_database() -> None:
    """Create the PostgreSQL database named in DATABASE_URL when it does not exist yet."""
    import dj_database_url
    import psycopg2

    config = dj_database_url.parse(os.environ["DATABASE_URL"])
    if "postgresql" not in config["ENGINE"]:
        return
    connection = psycopg2.connect(
        dbname="postgres",
        user=config["USER"],
        password=config["PASSWORD"] or None,
        host=config["HOST"],
        port=config["PORT"] or 5432,
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{config["NAME"]}"')
    connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("seed", "all"):
        p = sub.add_parser(name)
        p.add_argument("--tickets", type=int, default=100_000)
        p.add_argument("--departments", type=int, default=12)
        p.add_argument("--people", type=int, default=500)
        p.add_argument("--days", type=int, default=180)
        p.add_argument(
            "--amplify-from",
            type=int,
            default=100_000,
            help="copy an existing history of at least this size in SQL when the target is a "
            "multiple of it (0 = always generate row by row)",
        )
    for name in ("run", "all"):
        p = sub.choices[name] if name in sub.choices else sub.add_parser(name)
        p.add_argument("--duration", type=int, default=10, help="seconds per wrk workload")
        p.add_argument("--only", default="", help="comma-separated workload names")
        p.add_argument("--label", default="", help="section label (default: ticket count)")
        p.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    p = sub.add_parser("plans")
    p.add_argument("--no-write", action="store_true")
    p = sub.add_parser("ab", help="a commit against the working tree, alternating runs")
    p.add_argument("--base", required=True, help="the commit to compare against")
    p.add_argument("--only", default="", help="comma-separated workload names")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    args = parser.parse_args(argv)

    _ensure_database()
    import django

    django.setup()
    if args.command in ("seed", "all"):
        from bench.seed import seed

        seed(
            tickets=args.tickets,
            departments=args.departments,
            people=args.people,
            days=args.days,
            amplify_from=args.amplify_from or 10**12,
        )
    if args.command in ("run", "all"):
        from bench.http import run

        run(
            duration=args.duration,
            only={w for w in args.only.split(",") if w},
            label=args.label,
            write=not args.no_write,
        )
    if args.command == "ab":
        from bench.ab import ab

        ab(
            base=args.base,
            only={w for w in args.only.split(",") if w},
            rounds=args.rounds,
            duration=args.duration,
        )
    if args.command in ("plans", "all"):
        from bench.plans import plans

        plans(write=not getattr(args, "no_write", False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
