"""Property-based run of the whole API against its own OpenAPI schema (schemathesis 4).

For every operation of `/api/schema/`, as an admin and as an employee (token auth), generated
requests — valid ones and deliberately invalid ones — must never answer 5xx and every
documented response must match its schema. The app runs in-process over WSGI against the
real PostgreSQL of the suite, inside the test's transaction; half of the detail requests
address objects that exist, so the run reaches past the 404s.

Bounded: at most MAX_EXAMPLES valid and MAX_NEGATIVE invalid cases per operation and user,
derandomised so CI reruns the same cases.
"""

from __future__ import annotations

import functools

import pytest
import schemathesis
from django.core.cache import cache
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests import factories
from tickets import services

MAX_EXAMPLES = 20
MAX_NEGATIVE = 10
CHECKS = [not_a_server_error, response_schema_conformance]


@functools.cache
def _schema():
    from servicedesk.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


def _operations() -> list[str]:
    return sorted(result.ok().label for result in _schema().get_all_operations())


def _world() -> dict:
    """A small organisation with one of everything, and the path parameters that reach it."""
    org = factories.build_org()
    ticket = services.ticket_create(
        requester=org.employee, service=org.service, title="Laptop", description="Broken"
    )
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Looking", internal=True)
    return {
        "org": org,
        "path": {
            "slug": org.it.slug,
            "id": {
                "calendars": org.standard.current_version.calendar_id,
                "standards": org.standard.pk,
                "services": org.service.pk,
            },
            "reference": ticket.reference,
        },
        # Body fields that name other objects: random ids would nearly always answer 400.
        "body": {
            "service": org.service.pk,
            "calendar": org.standard.current_version.calendar_id,
            "standard": org.standard.pk,
            "department": org.it.slug,
            "assignee": org.it_agent.username,
        },
    }


def _known_path_parameters(operation, world) -> dict:
    names = {parameter.name for parameter in operation.path_parameters}
    known = {}
    if "slug" in names:
        known["slug"] = world["path"]["slug"]
    if "reference" in names:
        known["reference"] = world["path"]["reference"]
    if "id" in names:
        collection = operation.path.split("/")[3]  # /api/v1/<collection>/{id}/
        known["id"] = world["path"]["id"][collection]
    return known


def _run(operation, *, headers: dict, mode, max_examples: int, known: dict, body: dict) -> None:
    strategy = operation.as_strategy(generation_mode=mode)
    if known:
        strategy = st.one_of(
            strategy, operation.as_strategy(generation_mode=mode, path_parameters=known)
        )

    @hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, use_known_objects=st.booleans())
    def check(case, use_known_objects):
        if use_known_objects and isinstance(case.body, dict):
            case.body = {
                **case.body,
                **{key: value for key, value in body.items() if key in case.body},
            }
        # Raises (with the response and the failed check) on a 5xx or a schema violation.
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        check()
    except Unsatisfiable:
        # Only for invalid requests: an operation whose sole input is a free-form path
        # parameter has no invalid request that still reaches it.
        if mode != schemathesis.GenerationMode.NEGATIVE:
            raise


@pytest.fixture
def in_process_requests_share_the_test_transaction():
    # Like Django's own test client: a request must not close the connection that holds the
    # test's transaction (rolled back afterwards, far cheaper than flushing every table).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("label", _operations())
def test_api_operation_conforms_to_its_schema(
    label, db, in_process_requests_share_the_test_transaction
):
    world = _world()
    operation = _schema().find_operation_by_label(label)
    known = _known_path_parameters(operation, world)
    for user in (world["org"].admin, world["org"].employee):
        token, _ = Token.objects.get_or_create(user=user)
        headers = {"Authorization": f"Token {token.key}"}
        cache.clear()  # throttle counters
        _run(
            operation,
            headers=headers,
            mode=schemathesis.GenerationMode.POSITIVE,
            max_examples=MAX_EXAMPLES,
            known=known,
            body=world["body"],
        )
        _run(
            operation,
            headers=headers,
            mode=schemathesis.GenerationMode.NEGATIVE,
            max_examples=MAX_NEGATIVE,
            known=known,
            body={},
        )


def test_schema_lists_every_contract_operation():
    labels = set(_operations())
    for expected in [
        "POST /api/v1/auth/token/",
        "GET /api/v1/departments/{slug}/",
        "GET /api/v1/calendars/",
        "PUT /api/v1/standards/{id}/",
        "GET /api/v1/services/",
        "POST /api/v1/tickets/",
        "GET /api/v1/tickets/{reference}/comments/",
        "POST /api/v1/tickets/{reference}/comments/",
        "POST /api/v1/tickets/{reference}/transition/",
        "POST /api/v1/tickets/{reference}/assign/",
        "POST /api/v1/tickets/{reference}/rating/",
        "GET /api/v1/metrics/sla/",
    ]:
        assert expected in labels
