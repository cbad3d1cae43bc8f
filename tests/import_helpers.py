"""Shared helpers for tests/test_import*.py."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

from imports.mapping import load_mapping
from imports.services import incidents_import
from slas import services as sla_services
from tests import factories

SAMPLE = Path(__file__).resolve().parent / "data" / "incident_event_log_sample.csv"
H = timedelta(hours=1)
TARGETS_24X7 = {
    "P1": (H, 4 * H),
    "P2": (2 * H, 8 * H),
    "P3": (4 * H, 24 * H),
    "P4": (8 * H, 72 * H),
}


def standard_24x7():
    """A round-the-clock standard, so expected clocks are plain differences of timestamps."""
    calendar = sla_services.calendar_save(
        name="Around the clock", timezone_name="UTC", always_open=True
    )
    return factories.standard(name="Incidents 24x7", calendar=calendar, targets=TARGETS_24X7)


def run_import(path=SAMPLE, *, standard="Incidents 24x7", preset="servicenow", **options):
    return incidents_import(
        path=path,
        mapping=load_mapping(preset=preset, path=options.pop("mapping", None)),
        standard=standard,
        **options,
    )


def sample_rows() -> tuple[list[str], list[list[str]]]:
    with SAMPLE.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        return header, list(reader)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path
