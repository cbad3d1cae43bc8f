"""Hot single-row reads whose SQL is compiled once per process.

Django compiles a queryset to SQL every time it runs it. For the reads every API write
starts with — the token with its user, the service with its standard, version and calendar
— compiling the joins costs several times what running them does (0.75 of 0.78 ms of CPU
for the service). `PreparedGet(queryset, "field").get(value)` answers what
`queryset.get(field=value)` answers, same objects and same errors, from the SQL and column map
of the first compile.

Only what can change per call is redone: Django builds the filter (so a value of the wrong
type raises the same ValueError/TypeError) and compiles that one lookup (so its value is
prepared, and an integer out of the column's range finds nothing, exactly as Django does);
the rows become objects the way Django's ModelIterable makes them (from_db plus the
select_related populators).

On PostgreSQL the statements are also prepared on the server (`ServerStatement`): planning
the ticket page's six-table join took 0.8-1.8 ms of the database's CPU against 0.1-0.2 ms to
run it, on every request; a prepared statement is planned once per connection (PostgreSQL
keeps a generic plan after five executions when it costs no more than the custom ones).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.lookups import Exact
from django.db.models.query import get_related_populators
from django.db.models.sql import InsertQuery
from django.db.models.utils import create_namedtuple_class
from psycopg2.extensions import adapt

# Process-wide: each ServerStatement has an id, each PREPARE a name never used before.
_statement_ids = itertools.count(1)
_prepare_names = itertools.count(1)
_PLACEHOLDER = re.compile(r"%[%s]")
# Statements a database connection keeps prepared at most (a few dozen are in steady use).
MAX_PREPARED_PER_CONNECTION = 1000


def plain_int(value) -> bool:
    """An int any integer column takes: a prepared statement's parameter has its column's
    type, where Django's SQL compares a larger number as numeric (and finds nothing)."""
    return type(value) is int and -(2**31) < value < 2**31


class ServerStatement:
    """One compiled statement, run as a server-side prepared statement on PostgreSQL.

    PREPARE lasts as long as the database session and, once it succeeded, whatever happens
    to the transaction it ran in; so the names prepared are kept per raw connection (a new
    connection prepares again). The first run sends PREPARE and EXECUTE in one round trip
    under a name never used before: if that fails, nothing is recorded and the next run
    prepares afresh under another name, whether or not the PREPARE itself had succeeded.
    Elsewhere (SQLite), or with settings.SERVER_PREPARED_STATEMENTS off (a transaction-mode
    pooler), it runs the SQL as it is.
    """

    def __init__(self, sql: str):
        self.sql = sql
        self.id = next(_statement_ids)
        numbers = itertools.count(1)
        # Django writes parameters as %s and a literal % as %%; psycopg2 still reads the
        # PREPARE part (it interpolates the EXECUTE's values), so %% stays as it is.
        self.server_sql = _PLACEHOLDER.sub(
            lambda match: "%%" if match.group() == "%%" else f"${next(numbers)}", sql
        )

    def execute(self, cursor, connection, params: list) -> None:
        if (
            connection.vendor != "postgresql"
            or not params
            or not settings.SERVER_PREPARED_STATEMENTS
        ):
            cursor.execute(self.sql, params)
            return
        raw = connection.connection
        state = getattr(connection, "_servicedesk_prepared", None)
        if state is None or state[0] is not raw:
            state = (raw, {})
            connection._servicedesk_prepared = state
        prepared = state[1]
        values = ", ".join(["%s"] * len(params))
        name = prepared.get(self.id)
        if name is not None:
            try:
                cursor.execute(f"EXECUTE {name}({values})", params)
            except Exception:
                # Whatever failed (a statement a migration made stale: "cached plan must not
                # change result type"), the next run prepares afresh under a new name.
                del prepared[self.id]
                raise
            return
        if len(prepared) >= MAX_PREPARED_PER_CONNECTION:
            # Shapes (PreparedShapes) come and go: past the bound, start the connection afresh
            # rather than keep every plan it ever made.
            cursor.execute("DEALLOCATE ALL")
            prepared.clear()
        name = f"servicedesk_{self.id}_{next(_prepare_names)}"
        cursor.execute(f"PREPARE {name} AS {self.server_sql}; EXECUTE {name}({values})", params)
        prepared[self.id] = name


