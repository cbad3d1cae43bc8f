"""REST API: calendars, service standards (versioned) and the SLA metrics."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from slas import services as sla_services
from slas.models import Calendar, ServiceStandard
from tests import factories
from tests.api_helpers import _fresh_throttles, token_client  # noqa: F401

CALENDAR_FIELDS = {
    "id",
    "name",
    "timezone",
    "always_open",
    "week",
    "holidays",
    "holiday_preset",
    "updated_at",
}
STANDARD_FIELDS = {
    "id",
    "name",
    "department",
    "calendar",
    "version",
    "effective_from",
    "targets",
    "ladder",
}

CALENDAR = {
    "name": "Berlin office",
    "timezone": "Europe/Berlin",
    "week": {"0": [["09:00", "12:30"], ["13:30", "17:30"]], "4": [["09:00", "24:00"]]},
    "holidays": ["2026-12-24", "2026-12-31"],
    "holiday_preset": {"country": "DE", "subdivision": "BY"},
}


# --- Calendars ------------------------------------------------------------------------------


def test_calendar_has_every_contract_field(org):
    calendar = org.standard.current_version.calendar
    response = token_client(org.employee).get(f"/api/v1/calendars/{calendar.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == CALENDAR_FIELDS
    assert body["week"]["0"] == [["09:00", "17:00"]]
    assert body["week"]["6"] == []
    assert body["holidays"] == []
    assert body["holiday_preset"] is None


def test_admin_creates_a_calendar_through_calendar_save(org):
    response = token_client(org.admin).post("/api/v1/calendars/", CALENDAR, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["week"]["0"] == [["09:00", "12:30"], ["13:30", "17:30"]]
    assert body["week"]["4"] == [["09:00", "24:00"]]
    assert body["holidays"] == ["2026-12-24", "2026-12-31"]
    assert body["holiday_preset"] == {"country": "DE", "subdivision": "BY"}
    calendar = Calendar.objects.get(name="Berlin office")
    assert calendar.intervals.count() == 3
    assert calendar.intervals.get(weekday=4).end == time(0)


def test_patch_changes_only_what_it_names(org):
    client = token_client(org.admin)
    created = client.post("/api/v1/calendars/", CALENDAR, format="json").json()
    response = client.patch(
        f"/api/v1/calendars/{created['id']}/", {"timezone": "Europe/Lisbon"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["timezone"] == "Europe/Lisbon"
    assert body["week"] == created["week"]
    assert body["holidays"] == created["holidays"]
    assert body["holiday_preset"] == created["holiday_preset"]


def test_put_replaces_the_calendar(org):
    client = token_client(org.admin)
    created = client.post("/api/v1/calendars/", CALENDAR, format="json").json()
    response = client.put(
        f"/api/v1/calendars/{created['id']}/",
        {"name": "Berlin office", "timezone": "UTC", "always_open": True},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["always_open"] is True
    assert body["holidays"] == []
    assert all(day == [] for day in body["week"].values())


def test_employee_and_lead_may_not_change_calendars(org):
    calendar = org.standard.current_version.calendar
    for user in (org.employee, org.it_lead):
        client = token_client(user)
        assert client.post("/api/v1/calendars/", CALENDAR, format="json").status_code == 403
        response = client.patch(
            f"/api/v1/calendars/{calendar.pk}/", {"timezone": "UTC"}, format="json"
        )
        assert response.status_code == 403


@pytest.mark.parametrize(
    "change, field",
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": 5}, "timezone"),
        ({"week": {"7": [["09:00", "17:00"]]}}, "week"),
        ({"week": {"0": [["17:00", "09:00"]]}}, "week"),
        ({"week": {"0": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "week"),
        ({"week": {"0": [["9 o'clock", "17:00"]]}}, "week"),
        ({"week": {"0": "09:00-17:00"}}, "week"),
        ({"week": {}}, "week"),
        ({"holidays": ["2026-02-30"]}, "holidays"),
        ({"holidays": "2026-01-01"}, "holidays"),
        ({"holiday_preset": {"country": "XX"}}, "holiday_preset"),
        ({"holiday_preset": {"country": "DE", "subdivision": "ZZ"}}, "holiday_preset"),
        ({"name": "x" * 10_000}, "name"),
        ({"name": "Standard calendar"}, "name"),
    ],
)
def test_bad_calendar_input_answers_400_with_field_messages(org, change, field):
    response = token_client(org.admin).post(
        "/api/v1/calendars/", {**CALENDAR, **change}, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_calendars_list_has_a_query_budget(org, django_assert_max_num_queries):
    for n in range(40):
        sla_services.calendar_save(
            name=f"Cal {n}",
            timezone_name="Europe/Berlin",
            week={day: [(time(9), time(12)), (time(13), time(17))] for day in range(5)},
            holidays=[],
        )
    client = token_client(org.employee)
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/calendars/?page_size=500")
    assert response.json()["count"] == 41


# --- Standards ------------------------------------------------------------------------------

STANDARD = {
    "name": "IT gold",
    "department": "it",
    "targets": [
        {"priority": "P1", "first_response": "00:30:00", "resolution": "04:00:00"},
        {"priority": "P2", "first_response": "01:00:00", "resolution": "1 00:00:00"},
    ],
    "ladder": [
        {"metric": "first_response", "threshold": 0.75, "actions": ["notify_assignee"]},
        {"metric": "resolution", "threshold": 1.0, "actions": ["notify_supplier_lead"]},
    ],
}


def _standard_payload(org, **change):
    return {**STANDARD, "calendar": org.standard.current_version.calendar_id, **change}


def test_standard_has_every_contract_field(org):
    response = token_client(org.employee).get(f"/api/v1/standards/{org.standard.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == STANDARD_FIELDS
    assert body["targets"][0] == {
        "priority": "P1",
        "first_response": "00:30:00",
        "resolution": "04:00:00",
    }
    assert body["ladder"][0] == {
        "metric": "first_response",
        "threshold": 0.75,
        "actions": ["notify_assignee"],
    }
    assert body["version"] == 1


def test_admin_publishes_a_standard(org):
    response = token_client(org.admin).post(
        "/api/v1/standards/", _standard_payload(org), format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["department"] == "it"
    assert body["targets"][1]["resolution"] == "1 00:00:00"
    assert body["version"] == 1


def test_targets_down_to_seconds_are_valid_and_clocks_keep_them(org, monday_10):
    import time_machine

    from slas.models import SlaClock
    from tickets import services as ticket_services

    always = sla_services.calendar_save(
        name="Around the clock", timezone_name="UTC", always_open=True
    )
    targets = [
        {"priority": p, "first_response": "00:00:05", "resolution": "00:01:30"}
        for p in ("P1", "P2", "P3", "P4")
    ]
    response = token_client(org.admin).post(
        "/api/v1/standards/",
        _standard_payload(org, name="Seconds", calendar=always.pk, targets=targets),
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["targets"][2] == {
        "priority": "P3",
        "first_response": "00:00:05",
        "resolution": "00:01:30",
    }
    service = factories.ServiceFactory(
        department=org.it, standard=ServiceStandard.objects.get(pk=response.json()["id"])
    )
    with time_machine.travel(monday_10, tick=False):
        ticket = ticket_services.ticket_create(
            requester=org.employee, service=service, title="Fast"
        )
    clocks = {c.metric: c for c in SlaClock.objects.filter(ticket=ticket)}
    assert clocks["first_response"].target == timedelta(seconds=5)
    assert clocks["first_response"].deadline == monday_10 + timedelta(seconds=5)
    assert clocks["resolution"].deadline == monday_10 + timedelta(seconds=90)


def test_put_and_patch_publish_new_versions_and_keep_the_old(org):
    client = token_client(org.admin)
    url = f"/api/v1/standards/{org.standard.pk}/"
    old_version = org.standard.current_version
    response = client.patch(
        url,
        {"targets": [{"priority": "P1", "first_response": "00:10:00", "resolution": "01:00:00"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["version"] == 2
    assert body["targets"] == [
        {"priority": "P1", "first_response": "00:10:00", "resolution": "01:00:00"}
    ]
    assert len(body["ladder"]) == 4  # kept
    assert body["name"] == "Standard"
    response = client.put(url, _standard_payload(org, name="Renamed"), format="json")
    assert response.json()["version"] == 3
    standard = ServiceStandard.objects.get(pk=org.standard.pk)
    assert standard.versions.count() == 3
    old_version.refresh_from_db()
    assert old_version.targets.get(priority="P1").first_response == timedelta(minutes=30)


def test_lead_configures_its_department_standard_only_when_allowed(org):
    client = token_client(org.it_lead)
    payload = _standard_payload(org)
    assert client.post("/api/v1/standards/", payload, format="json").status_code == 403
    org.it.leads_may_configure = True
    org.it.save()
    assert client.post("/api/v1/standards/", payload, format="json").status_code == 201
    other = _standard_payload(org, name="Finance", department="finance")
    assert client.post("/api/v1/standards/", other, format="json").status_code == 403
    # The organisation-wide standard (no department) stays with admins.
    response = client.patch(
        f"/api/v1/standards/{org.standard.pk}/", {"name": "Mine"}, format="json"
    )
    assert response.status_code == 403


def test_employee_may_not_publish_standards(org):
    response = token_client(org.employee).post(
        "/api/v1/standards/", _standard_payload(org), format="json"
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "change, field",
    [
        ({"targets": []}, "targets"),
        ({"targets": [{"priority": "P9", "first_response": "1", "resolution": "2"}]}, "targets"),
        (
            {"targets": [{"priority": "P1", "first_response": "soon", "resolution": "01:00"}]},
            "targets",
        ),
        (
            {"targets": [{"priority": "P1", "first_response": "00:00:00", "resolution": "1"}]},
            "targets",
        ),
        (
            {
                "targets": [
                    {"priority": "P1", "first_response": "999999999 00:00:00", "resolution": "1"}
                ]
            },
            "targets",
        ),
        (
            {"targets": [{"priority": "P1", "first_response": "02:00", "resolution": "01:00"}]},
            "targets",
        ),
        (
            {
                "targets": [
                    {"priority": "P1", "first_response": "01:00", "resolution": "02:00"},
                    {"priority": "P1", "first_response": "01:00", "resolution": "02:00"},
                ]
            },
            "targets",
        ),
        ({"ladder": [{"metric": "speed", "threshold": 1}]}, "ladder"),
        ({"ladder": [{"metric": "resolution", "threshold": 0}]}, "ladder"),
        ({"ladder": [{"metric": "resolution", "threshold": 11}]}, "ladder"),
        ({"ladder": [{"metric": "resolution", "threshold": "abc"}]}, "ladder"),
        ({"ladder": [{"metric": "resolution", "threshold": 1, "actions": ["fire"]}]}, "ladder"),
        (
            {
                "ladder": [
                    {"metric": "resolution", "threshold": 1},
                    {"metric": "resolution", "threshold": 1.0},
                ]
            },
            "ladder",
        ),
        ({"calendar": 987654321}, "calendar"),
        ({"calendar": "abc"}, "calendar"),
        ({"department": "nowhere"}, "department"),
        ({"name": "Standard"}, "name"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_standard_input_answers_400_with_field_messages(org, change, field):
    response = token_client(org.admin).post(
        "/api/v1/standards/", _standard_payload(org, **change), format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_standards_list_has_a_query_budget(org, django_assert_max_num_queries):
    calendar = org.standard.current_version.calendar
    for n in range(30):
        factories.standard(name=f"S{n}", calendar=calendar)
    client = token_client(org.employee)
    with django_assert_max_num_queries(7):
        response = client.get("/api/v1/standards/?page_size=500")
    body = response.json()
    assert body["count"] == 31
    assert all(len(row["targets"]) == 4 for row in body["results"])


# --- Metrics --------------------------------------------------------------------------------


def test_metrics_are_for_leads_and_admins(org):
    assert token_client(org.employee).get("/api/v1/metrics/sla/").status_code == 404
    assert token_client(org.it_agent).get("/api/v1/metrics/sla/").status_code == 404
    assert token_client(org.it_lead).get("/api/v1/metrics/sla/").status_code == 200
    assert token_client(org.admin).get("/api/v1/metrics/sla/").status_code == 200
    response = token_client(org.it_lead).get("/api/v1/metrics/sla/?supplier=hr")
    assert response.status_code == 404
    # A lead sees its department as a customer too.
    response = token_client(org.finance_lead).get(
        "/api/v1/metrics/sla/?supplier=it&customer=finance"
    )
    assert response.status_code == 200


def test_metrics_answer_the_contract_query_names_like_the_field_names(org, monday_10):
    import time_machine

    from tickets import services as ticket_services

    with time_machine.travel(monday_10, tick=False):
        ticket_services.ticket_create(requester=org.employee, service=org.service, title="x")
    client = token_client(org.admin)
    period = "from=2026-01-01&to=2026-02-01"
    short = client.get(f"/api/v1/metrics/sla/?supplier=it&customer=finance&{period}")
    long = client.get(
        f"/api/v1/metrics/sla/?supplier_department=it&customer_department=finance&{period}"
    )
    assert short.status_code == long.status_code == 200
    assert short.json() == long.json()
    assert short.json()["filed"] == 1
    assert (short.json()["supplier"], short.json()["customer"]) == ("it", "finance")
    schema = client.get("/api/schema/?format=json").json()
    parameters = {
        p["name"]: p for p in schema["paths"]["/api/v1/metrics/sla/"]["get"]["parameters"]
    }
    for name in ("supplier", "customer", "from", "to"):
        assert not parameters[name].get("deprecated", False)


@pytest.mark.parametrize(
    "query, field",
    [
        ("supplier=nowhere", "supplier"),
        ("from=2026-13-01", "from"),
        ("from=2026-02-01&to=2026-01-01", "to"),
        ("from=2000-01-01&to=2026-01-01", "from"),
    ],
)
def test_bad_metrics_query_answers_400(org, query, field):
    response = token_client(org.admin).get(f"/api/v1/metrics/sla/?{query}")
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("query", ["to=0001-01-10", "from=0001-01-01", "to=9999-01-01"])
def test_metrics_days_out_of_range_answer_400(org, query):
    response = token_client(org.admin).get(f"/api/v1/metrics/sla/?{query}")
    assert response.status_code == 400
