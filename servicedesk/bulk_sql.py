"""Set-based writes the ORM has no single statement for (used by the escalation batches).

`update_rows` writes different values to many rows in one UPDATE … FROM (VALUES …) on
PostgreSQL (Django's `bulk_update` builds a CASE per field and row, which is slow to compile
for hundreds of rows); elsewhere (SQLite, the embedded mode) it falls back to `bulk_update`.
`insert_values` inserts plain tuples (no model instances), optionally as INSERT … ON CONFLICT
DO NOTHING RETURNING: the rows the database actually inserted come back, so a caller acts
only on those.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Model

# SQLite allows 32,766 bound parameters per statement; stay well below on every backend.
MAX_PARAMS = 30_000


# Field types psycopg2 adapts as they are (Django's get_db_prep_save returns them unchanged on
# PostgreSQL); preparing them through the field costs more than the INSERT for big batches.
_NATIVE = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "DateField",
    "DateTimeField",
    "DecimalField",
    "DurationField",
    "ForeignKey",
    "IntegerField",
    "OneToOneField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "TextField",
}


def _preparers(columns) -> list:
    """Per column: None (pass the value as it is) or the field's own preparation."""
    native = connection.vendor == "postgresql"
    return [None if native and field.get_internal_type() in _NATIVE else field for field in columns]


def _prepared(values, preparers) -> list:
    return [
        value if field is None else field.get_db_prep_save(value, connection)
        for value, field in zip(values, preparers, strict=True)
    ]


def update_rows(model: type[Model], objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Write `fields` of each object in `objs` (by primary key) in one statement per page."""
    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_update(objs, list(fields))
        return
    quote = connection.ops.quote_name
    pk = model._meta.pk
    columns = [pk, *(model._meta.get_field(name) for name in fields)]
    # Casts on every value: VALUES has no column types of its own.
    one_row = "(" + ", ".join(f"%s::{field.db_type(connection)}" for field in columns) + ")"
    assignments = ", ".join(
        f"{quote(field.column)} = v.{quote(field.column)}" for field in columns[1:]
    )
    names = ", ".join(quote(field.column) for field in columns)
    per_page = max(1, MAX_PARAMS // len(columns))
    preparers = _preparers(columns)
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_page):
            page = objs[start : start + per_page]
            params = [
                param
                for obj in page
                for param in _prepared(
                    [getattr(obj, field.attname) for field in columns], preparers
                )
            ]
            cursor.execute(
                f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "
                f"FROM (VALUES {', '.join([one_row] * len(page))}) AS v ({names}) "
                f"WHERE t.{quote(pk.column)} = v.{quote(pk.column)}",
                params,
            )


def insert_values(
    model: type[Model],
    fields: Sequence[str],
    rows: Sequence[Sequence],
    *,
    ignore_conflicts: bool = False,
    returning: Sequence[str] = (),
) -> list[tuple]:
    """INSERT plain value tuples (in `fields` order, foreign keys as ids) without building
    model instances; with `ignore_conflicts`, rows a unique constraint refuses are skipped
    (ON CONFLICT DO NOTHING). Return the `returning` columns of the rows inserted (PostgreSQL,
    and SQLite ≥ 3.35), in insertion order."""
    if not rows:
        return []
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    preparers = _preparers(columns)
    one_row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    if returning:
        tail += " RETURNING " + ", ".join(
            quote(model._meta.get_field(name).column) for name in returning
        )
    per_page = max(1, MAX_PARAMS // len(columns))
    inserted: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_page):
            page = rows[start : start + per_page]
            params = [param for row in page for param in _prepared(row, preparers)]
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} "
                f"({', '.join(quote(field.column) for field in columns)}) "
                f"VALUES {', '.join([one_row] * len(page))}{tail}",
                params,
            )
            if returning:
                inserted += cursor.fetchall()
    return inserted