class PreparedGet:
    """`queryset.get(<field>=value)` for a queryset of model rows with select_related at
    most (no filter, annotation, ordering, limit or deferred field of its own)."""

    def __init__(self, queryset: QuerySet, field: str):
        query = queryset.query
        if query.where or query.annotations or query.extra or query.deferred_loading[0]:
            raise ValueError("PreparedGet takes a plain queryset (select_related at most)")
        self.queryset = queryset
        self.field = field
        self._lock = threading.Lock()
        # Per database alias: the statement, the compiler that made it (its column map, converters
        # and lookup compilation only read the connection's settings, so other threads' use
        # of it is safe) and the lookup class it was compiled for.
        self._compiled: dict[str, tuple] = {}

    def get(self, value):
        model = self.queryset.model
        queryset = self.queryset.filter(**{self.field: value})
        children = queryset.query.where.children
        if len(children) != 1 or not isinstance(children[0], Exact):
            # Not the one shape compiled here (`None` makes Django match nothing): let Django
            # answer.
            return queryset.get()
        lookup = children[0]
        connection = connections[queryset.db]
        compiled = self._compiled.get(queryset.db)
        if compiled is None:
            try:
                compiled = self._compile(queryset, connection)
            except EmptyResultSet:  # e.g. an integer out of the column's range
                return queryset.get()
        statement, compiler, lookup_type, rows_to_objects = compiled
        if type(lookup) is not lookup_type:
            return queryset.get()
        try:
            _, params = compiler.compile(lookup)
        except EmptyResultSet:
            raise model.DoesNotExist(
                f"{model._meta.object_name} matching query does not exist."
            ) from None
        with connection.cursor() as cursor:
            statement.execute(cursor, connection, list(params))
            rows = cursor.fetchmany(2)
        if not rows:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        if len(rows) > 1:
            raise model.MultipleObjectsReturned(
                f"get() returned more than one {model._meta.object_name}"
            )
        return rows_to_objects.build(rows[:1])[0]

    def _compile(self, queryset: QuerySet, connection):
        compiler = queryset.query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        (lookup,) = queryset.query.where.children
        _, lookup_params = compiler.compile(lookup)
        # The filter's lookup must be the statement's only parameters, for them to be swapped.
        if list(params) != list(lookup_params):
            raise ValueError("PreparedGet: the lookup is not the query's only parameter")
        compiled = (
            ServerStatement(sql),
            compiler,
            type(lookup),
            _RowsToObjects(compiler, queryset.db),
        )
        with self._lock:
            self._compiled[queryset.db] = compiled
        return compiled


class PreparedQuery:
    """`list(queryset.filter(<field>=value, …))` for integer values (primary and foreign keys),
    from the SQL and column map of the first compile.

    For the many-row reads of one page (a ticket's clocks, comments, events…): each costs
    more to compile than to run. The queryset may carry constant filters, ordering and
    select_related; the values of `fields` are found among the statement's parameters by
    compiling it with two sets of probe values and keeping the positions that differ.
    A value that is not an int (None, a string) is left to Django.
    """

    _PROBES = ((1_000_003, 1_000_033, 1_000_037), (2_000_003, 2_000_029, 2_000_039))

    def __init__(self, queryset: QuerySet, *fields: str):
        if not 1 <= len(fields) <= len(self._PROBES[0]):
            raise ValueError("PreparedQuery takes one to three fields")
        query = queryset.query
        if query.annotations or query.extra or query.deferred_loading[0] or query.is_sliced:
            raise ValueError("PreparedQuery takes filters, ordering and select_related only")
        self.queryset = queryset
        self.fields = fields
        self._lock = threading.Lock()
        # Per database alias: (statement, constant params, {param position: value index}, rows
        # to objects).
        self._compiled: dict[str, tuple] = {}

    def _filtered(self, values) -> QuerySet:
        return self.queryset.filter(**dict(zip(self.fields, values, strict=True)))

    def list(self, *values) -> list:
        if any(not plain_int(value) for value in values):
            return list(self._filtered(values))
        db = self.queryset.db
        statement, constants, slots, rows_to_objects = self._compiled.get(db) or self._compile(db)
        params = list(constants)
        for position, index in slots.items():
            params[position] = values[index]
        connection = connections[db]
        with connection.cursor() as cursor:
            statement.execute(cursor, connection, params)
            rows = cursor.fetchall()
        return rows_to_objects.build(rows) if rows else []

    def _compile(self, db: str) -> tuple:
        connection = connections[db]
        compiled = []
        for probes in self._PROBES:
            queryset = self._filtered(probes[: len(self.fields)])
            compiler = queryset.query.get_compiler(connection=connection)
            sql, params = compiler.as_sql()
            compiled.append((sql, list(params), compiler))
        (sql, first, compiler), (other_sql, second, _) = compiled
        slots = {}
        for position, (a, b) in enumerate(zip(first, second, strict=True)):
            if a != b:
                slots[position] = self._PROBES[0].index(a)
                if self._PROBES[1].index(b) != slots[position]:
                    raise ValueError("PreparedQuery: the probe values moved between compiles")
        if sql != other_sql or sorted(slots.values()) != list(range(len(self.fields))):
            raise ValueError("PreparedQuery: each value must be one parameter of the statement")
        compiled = (ServerStatement(sql), first, slots, _RowsToObjects(compiler, db))
        with self._lock:
            self._compiled[db] = compiled
        return compiled


