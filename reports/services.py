"""Writes of the reports app: keeping the roll-ups equal to the raw tickets.

`rollup_refresh_ticket` is called by the ticket services at the end of every use case, inside
their transaction and with the ticket row locked: it recomputes the ticket's fact from raw and
adds (new − old) to the roll-up rows with atomic `col = col + n` upserts, so concurrent
changes to other tickets in the same roll-up row never lose an update, and a rolled-back
change rolls its roll-up change back with it.

`rollup_rebuild` recomputes every fact and roll-up from raw (after a bulk load, or to repair).
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

from django.db import connection, transaction
from django.db.models import Count

from reports import cache as report_cache
from reports import facts
from reports.models import TicketFact
from slas.models import SlaClock
from slas.selectors import business_calendar
from tickets.models import SatisfactionRating, Ticket

REBUILD_BATCH = 5_000
REFRESH_BATCH = 1_000


def _calendar_cache() -> Callable[[int], object]:
    cache: dict[int, object] = {}

    def calendar_for(calendar_id: int):
        if calendar_id not in cache:
            cache[calendar_id] = business_calendar(calendar_id)
        return cache[calendar_id]

    return calendar_for


def fact_from_raw(ticket_id: int) -> dict | None:
    """Recompute one ticket's fact from the tickets, clocks and ratings tables."""
    ticket = Ticket.objects.filter(pk=ticket_id).values(*facts.TICKET_VALUES).first()
    if ticket is None:
        return None
    clocks = SlaClock.objects.filter(ticket_id=ticket_id).values(*facts.CLOCK_VALUES)
    ratings = dict(
        SatisfactionRating.objects.filter(ticket_id=ticket_id)
        .values_list("rating")
        .annotate(n=Count("id"))
        .values_list("rating", "n")
    )
    return facts.build_fact(
        ticket=ticket, clocks=list(clocks), ratings=ratings, calendar_for=_calendar_cache()
    )


def _add_to_rows(
    changes: dict[tuple[type, tuple], dict[str, int]], *, then: tuple[str, list] | None = None
) -> None:
    """Apply `{(model, key): {counter: amount}}`: one multi-row upsert per table (and chunk).

    INSERT … VALUES (…), (…) ON CONFLICT (key) DO UPDATE SET c = c + EXCLUDED.c is a single
    atomic statement on PostgreSQL and SQLite: the row locks it takes serialise concurrent
    writers of those rows. Every value column is written on insert (the histogram columns
    too: the model defaults are Python-side only, the columns are NOT NULL without a default).
    On PostgreSQL the statements, and `then` (one more statement and its parameters), go to
    the server in one round trip.
    """
    by_model: dict[type, list[tuple[tuple, dict[str, int]]]] = defaultdict(list)
    for (model, key), amounts in changes.items():
        by_model[model].append((key, amounts))
    statements: list[tuple[str, list]] = []
    # Tables and rows in a fixed order, so two transactions lock the same rows in the same
    # order (no deadlock between a batch refresh and a ticket's own refresh).
    for model in sorted(by_model, key=lambda m: m.__name__):
        rows = sorted(by_model[model], key=lambda item: str(item[0]))
        key_fields = _KEYS[model]
        value_fields = _VALUES[model]
        insert, placeholders, on_conflict, add = _upsert_parts(model, connection.vendor)
        # Stay under SQLite's bound-parameter limit (PostgreSQL has none that matters).
        per_statement = max(1, 20_000 // (len(key_fields) + len(value_fields)))
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params: list = []
            present: set[str] = set()
            for key, amounts in chunk:
                params += [_adapt(n, v) for n, v in zip(key_fields, key, strict=True)]
                params += [amounts.get(name, 0) for name in value_fields]
                present.update(name for name, amount in amounts.items() if amount)
            touched = [n for n in value_fields if n in present]
            if not touched:
                continue
            statements.append(
                (
                    f"{insert} VALUES {', '.join([placeholders] * len(chunk))} "
                    f"{on_conflict} {', '.join(add[name] for name in touched)}",
                    params,
                )
            )
    if then is not None:
        statements.append(then)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(statements) > 1:
            # psycopg2 binds client-side and sends the statements as one simple query; they
            # run in order, inside the caller's transaction.
            cursor.execute(
                "; ".join(sql for sql, _ in statements),
                [param for _, params in statements for param in params],
            )
        else:
            for sql, params in statements:
                cursor.execute(sql, params)


@functools.cache
def _upsert_parts(model, vendor: str) -> tuple[str, str, str, dict[str, str]]:
    """The fixed parts of a roll-up table's upsert, built once per table: `INSERT INTO t
    (columns)`, one row's placeholders, `ON CONFLICT (key) DO UPDATE SET` and, per counter,
    `c = t.c + EXCLUDED.c`. (`vendor` keys the quoting.)"""
    quote = connection.ops.quote_name
    key_fields, value_fields = _KEYS[model], _VALUES[model]
    table = quote(model._meta.db_table)
    columns = [*key_fields, *value_fields]
    return (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)})",
        f"({', '.join(['%s'] * len(columns))})",
        f"ON CONFLICT ({', '.join(quote(c) for c in key_fields)}) DO UPDATE SET",
        {
            name: f"{quote(name)} = {table}.{quote(name)} + EXCLUDED.{quote(name)}"
            for name in value_fields
        },
    )


