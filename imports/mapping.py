"""The mapping from another tool's export to servicedesk fields (JSON or TOML, no code).

A mapping names, for each column of the file, the importer field it feeds, and translates the
source's state and priority values. `imports/presets/servicenow.toml` is the reference example.
A `--mapping` file given together with `--preset` is laid over the preset: its tables replace
the preset's entries key by key, so a small file can rename one column.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from departments.models import Priority
from tickets.models import Status

PRESETS_DIR = Path(__file__).resolve().parent / "presets"

FIELDS = frozenset(
    {
        "number",
        "state",
        "sequence",
        "updated_at",
        "opened_at",
        "caller",
        "location",
        "category",
        "subcategory",
        "symptom",
        "priority",
        "group",
        "assignee",
        "made_sla",
        "updated_by",
        "contact_type",
        "impact",
        "urgency",
        "closed_code",
    }
)
REQUIRED_FIELDS = ("number", "state", "updated_at", "opened_at", "caller", "priority")
TABLES = ("columns", "status", "priority")


class MappingError(ValueError):
    """The mapping (preset or file) is unusable; the message says why."""


@dataclass(frozen=True)
class StatusRule:
    status: str
    note: str = ""


@dataclass(frozen=True)
class Mapping:
    source: str
    columns: dict[str, str]  # column → field
    status: dict[str, StatusRule]  # source state → rule
    priority: dict[str, str]  # source priority → P1..P4
    date_format: str = "%d/%m/%Y %H:%M"
    empty_values: frozenset[str] = frozenset({"", "?"})
    true_values: frozenset[str] = frozenset({"true", "True", "TRUE", "1", "yes"})
    title: str = "{category} / {subcategory}: {symptom}"
    unassigned_group: str = "No assignment group"
    uncategorised: str = "Uncategorised"
    standard: str = ""
    credit: str = ""
    delimiter: str = ","
    field_columns: dict[str, str] = field(default_factory=dict)  # field → column

    def describe(self) -> str:
        """A stable text of everything that shapes an import (part of each fingerprint)."""
        return json.dumps(
            {
                "source": self.source,
                "columns": self.columns,
                "status": {k: [v.status, v.note] for k, v in self.status.items()},
                "priority": self.priority,
                "date_format": self.date_format,
                "empty": sorted(self.empty_values),
                "true": sorted(self.true_values),
                "title": self.title,
                "unassigned_group": self.unassigned_group,
                "uncategorised": self.uncategorised,
                "credit": self.credit,
            },
            sort_keys=True,
        )


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read mapping {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(f"mapping {path} is not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, dict):
        raise MappingError(f"mapping {path} must be an object/table at the top level")
    return data


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_mapping(*, preset: str | None = None, path: str | Path | None = None) -> Mapping:
    """Build a Mapping from a preset, a file, or a file laid over a preset."""
    if not preset and not path:
        raise MappingError(
            "give --preset or --mapping (presets: " + ", ".join(preset_names()) + ")"
        )
    data: dict = {}
    if preset:
        preset_path = PRESETS_DIR / f"{preset}.toml"
        if preset not in preset_names():
            raise MappingError(f"unknown preset {preset!r} (presets: {', '.join(preset_names())})")
        data = _read(preset_path)
    if path:
        overlay = _read(Path(path))
        for key, value in overlay.items():
            if key in TABLES and isinstance(data.get(key), dict) and isinstance(value, dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
    return mapping_from_dict(data)


def mapping_from_dict(data: dict) -> Mapping:
    """Validate raw mapping data; every problem is reported at once."""
    problems: list[str] = []
    columns = data.get("columns")
    if not isinstance(columns, dict) or not columns:
        problems.append("[columns] must map column names to fields")
        columns = {}
    field_columns: dict[str, str] = {}
    for column, target in columns.items():
        if target not in FIELDS:
            problems.append(
                f"column {column!r} maps to unknown field {target!r} "
                f"(fields: {', '.join(sorted(FIELDS))})"
            )
        elif target in field_columns:
            problems.append(f"field {target!r} is fed by two columns")
        else:
            field_columns[target] = column
    for needed in REQUIRED_FIELDS:
        if needed not in field_columns:
            problems.append(f"no column maps to the required field {needed!r}")
    status: dict[str, StatusRule] = {}
    raw_status = data.get("status")
    if not isinstance(raw_status, dict) or not raw_status:
        problems.append("[status] must map source states to statuses")
        raw_status = {}
    for value, rule in raw_status.items():
        if isinstance(rule, str):
            rule = {"status": rule}
        if not isinstance(rule, dict) or rule.get("status") not in Status.values:
            problems.append(
                f"state {value!r} must map to one of {', '.join(Status.values)} "
                "(or a table with status and note)"
            )
            continue
        status[str(value)] = StatusRule(status=rule["status"], note=str(rule.get("note", "")))
    priority: dict[str, str] = {}
    raw_priority = data.get("priority")
    if not isinstance(raw_priority, dict) or not raw_priority:
        problems.append("[priority] must map source priorities to P1 … P4")
        raw_priority = {}
    for value, target in raw_priority.items():
        if target not in Priority.values:
            problems.append(f"priority {value!r} must map to one of P1, P2, P3, P4")
        else:
            priority[str(value)] = target
    source = data.get("source")
    if not isinstance(source, str) or not source or ":" in source or len(source) > 30:
        problems.append("source must be a short name without ':' (prefix of the source key)")
    delimiter = data.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        problems.append("delimiter must be one character")
    if problems:
        raise MappingError("; ".join(problems))
    optional = {
        key: data[key]
        for key in (
            "date_format",
            "title",
            "unassigned_group",
            "uncategorised",
            "standard",
            "credit",
        )
        if isinstance(data.get(key), str)
    }
    for key in ("empty_values", "true_values"):
        if isinstance(data.get(key), list):
            optional[key] = frozenset(str(v) for v in data[key])
    return Mapping(
        source=source,
        columns=dict(columns),
        status=status,
        priority=priority,
        delimiter=delimiter,
        field_columns=field_columns,
        **optional,
    )