class _RowsToObjects:
    """How the rows of a compiled statement become model instances: what
    django.db.models.query.ModelIterable works out per queryset, worked out once."""

    def __init__(self, compiler, db: str):
        self.compiler, self.db = compiler, db
        select, klass_info = compiler.select, compiler.klass_info
        self.start = klass_info["select_fields"][0]
        self.end = klass_info["select_fields"][-1] + 1
        self.init_list = [column[0].target.attname for column in select[self.start : self.end]]
        self.model = klass_info["model"]
        self.populators = get_related_populators(klass_info, select, db)
        fields = [s[0] for s in select[: compiler.col_count]]
        if compiler.has_composite_fields(fields):  # ModelIterable regroups those; not done here
            raise ValueError("composite primary keys are not supported")
        self.converters = compiler.get_converters(fields)

    def build(self, rows: list) -> list:
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        start, end, model, db = self.start, self.end, self.model, self.db
        objs = []
        for row in rows:
            obj = model.from_db(db, self.init_list, row[start:end])
            for populator in self.populators:
                populator.populate(row, obj)
            objs.append(obj)
        return objs


class PreparedByIds:
    """`queryset.filter(<field>__in=ids).values_list(*columns, named=True)`, by SQL compiled
    once per process: the clocks or escalations of a page of tickets.

    Django writes `<field> IN (%s, %s, …)`, a statement per number of ids, and compiling it
    costs about what running it does; `<field> = ANY(%s)` takes the page's ids as one array
    parameter, so one statement serves every page. On another database (the embedded SQLite
    mode) it is the queryset itself.
    """

    _PROBE = -1  # the id compiled in, found back as the statement's only parameter

    def __init__(self, queryset: QuerySet, field: str, columns: tuple[str, ...]):
        self.queryset = queryset.values_list(*columns, named=True)
        self.columns = columns
        self.field = field
        self.row_class = create_namedtuple_class(*columns)
        self._lock = threading.Lock()
        self._compiled: dict[str, tuple] = {}  # per database alias: (statement, compiler)

    def rows(self, ids: list[int]) -> list:
        db = self.queryset.db
        if connections[db].vendor != "postgresql" or not all(map(plain_int, ids)):
            # ANY(array) is PostgreSQL's; the embedded SQLite mode takes Django's IN (…).
            return list(self.queryset.filter(**{f"{self.field}__in": ids}))
        statement, compiler = self._compiled.get(db) or self._compile(db)
        connection = connections[db]
        with connection.cursor() as cursor:
            statement.execute(cursor, connection, [list(ids)])
            fetched = cursor.fetchall()
        # Through the compiler for the database converters values_list() would apply.
        return [self.row_class(*row) for row in compiler.results_iter(results=[fetched])]

    def rows_in_order(self, ids: list[int]) -> list:
        """The rows of these ids in the order of `ids` (a page read in two steps: its ids, then
        its columns); an id with no row is left out. `pk` must be the first column."""
        if self.columns[0] != "pk":
            raise ValueError("rows_in_order needs 'pk' as the first column")
        if not ids:
            return []
        by_id = {row[0]: row for row in self.rows(ids)}
        return [by_id[pk] for pk in ids if pk in by_id]

    def _compile(self, db: str) -> tuple:
        queryset = self.queryset.filter(**{f"{self.field}__in": [self._PROBE]})
        compiler = queryset.query.get_compiler(using=db)
        sql, params = compiler.as_sql()
        (lookup,) = queryset.query.where.children
        in_sql, in_params = compiler.compile(lookup)
        column_sql, _ = compiler.compile(lookup.lhs)
        only_the_ids = list(params) == list(in_params) == [self._PROBE]
        if not only_the_ids or sql.count(in_sql) != 1:
            raise ValueError("PreparedByIds: the ids must be the statement's only parameter")
        compiled = (ServerStatement(sql.replace(in_sql, f"{column_sql} = ANY(%s)")), compiler)
        with self._lock:
            self._compiled[db] = compiled
        return compiled