def _adapt(name: str, value):
    if name == "day":
        return connection.ops.adapt_datefield_value(value)
    return value


_KEYS = {model: key for model, key, _ in facts.TABLES}
_VALUES = {model: values for model, _, values in facts.TABLES}


def rollup_refresh_ticket(*, ticket_id: int) -> bool:
    """Bring one ticket's fact and its roll-up rows up to date; return whether anything changed.

    Call inside the transaction of the ticket change (the ticket services do); idempotent.
    No savepoint of its own: an error here fails the caller's change, and a caller that must
    survive one (the escalation) wraps the call in its own savepoint.
    """
    with transaction.atomic(savepoint=False):
        # The fact row lock (behind the ticket row lock the services hold) serialises two
        # refreshes of one ticket, so each applies its delta against the fact it replaces.
        old = (
            TicketFact.objects.select_for_update()
            .filter(ticket_id=ticket_id)
            .values(*facts.FACT_FIELDS)
            .first()
        )
        new = fact_from_raw(ticket_id)
        if old == new:
            return False
        report_cache.facts_changed(old, new)
        changes = facts.delta(old, new)
        if changes:
            _add_to_rows(changes)
        if new is None:
            TicketFact.objects.filter(ticket_id=ticket_id).delete()
        elif old is None:
            TicketFact.objects.create(ticket_id=ticket_id, **new)
        else:
            TicketFact.objects.filter(ticket_id=ticket_id).update(**new)
    return True


def rollup_add_filed(*, ticket: Ticket, clocks: list[SlaClock], calendar) -> None:
    """Add a ticket filed in this transaction to the facts and roll-ups.

    `rollup_refresh_ticket` for the one case whose raw rows the caller holds: a new ticket has
    no fact yet, no rating, and the clocks it was just given, so the fact is built from those
    objects (the same `facts.build_fact`) instead of being read back, and the roll-up upserts
    and the fact INSERT go to the database together.
    """
    values = {name: getattr(ticket, name) for name in facts.TICKET_VALUES}
    clock_values = [
        {
            **{name: getattr(clock, name) for name in facts.CLOCK_VALUES if "__" not in name},
            "version__calendar_id": clock.version.calendar_id,
        }
        for clock in clocks
    ]
    fact = facts.build_fact(
        ticket=values, clocks=clock_values, ratings={}, calendar_for=lambda _: calendar
    )
    fields, sql = _fact_insert(connection.vendor)
    params = [
        field.get_db_prep_save(ticket.pk if field.primary_key else fact[field.name], connection)
        for field in fields
    ]
    _add_to_rows(facts.delta(None, fact), then=(sql, params))
    report_cache.facts_changed(fact)


