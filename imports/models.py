"""What the importer remembers about each imported incident, so a re-import is idempotent."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportedIncident(models.Model):
    """One source incident brought in as a ticket.

    `fingerprint` hashes the incident's source rows together with the import options that shape
    the result (time zone, standard version, mapping); an unchanged fingerprint on re-import
    means there is nothing to do, so a second run over the same file costs one read of the file.
    """

    source_key = models.CharField(max_length=64, unique=True)
    ticket = models.OneToOneField(
        "tickets.Ticket", on_delete=models.CASCADE, related_name="import_record"
    )
    fingerprint = models.CharField(max_length=64)
    # Event timestamps are derived from the source's zone-less dates in this zone; events are
    # append-only, so a later import in another zone is refused rather than rewriting history.
    timezone = models.CharField(max_length=64)
    row_count = models.PositiveIntegerField(default=0)
    # The source's own verdict on its service level (ServiceNow `made_sla`), for the comparison
    # report; NULL when the source has no such column.
    made_sla = models.BooleanField(null=True)
    imported_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("imported incident")
        verbose_name_plural = _("imported incidents")

    def __str__(self) -> str:
        return self.source_key


class ImportRun(models.Model):
    """One completed (non-dry) import of a file, so the same file with the same options is
    recognised at once on the next run (`make run DEMO=incidents` twice)."""

    source = models.CharField(max_length=30)
    file_sha256 = models.CharField(max_length=64)
    # sha1 of everything that shapes the result: mapping, time zone, standard version.
    options_hash = models.CharField(max_length=40)
    incidents = models.PositiveIntegerField(help_text=_("Imported incidents after the run."))
    summary = models.JSONField(default=dict)
    finished_at = models.DateTimeField()

    class Meta:
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        indexes = [
            models.Index(fields=["source", "file_sha256", "options_hash"], name="import_run_lookup")
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.file_sha256[:12]} {self.finished_at:%Y-%m-%d %H:%M}"