def prefetched(instance, name: str, objs: list) -> None:
    """Make `instance.<name>.all()` answer `objs`, as prefetch_related would: the related
    manager's own queryset carries them, so a further filter on it still queries correctly."""
    cache = instance.__dict__.setdefault("_prefetched_objects_cache", {})
    cache.pop(name, None)
    queryset = getattr(instance, name).get_queryset()
    queryset._result_cache = objs
    queryset._prefetch_done = True
    cache[name] = queryset


class PreparedShapes:
    """Statements compiled once per *shape* of a query that Django builds from a few ids and
    instants (the API ticket list: the person, their departments, the cursor).

    `statement(key, values, build)`: `build(values)` returns the `(sql, params)` Django compiles
    for these values; `key` names everything else the SQL depends on. The first time a key is
    seen, `build` runs twice with probe values (distinct ids and instants no real row uses)
    and the parameters that differ between the two compiles are the values' slots; later
    calls only put the values in their slots, without building or compiling, and the SQL
    runs as a server-side prepared statement (`ServerStatement`).

    A shape is not learnt — and `statement` answers None, for the caller to build and compile
    as usual — when a value is neither an int a prepared parameter takes nor an aware datetime,
    when a probe comes back changed, is missing from the parameters or the SQL differs between
    the compiles, or when a parameter that stays the same is an instant (it may be "now",
    which must not be kept).
    At most `size` shapes are kept, the least recently used dropped first.
    """

    _INT_PROBES = (1_000_003, 2_000_029)
    _INSTANT_PROBES = (
        datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2002, 3, 4, 5, 6, 7, tzinfo=UTC),
    )

    def __init__(self, size: int = 512):
        self.size = size
        self._lock = threading.Lock()
        # key -> (ServerStatement, constant params, {position: value index}) or None (not
        # learnable: compile as usual).
        self._shapes: OrderedDict = OrderedDict()

    @staticmethod
    def _usable(value) -> bool:
        if isinstance(value, datetime):
            return value.tzinfo is not None
        return plain_int(value)

    def _probes(self, values: tuple, which: int) -> tuple:
        step = 7_919
        return tuple(
            self._INSTANT_PROBES[which] + timedelta(seconds=index + 1)
            if isinstance(value, datetime)
            else self._INT_PROBES[which] + step * index
            for index, value in enumerate(values)
        )

    def statement(
        self, key, values: tuple, build, *, using: str = DEFAULT_DB_ALIAS
    ) -> tuple[ServerStatement, list] | None:
        if not all(self._usable(value) for value in values):
            return None
        # The kinds of the values are part of the shape (an id where an instant was learnt
        # would compile differently).
        key = (key, using, tuple(isinstance(value, datetime) for value in values))
        with self._lock:
            found = key in self._shapes
            if found:
                self._shapes.move_to_end(key)
                shape = self._shapes[key]
        if not found:
            shape = self._learn(values, build, using)
            with self._lock:
                self._shapes[key] = shape
                while len(self._shapes) > self.size:
                    self._shapes.popitem(last=False)
        if shape is None:
            return None
        statement, constants, slots = shape
        params = list(constants)
        for position, index in slots.items():
            params[position] = values[index]
        return statement, params

    def _learn(self, values: tuple, build, using: str):
        first_probes, second_probes = self._probes(values, 0), self._probes(values, 1)
        first_sql, first = build(first_probes)
        second_sql, second = build(second_probes)
        first, second = list(first), list(second)
        if first_sql != second_sql or len(first) != len(second):
            return None
        slots = {}
        for position, (a, b) in enumerate(zip(first, second, strict=True)):
            if a == b:
                if isinstance(a, datetime | date):
                    return None  # an instant that did not come from the values: maybe "now"
                continue
            if (
                a not in first_probes
                or b not in second_probes
                or first_probes.index(a) != second_probes.index(b)
            ):
                return None  # a value Django changed on its way in
            slots[position] = first_probes.index(a)
        if set(slots.values()) != set(range(len(values))):
            # A value the SQL does not carry: Django dropped its condition for the probe (a
            # range check), which would then hold for every later value too.
            return None
        connection = connections[using]
        if connection.vendor == "postgresql":
            return self._with_constants_written_in(first_sql, first, slots, connection)
        return ServerStatement(first_sql), first, slots

    @staticmethod
    def _with_constants_written_in(sql: str, params: list, slots: dict, connection):
        """The statement with its constants as literals, only the values as parameters: a
        generic plan of a prepared statement cannot use a partial index whose condition names
        a constant it only has as a parameter (the queue's active statuses): PostgreSQL then
        plans every execution again, or keeps a plan that reads the department's history
        (98 ms against 0.9 ms at 1M tickets)."""
        connection.ensure_connection()
        raw = connection.connection
        kept, position = {}, itertools.count()

        def write(match):
            if match.group() == "%%":
                return "%%"
            at = next(position)
            if at in slots:
                kept[len(kept)] = slots[at]
                return "%s"
            literal = adapt(params[at])
            if hasattr(literal, "prepare"):
                literal.prepare(raw)
            return literal.getquoted().decode().replace("%", "%%")

        written = _PLACEHOLDER.sub(write, sql)
        return ServerStatement(written), [None] * len(kept), kept