@functools.cache
def _fact_insert(vendor: str) -> tuple[list, str]:
    """The fields and INSERT statement of one TicketFact row, built once (what Django's
    InsertQuery compiles for it; `vendor` keys the quoting)."""
    fields = [TicketFact._meta.get_field(name) for name in ("ticket", *facts.FACT_FIELDS)]
    quote = connection.ops.quote_name
    return fields, (
        f"INSERT INTO {quote(TicketFact._meta.db_table)} "
        f"({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )


def rollup_refresh_tickets(*, ticket_ids: Iterable[int], batch: int = REFRESH_BATCH) -> int:
    """Bring many tickets' facts and roll-up rows up to date; return how many changed.

    Set-based, for bulk writers (imports, `tickets/bulk.py` seeding, Celery): per batch of
    ids one transaction that locks the tickets, recomputes their facts from raw in a few
    queries, applies the summed deltas with one upsert per roll-up table and replaces the
    changed facts with one DELETE and one multi-row INSERT. Idempotent.
    """
    ids = sorted(set(ticket_ids))
    changed = 0
    for start in range(0, len(ids), batch):
        changed += _refresh_batch(ids[start : start + batch])
    return changed


def _refresh_batch(ids: list[int]) -> int:
    with transaction.atomic():
        # Same lock order as the ticket services: the ticket rows (in id order), then facts.
        list(Ticket.objects.select_for_update().filter(pk__in=ids).order_by("pk").values("pk"))
        old = {
            row.pop("ticket_id"): row
            for row in TicketFact.objects.select_for_update()
            .filter(ticket_id__in=ids)
            .order_by("ticket_id")
            .values("ticket_id", *facts.FACT_FIELDS)
        }
        new = dict(_raw_facts(ids))
        changes: dict[tuple[type, tuple], dict[str, int]] = {}
        replaced, inserts = [], []
        touched: set[int] = set()
        for ticket_id in ids:
            before, after = old.get(ticket_id), new.get(ticket_id)
            if before == after:
                continue
            for row_key, amounts in facts.delta(before, after).items():
                row = changes.setdefault(row_key, {})
                for name, amount in amounts.items():
                    row[name] = row.get(name, 0) + amount
            touched.update(
                f[n] for f in (before, after) if f for n in ("supplier_id", "customer_id")
            )
            if before is not None:
                replaced.append(ticket_id)
            if after is not None:
                inserts.append((ticket_id, *(after[name] for name in facts.FACT_FIELDS)))
        changes = {k: {n: v for n, v in a.items() if v} for k, a in changes.items()}
        changes = {k: a for k, a in changes.items() if a}
        if changes:
            _add_to_rows(changes)
        if replaced:
            TicketFact.objects.filter(ticket_id__in=replaced).delete()
        _insert_rows(TicketFact, ("ticket_id", *facts.FACT_FIELDS), inserts)
        if touched:
            report_cache.departments_changed(touched)
    return len(set(replaced) | {row[0] for row in inserts})


def _raw_facts(ids: list[int], calendar_for=None):
    """Yield (ticket_id, fact) for these ticket ids, computed from raw in three queries."""
    calendar_for = calendar_for or _calendar_cache()
    tickets = list(Ticket.objects.filter(pk__in=ids).order_by("pk").values(*facts.TICKET_VALUES))
    found = [t["id"] for t in tickets]
    clocks: dict[int, list[dict]] = defaultdict(list)
    for clock in SlaClock.objects.filter(ticket_id__in=found).values(*facts.CLOCK_VALUES):
        clocks[clock["ticket_id"]].append(clock)
    ratings: dict[int, Counter] = defaultdict(Counter)
    for ticket_id, rating in SatisfactionRating.objects.filter(ticket_id__in=found).values_list(
        "ticket_id", "rating"
    ):
        ratings[ticket_id][rating] += 1
    for ticket in tickets:
        yield (
            ticket["id"],
            facts.build_fact(
                ticket=ticket,
                clocks=clocks.get(ticket["id"], []),
                ratings=ratings.get(ticket["id"], {}),
                calendar_for=calendar_for,
            ),
        )


def iter_raw_facts(*, batch: int = REBUILD_BATCH, progress=None):
    """Yield (ticket_id, fact) for every ticket, computed from raw in batches by id."""
    calendar_for = _calendar_cache()
    last_id = 0
    seen = 0
    while True:
        tickets = list(
            Ticket.objects.filter(pk__gt=last_id)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not tickets:
            return
        last_id = tickets[-1]
        yield from _raw_facts(tickets, calendar_for)
        seen += len(tickets)
        if progress:
            progress(seen)


def rollups_from_raw() -> dict[tuple[type, tuple], dict[str, int]]:
    """The roll-ups as they must be, recomputed in memory from raw (for checks)."""
    expected: dict[tuple[type, tuple], dict[str, int]] = {}
    for _, fact in iter_raw_facts():
        facts.accumulate(expected, fact)
    return {k: v for k, v in expected.items() if any(v.values())}


def rollups_stored() -> dict[tuple[type, tuple], dict[str, int]]:
    """The roll-up rows in the database, non-zero counters only, in the same shape."""
    stored: dict[tuple[type, tuple], dict[str, int]] = {}
    for model, key_fields, value_fields in facts.TABLES:
        for row in model.objects.values(*key_fields, *value_fields).iterator():
            values = {name: row[name] for name in value_fields if row[name]}
            if values:
                stored[(model, tuple(row[k] for k in key_fields))] = values
    return stored


def rollup_rebuild(*, progress=None) -> int:
    """Recompute every fact and roll-up row from raw; return the number of tickets.

    Runs in one transaction, so readers see either the old or the new roll-ups. Run it after
    a bulk load (`manage.py rebuild_rollups`); ticket changes made meanwhile wait for it.
    """
    with transaction.atomic():
        # Taking the fact table lock first keeps concurrent refreshes out until we commit.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"LOCK TABLE {connection.ops.quote_name(TicketFact._meta.db_table)} "
                    "IN SHARE ROW EXCLUSIVE MODE"
                )
        report_cache.everything_changed()
        TicketFact.objects.all().delete()
        for model, _, _ in facts.TABLES:
            model.objects.all().delete()
        totals: dict[tuple[type, tuple], dict[str, int]] = {}
        fact_columns = ("ticket_id", *facts.FACT_FIELDS)
        pending: list[tuple] = []
        count = 0
        for ticket_id, fact in iter_raw_facts(progress=progress):
            pending.append((ticket_id, *(fact[name] for name in facts.FACT_FIELDS)))
            facts.accumulate(totals, fact)
            count += 1
            if len(pending) >= REBUILD_BATCH:
                _insert_rows(TicketFact, fact_columns, pending)
                pending = []
        _insert_rows(TicketFact, fact_columns, pending)
        for model, key_fields, value_fields in facts.TABLES:
            rows = [
                (*key, *(values.get(name, 0) for name in value_fields))
                for (row_model, key), values in totals.items()
                if row_model is model and any(values.values())
            ]
            _insert_rows(model, (*key_fields, *value_fields), rows)
    return count


def _insert_rows(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert plain value tuples. On PostgreSQL one multi-row INSERT per page (execute_values),
    which is several times faster than building model instances for a million rows."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        from psycopg2.extras import execute_values

        quote = connection.ops.quote_name
        sql = (
            f"INSERT INTO {quote(model._meta.db_table)} "
            f"({', '.join(quote(c) for c in columns)}) VALUES %s"
        )
        with connection.cursor() as cursor:
            for start in range(0, len(rows), REBUILD_BATCH):
                execute_values(
                    cursor.cursor, sql, rows[start : start + REBUILD_BATCH], page_size=1000
                )
        return
    model.objects.bulk_create(
        [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500
    )
