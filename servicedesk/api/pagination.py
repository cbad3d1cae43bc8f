from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class CappedCountPagination(StandardPagination):
    """Page numbers whose cost does not grow with the list (issue 10).

    An exact COUNT(*) reads every visible row, so on a large history it costs more than the
    page itself. Here `count` is exact up to `count_cap` rows; beyond that it is `count_cap`
    with `count_capped: true`. `next` does not depend on the count: the page is read with one
    extra row, so a client can still walk every page.
    """

    count_cap = 1000

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        size = self.get_page_size(request)
        raw = request.query_params.get(self.page_query_param) or "1"
        try:
            number = int(raw)
            if number < 1:
                raise ValueError
        except ValueError:
            raise NotFound(_("Invalid page.")) from None
        offset = (number - 1) * size
        rows = list(queryset[offset : offset + size + 1])
        if not rows and number != 1:
            raise NotFound(_("Invalid page."))
        self.number, self.size = number, size
        self.more = len(rows) > size
        counted = queryset.order_by()[: self.count_cap + 1].count()
        self.count_capped = counted > self.count_cap
        self.count = max(min(counted, self.count_cap), offset + min(len(rows), size))
        return rows[:size]

    def _link(self, number: int) -> str:
        url = self.request.build_absolute_uri()
        if number == 1:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, number)

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count,
                "count_capped": self.count_capped,
                "next": self._link(self.number + 1) if self.more else None,
                "previous": self._link(self.number - 1) if self.number > 1 else None,
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["count_capped"] = {
            "type": "boolean",
            "description": "true when there are more rows than `count` says",
        }
        paginated["required"] = [*paginated.get("required", []), "count_capped"]
        return paginated
