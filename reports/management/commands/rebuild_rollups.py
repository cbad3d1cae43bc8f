"""Recompute every reporting fact and roll-up from the raw tickets.

    python manage.py rebuild_rollups            # after `seed_demo --tickets N` or an outage
    python manage.py rebuild_rollups --check    # compare stored roll-ups with raw, change nothing

The ticket services keep the roll-ups exact as tickets change; bulk loads that bypass the
services (tickets/bulk.py) need this once afterwards. Idempotent.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from reports import services


class Command(BaseCommand):
    help = "Recompute the dashboards' facts and roll-ups from the raw tickets (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="Only compare the stored roll-ups with a recomputation from raw.",
        )

    def handle(self, *args, **options):
        started = time.perf_counter()
        if options["check"]:
            stored = services.rollups_stored()
            expected = services.rollups_from_raw()
            differing = {
                k for k in stored.keys() | expected.keys() if stored.get(k) != expected.get(k)
            }
            if differing:
                raise CommandError(
                    f"{len(differing)} roll-up rows differ from raw; run rebuild_rollups."
                )
            self.stdout.write(self.style.SUCCESS(f"Roll-ups equal raw ({len(stored)} rows)."))
            return
        count = services.rollup_rebuild(
            progress=lambda n: self.stdout.write(f"  {n} tickets") if n % 100_000 == 0 else None
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Rebuilt the reports of {count} tickets in {time.perf_counter() - started:.1f} s."
            )
        )
