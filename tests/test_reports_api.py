"""`/api/v1/metrics/sla/` answers the dashboards' figures (one selector) with SPEC §6 rules."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import time_machine

from reports import selectors
from tests.api_helpers import token_client
from tests.factories import MembershipFactory, UserFactory
from tests.test_reports_figures import NOW, history  # noqa: F401 (fixture)

URL = "/api/v1/metrics/sla/"
WEEK = "from=2026-01-12&to=2026-01-19"


@pytest.fixture
def hr_lead(org):
    user = UserFactory(username="hrlead", home_department=org.hr)
    MembershipFactory(user=user, department=org.hr, role="lead")
    return user


@time_machine.travel(NOW, tick=False)
def test_metrics_give_the_hand_computed_figures(history):  # noqa: F811
    response = token_client(history.it_lead).get(f"{URL}?{WEEK}&supplier_department=it")
    assert response.status_code == 200
    body = response.json()
    assert body["from"] == "2026-01-12" and body["to"] == "2026-01-19"
    assert (body["filed"], body["cancelled"], body["tickets"]) == (6, 1, 5)
    assert body["first_response"]["compliance"] == 0.8
    assert body["first_response"]["median_seconds"] == 2 * 3600
    assert body["first_response"]["p90_seconds"] == 6 * 3600
    assert body["resolution"]["median"] == "04:00:00"
    assert body["resolution"]["p90_seconds"] == 15 * 3600
    assert (body["resolution"]["met"], body["resolution"]["breached"]) == (4, 1)


@time_machine.travel(NOW, tick=False)
def test_metrics_equal_the_dashboard_selector(history):  # noqa: F811
    body = token_client(history.admin).get(f"{URL}?{WEEK}&customer_department=finance").json()
    figures = selectors.sla_figures(
        scope=selectors.Scope(customer_ids=(history.finance.pk,)),
        period=selectors.Period(date(2026, 1, 12), date(2026, 1, 19)),
        now=NOW,
    )
    for metric in ("first_response", "resolution"):
        for key in ("met", "breached", "compliance", "stopped"):
            assert body[metric][key] == figures[metric][key]
        assert body[metric]["median_seconds"] == figures[metric]["median"].total_seconds()


@time_machine.travel(NOW, tick=False)
def test_metrics_filter_by_service_and_priority(history):  # noqa: F811
    admin = token_client(history.admin)
    body = admin.get(f"{URL}?{WEEK}&service={history.service.pk}&priority=P3").json()
    assert body["filed"] == 6
    assert admin.get(f"{URL}?{WEEK}&priority=P1").json()["filed"] == 0
    assert admin.get(f"{URL}?{WEEK}&service={history.hr_service.pk}").json()["filed"] == 0


def test_a_lead_of_hr_cannot_read_it_figures(org, hr_lead):
    client = token_client(hr_lead)
    assert client.get(f"{URL}?supplier_department=it").status_code == 404
    assert client.get(f"{URL}?customer_department=it").status_code == 404
    assert client.get(f"{URL}?supplier_department=hr").status_code == 200
    # HR as the customer of IT: its own row.
    assert client.get(f"{URL}?supplier_department=it&customer_department=hr").status_code == 200


def test_agents_and_employees_get_404(org):
    assert token_client(org.it_agent).get(URL).status_code == 404
    assert token_client(org.employee).get(f"{URL}?supplier_department=it").status_code == 404


def test_anonymous_gets_401(org):
    from rest_framework.test import APIClient

    assert APIClient().get(URL).status_code == 401


@pytest.mark.parametrize(
    "query, field",
    [
        ("supplier_department=nowhere", "supplier_department"),
        ("customer=nowhere", "customer"),
        ("service=abc", "service"),
        ("service=987654", "service"),
        ("priority=P9", "priority"),
        ("from=2026-13-01", "from"),
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("from=2000-01-01&to=2026-01-01", "from"),
    ],
)
def test_bad_query_answers_400_naming_the_field(org, query, field):
    response = token_client(org.admin).get(f"{URL}?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_default_period_is_the_last_30_days(org):
    body = token_client(org.admin).get(URL).json()
    today = selectors.reporting_today()
    assert body["to"] == (today + timedelta(days=1)).isoformat()
    assert body["from"] == (today - timedelta(days=29)).isoformat()


def test_metrics_query_budget_does_not_depend_on_volume(
    history,  # noqa: F811
    django_assert_max_num_queries,
):
    client = token_client(history.admin)
    client.get(f"{URL}?{WEEK}")  # warm the token and session caches
    with django_assert_max_num_queries(14):
        assert client.get(f"{URL}?{WEEK}&supplier_department=it").status_code == 200
