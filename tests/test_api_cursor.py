"""The API ticket list's keyset cursor is opaque to clients: any well-formed cursor whose
position is not a value of the sort column answers 404, like a malformed one (not a 500)."""

from __future__ import annotations

import json
from base64 import urlsafe_b64encode

import pytest


def _cursor(*parts) -> str:
    return urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


@pytest.mark.parametrize(
    ("ordering", "value"),
    [
        ("-created_at", None),
        ("-created_at", 5),
        ("-created_at", [1]),
        ("number", None),
        ("priority", None),
    ],
)
def test_cursor_with_a_value_of_the_wrong_type_answers_404(client, org, ordering, value):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=org.it_agent)
    response = client.get(
        f"/api/v1/tickets/?ordering={ordering}&cursor={_cursor('n', value, 1)}",
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert response.status_code == 404


def test_the_next_cursor_keeps_the_sort_value_the_page_was_ordered_by(client, org, monkeypatch):
    """The page's ids and sort values are read before its columns: a ticket updated in between
    (here, by the patched column read) neither moves the cursor nor repeats rows on the next
    page."""
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from servicedesk.api import pagination
    from tickets import services
    from tickets.models import Ticket

    for n in range(5):
        services.ticket_create(requester=org.employee, service=org.service, title=f"T{n}")
    token = Token.objects.create(user=org.admin)
    read_columns = pagination._values_by_id

    def update_then_read(model, columns, ids):
        # The page's last row (page_size=2) is updated after the ids were read.
        Ticket.objects.filter(pk=ids[1]).update(updated_at=timezone.now())
        return read_columns(model, columns, ids)

    monkeypatch.setattr(pagination, "_values_by_id", update_then_read)
    headers = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    first = client.get("/api/v1/tickets/?ordering=-updated_at&page_size=2", **headers).json()
    monkeypatch.setattr(pagination, "_values_by_id", read_columns)
    second = client.get(first["next"], **headers).json()
    seen = [row["reference"] for row in first["results"] + second["results"]]
    assert len(seen) == len(set(seen)) == 4
