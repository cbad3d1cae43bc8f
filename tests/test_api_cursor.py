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
