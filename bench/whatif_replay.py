"""What-if replay throughput (issue 7): how long `slas.replay.run_whatif` takes per ticket.

Builds a throw-away database (Django's test-database machinery, named after DATABASE_URL's
with a `test_` prefix), files N requests through the real ticket services over the last 60
days (replies, waiting-on-customer pauses, resolutions, priority changes), then times the
what-if replay of a stricter proposal over all of them and counts its queries. Writes its
section of bench/RESULTS.md with --write.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sd_bench \\
        .venv/bin/python -m bench.whatif_replay --tickets 2000 --write
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from datetime import UTC, datetime, timedelta

# Run as a module from the repository root (`python -m bench.whatif_replay`): as a script,
# bench/http.py would shadow the standard library's http package.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")
os.environ.setdefault("AXES_ENABLED", "false")
# Seeding needs no broker: ETA tasks of the escalation engine go to an in-memory transport.
os.environ.setdefault("CELERY_BROKER_URL", "memory://")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.results import replace_section  # noqa: E402

H = timedelta(hours=1)


def seed(count: int, rng: random.Random):
    from tests.factories import build_org
    from tickets import services

    org = build_org()
    now = datetime.now(UTC)
    for i in range(count):
        filed = now - timedelta(days=60) + timedelta(seconds=rng.uniform(0, 59 * 86400))
        ticket = services.ticket_create(
            requester=org.employee,
            service=org.service,
            title=f"Bench {i}",
            priority=rng.choice(["P1", "P2", "P3", "P3", "P4"]),
            now=filed,
        )
        at = filed + timedelta(hours=rng.uniform(0.1, 10))
        if rng.random() < 0.85:
            services.ticket_comment(ticket=ticket, author=org.it_agent, body="On it", now=at)
        else:
            services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="open", now=at)
        if rng.random() < 0.2:
            at += timedelta(hours=rng.uniform(0.1, 3))
            services.ticket_change_priority(
                ticket=ticket, actor=org.it_agent, priority="P2", now=at
            )
        if rng.random() < 0.3:
            at += timedelta(hours=rng.uniform(0.1, 5))
            services.ticket_transition(
                ticket=ticket, actor=org.it_agent, to_status="waiting_on_customer", now=at
            )
            at += timedelta(hours=rng.uniform(1, 48))
            services.ticket_comment(ticket=ticket, author=org.employee, body="Here", now=at)
        if rng.random() < 0.8:
            at += timedelta(hours=rng.uniform(1, 40))
            if at < now:
                services.ticket_transition(
                    ticket=ticket, actor=org.it_agent, to_status="resolved", now=at
                )
    return org


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    from slas import replay

    old_name = connection.settings_dict["NAME"]
    test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        rng = random.Random(7)
        started = time.perf_counter()
        org = seed(args.tickets, rng)
        seeded = time.perf_counter() - started
        version = org.standard.current_version
        proposal = replay.Proposal(
            standard_id=org.standard.pk,
            calendar_id=version.calendar_id,
            targets={
                t.priority: (t.first_response / 2, t.resolution / 2) for t in version.targets.all()
            },
            ladder=[(lv.metric, lv.threshold, lv.actions) for lv in version.levels.all()],
            service_ids=[],
            department_ids=[],
            days=90,
        )
        replay.run_whatif(proposal)  # warm the calendar caches
        runs = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                result = replay.run_whatif(proposal)
                runs.append(time.perf_counter() - started)
        best = min(runs)
        started = time.perf_counter()
        from tickets.models import Ticket

        recorded = replay.replay_recorded(list(Ticket.objects.all()))
        recorded_seconds = time.perf_counter() - started
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    body = f"""## What-if replay (`slas.replay.run_whatif`)

Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} ({os.cpu_count()} CPUs), \
Python {platform.python_version()}, {connection.vendor} (throw-away database {test_name}).
Command: `python -m bench.whatif_replay --tickets {args.tickets} --write`. {args.tickets:,} requests
filed through the ticket services over 60 days (seeding took {seeded:.0f} s), replayed against a
proposal with halved targets; best of 3 warm runs.

| measure | value |
|---|---:|
| tickets replayed | {result["tickets"]:,} |
| what-if wall time | {best:.2f} s |
| per ticket | {1000 * best / max(result["tickets"], 1):.2f} ms |
| queries per run | {len(queries.captured_queries)} (batches of {replay.BATCH_SIZE}) |
| tickets whose outcome changes | {result["changed_count"]:,} |
| `replay_recorded`, all tickets | {recorded_seconds:.2f} s / {len(recorded):,} |

With the default `SLA_REPLAY_SYNC_LIMIT` of 2,000 tickets an in-request replay takes about
{2000 * best / max(result["tickets"], 1):.2f} s; larger replays run as a Celery job with a
progress bar.
"""
    print(body)
    if args.write:
        replace_section("whatif_replay", body)


if __name__ == "__main__":
    main()
