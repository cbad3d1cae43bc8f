"""Set-based writes the ORM has no single statement for (used by the escalation batches).

`update_rows` writes different values to many rows in one UPDATE … FROM (VALUES …) on
PostgreSQL (Django's `bulk_update` builds a CASE per field and row, which is slow to compile
for hundreds of rows); elsewhere (SQLite, the embedded mode) it falls back to `bulk_update`.
`insert_ignoring_conflicts` is INSERT … ON CONFLICT DO NOTHING RETURNING: the rows the
database actually inserted come back, so a caller acts only on those.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.db.models import Model

# SQLite allows 32,766 bound parameters per statement; stay well below on every backend.
MAX_PARAMS = 30_000


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
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_page):
            page = objs[start : start + per_page]
            params = [
                field.get_db_prep_save(getattr(obj, field.attname), connection)
                for obj in page
                for field in columns
            ]
            cursor.execute(
                f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "
                f"FROM (VALUES {', '.join([one_row] * len(page))}) AS v ({names}) "
                f"WHERE t.{quote(pk.column)} = v.{quote(pk.column)}",
                params,
            )


def insert_ignoring_conflicts(
    model: type[Model], objs: Sequence[Model], fields: Sequence[str], returning: Sequence[str]
) -> list[tuple]:
    """INSERT the objects' `fields`, skipping rows a unique constraint refuses; return the
    `returning` columns of the rows inserted (PostgreSQL, and SQLite ≥ 3.35)."""
    if not objs:
        return []
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    one_row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    back = ", ".join(quote(model._meta.get_field(name).column) for name in returning)
    per_page = max(1, MAX_PARAMS // len(columns))
    inserted: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_page):
            page = objs[start : start + per_page]
            params = [
                field.get_db_prep_save(getattr(obj, field.attname), connection)
                for obj in page
                for field in columns
            ]
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} "
                f"({', '.join(quote(field.column) for field in columns)}) "
                f"VALUES {', '.join([one_row] * len(page))} "
                f"ON CONFLICT DO NOTHING RETURNING {back}",
                params,
            )
            inserted += cursor.fetchall()
    return inserted
