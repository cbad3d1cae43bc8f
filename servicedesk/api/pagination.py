import binascii
import json
from base64 import urlsafe_b64decode, urlsafe_b64encode
from collections.abc import Sequence
from types import SimpleNamespace

from django.core.exceptions import ValidationError
from django.db import connections
from django.db.models import Q
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from servicedesk.prepared import PreparedByIds, PreparedShapes


def _values_by_id(model, columns: list[str], ids: list[int]) -> list[dict]:
    """`values(*columns)` dicts of the rows with these ids, in their order. A page's ids come
    from the filtered, ordered query alone; its columns, whose joins cost PostgreSQL more to
    plan (~1.7 ms for the ticket list) than to run, by SQL prepared once per connection."""
    columns = tuple(dict.fromkeys(["pk", *columns]))
    reader = _READERS.get((model, columns))
    if reader is None:
        reader = _READERS.setdefault(
            (model, columns), PreparedByIds(model._default_manager.all(), "pk", columns)
        )
    return [row._asdict() for row in reader.rows_in_order(ids)]


# (model, columns) -> the PreparedByIds reading them; a handful per process.
_READERS: dict[tuple, PreparedByIds] = {}
# The shaped lists' page and count statements (CappedKeysetPagination.paginate_shaped).
_SHAPES = PreparedShapes()