class PreparedInsertMixin:
    """`Model.save()`'s INSERT compiled once per process and prepared on PostgreSQL.

    Django compiles a model's INSERT on every save (the ticket's 23 columns: ~0.3 ms) and
    PostgreSQL parses and plans it again every time. For the models a request writes on every
    filing (the ticket and its event), the statement of the first save is kept per (fields,
    returning fields, database) and later saves only compute its values, the way Django's
    compiler does (`pre_save`, then `get_db_prep_save`). Anything else — a value that is an
    expression, another database, a raw save, converters on the returned columns — takes
    Django's own path. Signals, validation and everything around `_do_insert` are Django's.
    """

    def _do_insert(self, manager, using, fields, returning_fields, raw):
        connection = connections[using]
        if (
            raw
            or connection.vendor != "postgresql"
            or any(hasattr(getattr(self, f.attname), "resolve_expression") for f in fields)
            # A placeholder that may depend on the value (binary, range and array fields).
            or any(hasattr(field, "get_placeholder") for field in fields)
        ):
            return super()._do_insert(manager, using, fields, returning_fields, raw)
        key = (type(self), using, tuple(fields), tuple(returning_fields or ()))
        statement = _INSERTS.get(key)
        if statement is None:
            # Django's compile, once: its SQL is kept and its values are this save's.
            query = InsertQuery(type(self))
            query.insert_values(fields, [self], raw=False)
            compiler = query.get_compiler(using=using)
            columns = [field.get_col(type(self)._meta.db_table) for field in returning_fields]
            if compiler.get_converters(columns):  # decided before as_sql runs pre_save
                return super()._do_insert(manager, using, fields, returning_fields, raw)
            compiler.returning_fields = returning_fields
            [(sql, params)] = compiler.as_sql()
            statement = _INSERTS.setdefault(key, ServerStatement(sql))
        else:
            params = [
                field.get_db_prep_save(field.pre_save(self, add=True), connection=connection)
                for field in fields
            ]
        with connection.cursor() as cursor:
            statement.execute(cursor, connection, list(params))
            return [cursor.fetchone()] if returning_fields else []


# (model, database, fields, returning fields) -> the INSERT statement; a handful per process.
_INSERTS: dict[tuple, ServerStatement] = {}
