"""python manage.py import_incidents PATH [--preset servicenow] [--mapping FILE] [--standard NAME]
[--timezone ZONE] [--dry-run] [--compare]

Imports an incident log (a CSV, or a zip holding one CSV, read as it is) as tickets with their
full event history and SLA clocks. See README "Importing history".
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from imports.mapping import MappingError, load_mapping, preset_names
from imports.progress import ProgressBar
from imports.reader import SourceError
from imports.report import compare, outcomes_from_database, render
from imports.services import (
    DEFAULT_BATCH,
    ImportSetupError,
    ImportSummary,
    import_leads_set,
    incidents_import,
)

SHOWN_LINES = 20


class Command(BaseCommand):
    help = "Import an incident history (ServiceNow audit log or a mapped CSV) as tickets."

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file, or a zip holding one CSV.")
        parser.add_argument(
            "--preset", choices=preset_names(), help="Built-in mapping, e.g. servicenow."
        )
        parser.add_argument(
            "--mapping",
            help="Mapping file (JSON or TOML); laid over --preset when both are given.",
        )
        parser.add_argument(
            "--standard",
            help="Service standard (by name) the clocks are measured against; "
            "default: the mapping's `standard` (servicenow: 'Standard support').",
        )
        parser.add_argument(
            "--timezone",
            default="UTC",
            help="Zone the file's zone-less dates are read in (IANA name; default UTC).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Read, check and measure everything; write nothing.",
        )
        parser.add_argument(
            "--compare",
            action="store_true",
            help="Print our resolution compliance per priority against the source's made_sla.",
        )
        parser.add_argument(
            "--engine",
            choices=["replay", "live"],
            default="replay",
            help="replay: the engine's rules in memory (fast, default); live: slas.services "
            "per ticket (slow; the reference the replay is tested against).",
        )
        parser.add_argument(
            "--lead",
            metavar="USERNAME",
            help="Demo convenience: make this account lead of the five busiest imported "
            "groups, so its dashboards show the imported history.",
        )
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
        parser.add_argument(
            "--recheck",
            action="store_true",
            help="Compare incident by incident even if this very file was already imported "
            "with the same options.",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        try:
            mapping = load_mapping(preset=options["preset"], path=options["mapping"])
        except MappingError as exc:
            raise CommandError(str(exc)) from exc
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        bar = ProgressBar(label="Importing ") if not options["no_progress"] else None
        try:
            summary = incidents_import(
                path=options["path"],
                mapping=mapping,
                standard=options["standard"],
                timezone=options["timezone"],
                dry_run=options["dry_run"],
                engine=options["engine"],
                batch_size=options["batch_size"],
                progress=bar,
                recheck=options["recheck"],
            )
        except (SourceError, ImportSetupError, MappingError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar:
                bar.close()
        self.stdout.write(format_summary(summary))
        if options["lead"] and not options["dry_run"]:
            try:
                led = import_leads_set(source=mapping.source, username=options["lead"])
            except ImportSetupError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"{options['lead']} leads {', '.join(d.name for d in led)} (dashboards)."
            )
        if options["compare"]:
            # A dry run compares what it computed; a real import what is now in the database
            # (every imported incident, unchanged ones included).
            outcomes = (
                summary.outcomes if summary.dry_run else outcomes_from_database(mapping.source)
            )
            self.stdout.write("")
            self.stdout.write(render(compare(outcomes), standard=summary.standard))


def _lines(lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:SHOWN_LINES])
    more = len(lines) - SHOWN_LINES
    return shown + (f" … and {more} more" if more > 0 else "")


def format_summary(summary: ImportSummary) -> str:
    """The end-of-import summary printed by the command."""
    verb = "Would import" if summary.dry_run else "Imported"
    rate = summary.rows_read / summary.seconds if summary.seconds else 0
    if summary.up_to_date_since is not None:
        return (
            f"Nothing to do: this file was imported on {summary.up_to_date_since:%Y-%m-%d %H:%M} "
            f"UTC with the same options; {summary.incidents_unchanged:,} incidents are up to "
            f"date ({len(summary.skipped_incidents)} incidents and "
            f"{len(summary.skipped_rows)} rows were skipped then). "
            "--recheck compares incident by incident."
        )
    out = [
        f"{verb} under standard {summary.standard!r}, dates read as {summary.timezone}"
        + (" (dry run: nothing written)" if summary.dry_run else ""),
        f"  rows read            {summary.rows_read:>9,}  ({summary.seconds:.1f} s, "
        f"{rate:,.0f} rows/s; writing {summary.write_seconds:.1f} s, reports "
        f"{summary.reports_seconds:.1f} s)",
        f"  incidents            {summary.incidents_seen:>9,}",
        f"    created            {summary.incidents_created:>9,}",
        f"    updated            {summary.incidents_updated:>9,}",
        f"    unchanged          {summary.incidents_unchanged:>9,}",
        f"    skipped            {len(summary.skipped_incidents):>9,}",
        f"  events created       {summary.events_created:>9,}",
        f"  SLA clocks written   {summary.clocks_written:>9,}",
        f"  departments created  {summary.departments_created:>9,}",
        f"  people created       {summary.people_created:>9,}",
        f"  memberships created  {summary.memberships_created:>9,}",
        f"  services created     {summary.services_created:>9,}",
        f"  rows skipped         {len(summary.skipped_rows):>9,}",
    ]
    for reason, lines in sorted(summary.skipped_by_reason().items()):
        out.append(f"    {reason}: {len(lines)} (line {_lines(lines)})")
    for problem in summary.skipped_incidents[:SHOWN_LINES]:
        out.append(f"  skipped incident {problem.number} (line {problem.line}): {problem.reason}")
    if len(summary.skipped_incidents) > SHOWN_LINES:
        out.append(f"  … and {len(summary.skipped_incidents) - SHOWN_LINES} more incidents")
    if not summary.contiguous:
        out.append("  note: the rows of some incidents were not contiguous; they were regrouped.")
    return "\n".join(out)
