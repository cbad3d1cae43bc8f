"""Grow a generated history k-fold inside PostgreSQL (the 1,000,000-ticket variant in minutes).

`bulk_seed_tickets` builds every row in Python (about 1,000–1,300 tickets/s here, so 1M takes
~15 minutes on an idle machine and far longer on a busy one). For the 1M variant the harness
instead copies the seeded base history `factor - 1` times with INSERT … SELECT: every copy gets
new ids, new numbers and references (numbers offset per copy, so they stay unique per supplier)
and the same instants, services, people and clock states as its original. The roll-ups stay
exact without a rebuild: each copy has the same facts as its original, so every counter is
multiplied by `factor` and the facts are copied with the ticket ids shifted.
"""

from __future__ import annotations

import time

from django.db import connection, transaction

from reports import cache as report_cache
from reports import facts
from reports.models import TicketFact
from slas.models import SlaClock
from tickets.models import Comment, Event, Ticket


def _columns(model, *, skip=("id",)) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if f.column not in skip]


def _copy_children(cursor, model, k: int, offset: int, base_max: int) -> None:
    table = model._meta.db_table
    columns = _columns(model)
    select = ", ".join(f"ticket_id + {k * offset}" if c == "ticket_id" else c for c in columns)
    cursor.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"SELECT {select} FROM {table} WHERE ticket_id <= %s ORDER BY id",
        [base_max],
    )


def amplify(*, factor: int, log=print) -> int:
    """Make the history `factor` times as large; return the number of tickets after."""
    if factor < 2:
        return Ticket.objects.count()
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        # The copies reference only rows that exist (their originals' people, services and
        # shifted ticket ids), so the deferred foreign-key checks of ~9 million rows at COMMIT
        # (minutes) are skipped: replica mode fires no triggers, FK triggers included.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SELECT max(id), count(*) FROM tickets_ticket")
        base_max, base_count = cursor.fetchone()
        offset = 10 ** len(str(base_max))  # ids of copy k: id + k * offset
        cursor.execute("SELECT supplier_department_id, max(number) FROM tickets_ticket GROUP BY 1")
        number_step = 10 ** len(str(max(n for _, n in cursor.fetchall())))
        ticket_columns = _columns(Ticket, skip=())
        for k in range(1, factor):
            replace = {
                "id": f"id + {k * offset}",
                "number": f"number + {k * number_step}",
                "reference": (
                    f"split_part(reference, '-', 1) || '-' || (number + {k * number_step})::text"
                ),
                "source_key": "NULL",
                "linked_from_id": "NULL",
            }
            select = ", ".join(replace.get(c, c) for c in ticket_columns)
            cursor.execute(
                f"INSERT INTO tickets_ticket ({', '.join(ticket_columns)}) "
                f"SELECT {select} FROM tickets_ticket WHERE id <= %s ORDER BY id",
                [base_max],
            )
            for model in (Comment, Event, SlaClock):
                _copy_children(cursor, model, k, offset, base_max)
            fact_columns = _columns(TicketFact, skip=())
            select = ", ".join(
                f"ticket_id + {k * offset}" if c == "ticket_id" else c for c in fact_columns
            )
            table = TicketFact._meta.db_table
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(fact_columns)}) "
                f"SELECT {select} FROM {table} WHERE ticket_id <= %s",
                [base_max],
            )
            log(
                f"  copy {k}: {(k + 1) * base_count} tickets "
                f"({time.perf_counter() - started:.0f} s)"
            )
        for model, _, value_fields in facts.TABLES:
            sets = ", ".join(f'"{name}" = "{name}" * {factor}' for name in value_fields)
            cursor.execute(f"UPDATE {model._meta.db_table} SET {sets}")
        # The roll-ups were rewritten behind the services: drop every cached dashboard.
        report_cache.everything_changed()
        cursor.execute(
            "UPDATE departments_department d SET last_ticket_number = m.top "
            "FROM (SELECT supplier_department_id AS id, max(number) AS top "
            "FROM tickets_ticket GROUP BY 1) m WHERE d.id = m.id"
        )
        for model in (Ticket, Comment, Event, SlaClock):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute("SELECT count(*) FROM tickets_ticket")
        total = cursor.fetchone()[0]
    log(f"amplified to {total} tickets in {time.perf_counter() - started:.0f} s")
    return total