def _union(parts: list, *, order: Sequence[str] = ()):
    """The one queryset, or the UNION (without duplicates) of several, in `order`."""
    if len(parts) == 1:
        return parts[0]
    union = parts[0].union(*parts[1:])
    return union.order_by(*order) if order else union


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CappedKeysetPagination(BasePagination):
    """Keyset pages for long lists (issue 10). `next` and `previous` carry an opaque cursor: the
    sort key of the page's last (or first) row plus its id, which breaks ties. A page is then
    "the next N rows after this key", an index range scan, so page 1,000 costs what page 1
    costs, where an OFFSET reads and drops every row before it. Exact with ties (imported
    histories share timestamps), in every ordering `?ordering=` allows. `count` is exact up to
    `count_cap` rows (`count_capped: true` beyond): an exact COUNT(*) reads every visible row,
    which on a large history costs more than the page itself."""

    page_size = StandardPagination.page_size
    page_size_query_param = StandardPagination.page_size_query_param
    max_page_size = StandardPagination.max_page_size
    cursor_query_param = "cursor"
    count_cap = 1000

    def _page_size(self, request) -> int:
        try:
            size = int(request.query_params[self.page_size_query_param])
        except (KeyError, ValueError):
            return self.page_size
        return min(max(size, 1), self.max_page_size)

    @staticmethod
    def _sort_term(queryset, request, view) -> str:
        """The first term of the list's ordering (`?ordering=` when valid, else the view's)."""
        terms = OrderingFilter().get_ordering(request, queryset, view) or ["-pk"]
        return terms[0]

    def _decode(self, raw: str | None):
        if raw is None:
            return None
        try:
            direction, value, pk = json.loads(urlsafe_b64decode(raw.encode()))
            if direction not in ("n", "p") or not isinstance(pk, int):
                raise ValueError
        except (ValueError, TypeError, binascii.Error, UnicodeError):
            raise NotFound(_("Invalid cursor.")) from None
        return direction, value, pk

    def _encode(self, direction: str, row, field) -> str:
        if isinstance(row, dict):
            # A values() row: the field writes its value as it would from an instance's.
            value = field.value_to_string(SimpleNamespace(**{field.attname: row[field.attname]}))
            pk = row["pk"]
        else:
            value, pk = field.value_to_string(row), row.pk
        raw = json.dumps([direction, value, pk]).encode()
        return replace_query_param(
            self.request.build_absolute_uri(),
            self.cursor_query_param,
            urlsafe_b64encode(raw).decode(),
        )

    def paginate_queryset(self, queryset, request, view=None):
        return self._paginate(queryset, request, view, columns=None)

    def paginate_values(
        self, queryset, request, view=None, *, columns: Sequence[str]
    ) -> list[dict]:
        """The page `paginate_queryset` answers, read as `values(*columns)` dicts (plus `pk`
        and the sort column, for the cursors): for lists represented without model
        instances. `queryset` may also be a list of querysets whose union is the list
        (permissions.visible_ticket_parts): each is read on its own and the pages merged."""
        return self._paginate(queryset, request, view, columns=columns)

    def _paginate(self, queryset, request, view, *, columns: Sequence[str] | None) -> list:
        parts = list(queryset) if isinstance(queryset, list | tuple) else [queryset]
        if len(parts) > 1 and columns is None:
            raise ValueError("a list read in parts is paginated as values")
        size, sign, cursor, after = self._position(request, view, parts[0])
        ordered = [
            (part if after is None else part.filter(after)).order_by(*self._order(sign))
            for part in parts
        ]
        if columns is None:
            keys = list(ordered[0][: size + 1])
        else:
            # The page's order, whether there is more and the cursors all come from this one
            # read of the ids and sort values; the columns are read by id after it.
            keys = [
                {"pk": pk, self.field.attname: value}
                for pk, value in self._keys_query(ordered, size, sign)
            ]
        rows = self._page(keys, size, cursor, parts[0].model, columns)
        self._set_count(self._count_query(parts).count())
        return rows

    def paginate_shaped(self, request, view, *, model, shape, columns: Sequence[str]) -> list[dict]:
        """`paginate_values(parts_of(model.objects.all(), values), …)` for a list whose parts
        are built from a few ints (`shape` is (key, values, parts_of), as
        permissions.visible_ticket_parts_shape gives), read by SQL compiled once per shape
        and prepared on PostgreSQL (servicedesk.prepared.PreparedShapes): building and
        compiling the parts' page and count, and planning them, was most of the list's cost.
        What cannot be shaped (a sort value that is text) is read as paginate_values reads."""
        key, values, parts_of = shape
        everything = model._default_manager.all()
        connection = connections[everything.db]
        if connection.vendor != "postgresql":
            return self._paginate(parts_of(everything, values), request, view, columns=columns)
        size, sign, cursor, after = self._position(request, view, everything)
        position = () if cursor is None else (self._cursor_value, cursor[2])
        order = self._order(sign)
        attname = self.field.attname
        page_key = (
            "page",
            model._meta.label,
            everything.db,
            key,
            self.field.name,
            sign,
            size,
            cursor is not None,
        )

        def page_sql(probes):
            parts = parts_of(everything, probes[: len(values)])
            if probes[len(values) :]:
                after = self._after(sign, *probes[len(values) :])
                parts = [part.filter(after) for part in parts]
            ordered = [part.order_by(*order) for part in parts]
            return self._keys_query(ordered, size, sign).query.sql_with_params()

        def count_sql(probes):
            sql, params = self._count_query(parts_of(everything, probes)).query.sql_with_params()
            return f"SELECT COUNT(*) FROM ({sql}) subquery", params

        page = _SHAPES.statement(page_key, (*values, *position), page_sql)
        count_key = ("count", model._meta.label, everything.db, key, self.count_cap)
        count = _SHAPES.statement(count_key, values, count_sql)
        if page is None or count is None:
            return self._paginate(parts_of(everything, values), request, view, columns=columns)
        with connection.cursor() as db:
            page[0].execute(db, connection, page[1])
            keys = [{"pk": pk, attname: value} for pk, value in db.fetchall()]
            count[0].execute(db, connection, count[1])
            (counted,) = db.fetchone()
        rows = self._page(keys, size, cursor, model, columns)
        self._set_count(counted)
        return rows

    # The parts of a page read ----------------------------------------------------------------

    def _position(self, request, view, queryset):
        """(page size, "-" or "" for the direction the page is read in, the cursor, the
        filter of the rows after it); sets self.field and, with a cursor, its sort value."""
        self.request = request
        size = self._page_size(request)
        term = self._sort_term(queryset, request, view)
        descending, name = term.startswith("-"), term.lstrip("-")
        self.field = queryset.model._meta.get_field(name)
        cursor = self._decode(request.query_params.get(self.cursor_query_param))
        self._backwards = cursor is not None and cursor[0] == "p"
        # Read in the list's direction, or against it to fetch the page before a cursor.
        sign = "-" if descending != self._backwards else ""
        after = None
        if cursor is not None:
            try:
                value = self.field.to_python(cursor[1])
            except (ValidationError, TypeError, ValueError):
                raise NotFound(_("Invalid cursor.")) from None
            if value is None:  # the sort columns are NOT NULL: no row is at such a position
                raise NotFound(_("Invalid cursor."))
            self._cursor_value = value
            after = self._after(sign, value, cursor[2])
        return size, sign, cursor, after

    def _order(self, sign: str) -> tuple[str, str]:
        return (f"{sign}{self.field.name}", f"{sign}pk")

    def _after(self, sign: str, value, pk) -> Q:
        op = "lt" if sign == "-" else "gt"
        return Q(**{f"{self.field.name}__{op}": value}) | Q(
            **{self.field.name: value, f"pk__{op}": pk}
        )

    def _keys_query(self, ordered: list, size: int, sign: str):
        attname = self.field.attname
        return _union(
            [part.values_list("pk", attname)[: size + 1] for part in ordered],
            order=(f"{sign}{attname}", f"{sign}pk"),
        )[: size + 1]

    def _count_query(self, parts: list):
        # Each part up to cap + 1 rows: their union passes the cap exactly when the whole
        # list does (a part cut short brings cap + 1 rows on its own).
        return _union([part.order_by().values("pk")[: self.count_cap + 1] for part in parts])

    def _page(self, keys: list, size: int, cursor, model, columns) -> list:
        more = len(keys) > size
        keys = keys[:size]
        if self._backwards:
            keys.reverse()
            self.has_next, self.has_previous = True, more
        else:
            self.has_next, self.has_previous = more, cursor is not None
        self.rows = keys
        if columns is None:
            return keys
        return _values_by_id(model, [*columns, "pk", self.field.attname], [k["pk"] for k in keys])

    def _set_count(self, counted: int) -> None:
        self.count_capped = counted > self.count_cap
        self.count = min(counted, self.count_cap)

    def get_next_link(self):
        if not (self.has_next and self.rows):
            return None
        return self._encode("n", self.rows[-1], self.field)

    def get_previous_link(self):
        if not (self.has_previous and self.rows):
            return None
        return self._encode("p", self.rows[0], self.field)

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count,
                "count_capped": self.count_capped,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["count", "count_capped", "next", "previous", "results"],
            "properties": {
                "count": {"type": "integer", "example": 123},
                "count_capped": {
                    "type": "boolean",
                    "description": "true when there are more rows than `count` says",
                },
                "next": link,
                "previous": link,
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Opaque position from a `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (at most {self.max_page_size}).",
                "schema": {"type": "integer"},
            },
        ]
