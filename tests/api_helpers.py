"""Helpers shared by the API tests: clients signed in with a token, as a real client would."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def token_client(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # Throttle counters live in the cache (Redis in the suite); start every test at zero.
    cache.clear()
    yield
