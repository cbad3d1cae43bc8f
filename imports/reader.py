"""Stream an export (CSV, or a zip holding one CSV) and hand it over one incident at a time.

Rows of one incident need not be contiguous. A first, cheap pass counts the rows of every
incident number; the second pass keeps only unfinished incidents in memory and hands an
incident over as soon as its last row has been read. For a file whose incidents are contiguous
(the ServiceNow log is) that is one incident in memory at a time, and even a shuffled file
holds at most the incidents still open at any point of the file, never the whole file.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imports.mapping import REQUIRED_FIELDS, Mapping, MappingError


class SourceError(ValueError):
    """The file cannot be read as an export (missing, not a CSV, wrong columns)."""


@dataclass(slots=True)
class SourceRow:
    line: int  # line number in the CSV (the header is line 1)
    values: dict[str, str]  # importer field → raw cell text
    hash: str | None = None  # see imports.planning.row_hash


@dataclass(slots=True)
class Scan:
    total_rows: int
    rows_per_number: dict[str, int]
    contiguous: bool


@contextmanager
def open_text(path: str | Path) -> Iterator[io.TextIOBase]:
    """Open a CSV, or the single CSV inside a zip, as a text stream (never extracted to disk)."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"{path} does not exist or is not a file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [
                info
                for info in archive.infolist()
                if info.filename.lower().endswith(".csv") and not info.is_dir()
            ]
            if len(members) != 1:
                raise SourceError(f"{path} must hold exactly one .csv file (found {len(members)})")
            with archive.open(members[0]) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    else:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield handle


def _columns(header: list[str], mapping: Mapping) -> list[tuple[int, str]]:
    """(index, field) pairs for the mapped columns; a missing required column is an error."""
    positions = {name.strip(): index for index, name in enumerate(header)}
    missing = [column for column in mapping.columns if column not in positions]
    required_missing = [column for column in missing if mapping.columns[column] in REQUIRED_FIELDS]
    if required_missing:
        raise SourceError(
            "the file has no column "
            + ", ".join(repr(c) for c in required_missing)
            + f" (its columns: {', '.join(header[:40])})"
        )
    return [
        (positions[column], target)
        for column, target in mapping.columns.items()
        if column in positions
    ]


def _reader(handle, mapping: Mapping):
    reader = csv.reader(handle, delimiter=mapping.delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise SourceError("the file is empty") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise SourceError(f"the file is not a readable CSV: {exc}") from exc
    return reader, header


def scan(path: str | Path, mapping: Mapping) -> Scan:
    """First pass: count rows per incident number and check whether incidents are contiguous."""
    counts: dict[str, int] = {}
    contiguous = True
    last = None
    total = 0
    with open_text(path) as handle:
        reader, header = _reader(handle, mapping)
        index = next(i for i, f in _columns(header, mapping) if f == "number")
        try:
            for record in reader:
                total += 1
                number = record[index].strip() if index < len(record) else ""
                if number != last:
                    if number in counts:
                        contiguous = False
                    last = number
                counts[number] = counts.get(number, 0) + 1
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SourceError(f"line {reader.line_num}: not a readable CSV: {exc}") from exc
    return Scan(total_rows=total, rows_per_number=counts, contiguous=contiguous)


def incidents(
    path: str | Path, mapping: Mapping, rows_per_number: dict[str, int]
) -> Iterator[tuple[str, list[SourceRow]]]:
    """Second pass: yield (number, rows) per incident once all its rows have been read.

    Rows without a number are yielded alone under the number "" so the caller reports them.
    """
    pending: dict[str, list[SourceRow]] = {}
    with open_text(path) as handle:
        reader, header = _reader(handle, mapping)
        columns = _columns(header, mapping)
        width = len(header)
        number_field_index = next(i for i, f in columns if f == "number")
        try:
            for record in reader:
                line = reader.line_num
                if len(record) != width:
                    values = {"__width__": f"{len(record)} cells, expected {width}"}
                    number = (
                        record[number_field_index].strip()
                        if number_field_index < len(record)
                        else ""
                    )
                    values["number"] = number
                else:
                    values = {target: record[index].strip() for index, target in columns}
                    number = values["number"]
                row = SourceRow(line=line, values=values)
                if not number or number in mapping.empty_values:
                    yield "", [row]
                    continue
                bucket = pending.setdefault(number, [])
                bucket.append(row)
                if len(bucket) >= rows_per_number.get(number, 1):
                    del pending[number]
                    yield number, bucket
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SourceError(f"line {reader.line_num}: not a readable CSV: {exc}") from exc
    # Only reachable if the file changed between the passes; hand over what was read.
    for number, bucket in pending.items():
        yield number, bucket


__all__ = ["MappingError", "Scan", "SourceError", "SourceRow", "incidents", "open_text", "scan"]
