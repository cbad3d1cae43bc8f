"""python manage.py incident_sla_report [--source servicenow]

Our resolution compliance per priority for imported incidents, against the source's own
`made_sla` verdict. For another standard without writing anything, use
`import_incidents PATH --dry-run --compare --standard NAME`.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from imports.models import ImportedIncident
from imports.report import compare, outcomes_from_database, render
from slas.models import Metric, SlaClock


class Command(BaseCommand):
    help = "Compare resolution compliance of imported incidents with the source's made_sla."

    def add_arguments(self, parser):
        parser.add_argument("--source", default="servicenow", help="Source name of the import.")

    def handle(self, *args, **options):
        source = options["source"]
        if not ImportedIncident.objects.filter(source_key__startswith=f"{source}:").exists():
            raise CommandError(f"nothing has been imported from {source!r} yet")
        standards = sorted(
            set(
                SlaClock.objects.filter(
                    metric=Metric.RESOLUTION,
                    ticket__import_record__source_key__startswith=f"{source}:",
                ).values_list("version__standard__name", flat=True)
            )
        )
        self.stdout.write(
            render(compare(outcomes_from_database(source)), standard=", ".join(standards))
        )
