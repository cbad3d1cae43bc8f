"""Configuration pages through the client: calendars, standards, versions, what-if, permissions."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.urls import reverse

from audit.models import AuditRecord
from slas import services as sla_services
from slas.jobs import replay_whatif
from slas.models import Calendar, ReplayJob, SlaClock, StandardVersion
from tests.factories import DEFAULT_LADDER, DEFAULT_TARGETS, ServiceFactory, standard
from tickets import services

H = timedelta(hours=1)


def at(day: int, hour: float) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC) + timedelta(hours=hour - 1)


@pytest.fixture
def travel():
    travellers = []

    def go(instant):
        traveller = time_machine.travel(instant, tick=False)
        traveller.start()
        travellers.append(traveller)

    yield go
    for traveller in reversed(travellers):
        traveller.stop()


def client_for(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(client, org):
    return client_for(client, org.admin)


@pytest.fixture
def it_configurable(org):
    org.it.leads_may_configure = True
    org.it.save()
    return org


def calendar_data(**overrides):
    data = {
        "name": "Berlin office",
        "timezone": "Europe/Berlin",
        "day_0": "09:00-12:30, 13:30-17:30",
        "day_1": "09:00-17:00",
        "day_2": "09:00-17:00",
        "day_3": "09:00-17:00",
        "day_4": "09:00-15:00",
        "day_5": "",
        "day_6": "",
        "holidays": "2026-12-24 Christmas Eve\n2026-12-31",
        "holiday_country": "DE",
        "holiday_subdivision": "BY",
        "action": "save",
    }
    data.update(overrides)
    return data


def standard_data(org, std=None, **overrides):
    std = std or org.standard
    version = std.current_version
    data = {
        "name": std.name,
        "department": std.department_id or "",
        "calendar": version.calendar_id,
        "note": "",
        "days": 90,
        "departments": [org.it.pk, org.finance.pk, org.hr.pk],
        "ladder-TOTAL_FORMS": 4,
        "ladder-INITIAL_FORMS": 0,
        "ladder-MIN_NUM_FORMS": 0,
        "ladder-MAX_NUM_FORMS": 20,
        "action": "save",
    }
    for target in version.targets.all():
        data[f"{target.priority}_first_response"] = f"{target.first_response.total_seconds()}s"
        data[f"{target.priority}_resolution"] = f"{target.resolution.total_seconds()}s"
    for i, (metric, threshold, actions) in enumerate(DEFAULT_LADDER):
        data[f"ladder-{i}-metric"] = metric
        data[f"ladder-{i}-threshold"] = int(threshold * 100)
        data[f"ladder-{i}-actions"] = actions
    data.update(overrides)
    return data


def errors_of(response) -> str:
    return response.content.decode()


# --- Permissions -------------------------------------------------------------------------------


def test_admin_sees_configuration_and_the_nav_link(admin_client):
    response = admin_client.get(reverse("config:home"))
    assert response.status_code == 200
    assert 'href="/config/"' in response.content.decode()


@pytest.mark.parametrize("who", ["employee", "it_agent", "it_lead", "outsider"])
def test_others_get_404_and_no_nav_link(client, org, who):
    client_for(client, getattr(org, who))
    assert client.get(reverse("config:home")).status_code == 404
    assert client.get(reverse("config:standard_edit", args=[org.standard.pk])).status_code == 404
    assert 'href="/config/"' not in client.get(reverse("catalogue")).content.decode()


def test_anonymous_is_sent_to_sign_in(client, org):
    response = client.get(reverse("config:home"))
    assert response.status_code == 302 and reverse("login") in response.url


def test_lead_configures_own_department_when_allowed(client, it_configurable):
    org = it_configurable
    own = standard(name="IT standard", department=org.it)
    client_for(client, org.it_lead)
    home = client.get(reverse("config:home"))
    assert home.status_code == 200
    assert "IT standard" in home.content.decode()
    # The organisation-wide standard is for admins only.
    assert reverse("config:standard_edit", args=[org.standard.pk]) not in home.content.decode()
    assert client.get(reverse("config:standard_edit", args=[own.pk])).status_code == 200
    assert client.get(reverse("config:standard_edit", args=[org.standard.pk])).status_code == 404


def test_lead_of_another_department_cannot_open_it(client, it_configurable):
    org = it_configurable
    own = standard(name="IT standard", department=org.it)
    client_for(client, org.finance_lead)
    assert client.get(reverse("config:standard_edit", args=[own.pk])).status_code == 404


def test_lead_may_read_calendars_but_not_edit_them(client, it_configurable):
    org = it_configurable
    calendar = org.standard.current_version.calendar
    client_for(client, org.it_lead)
    assert client.get(reverse("config:calendar_detail", args=[calendar.pk])).status_code == 200
    assert client.get(reverse("config:calendar_edit", args=[calendar.pk])).status_code == 404
    assert client.get(reverse("config:calendar_new")).status_code == 404


def test_lead_cannot_publish_for_another_department(client, it_configurable):
    org = it_configurable
    own = standard(name="IT standard", department=org.it)
    client_for(client, org.it_lead)
    data = standard_data(org, own, department=org.hr.pk, departments=[])
    response = client.post(reverse("config:standard_edit", args=[own.pk]), data)
    assert response.status_code == 400
    assert own.versions.count() == 1


def test_lead_creates_a_standard_for_own_department(client, it_configurable):
    org = it_configurable
    client_for(client, org.it_lead)
    data = standard_data(org, name="IT new", department=org.it.pk, departments=[org.it.pk])
    response = client.post(reverse("config:standard_new"), data)
    assert response.status_code == 302
    org.it.refresh_from_db()
    assert org.it.default_standard.name == "IT new"


# --- Calendars ---------------------------------------------------------------------------------


def test_admin_creates_a_calendar_with_split_shifts_and_holidays(admin_client, org):
    response = admin_client.post(reverse("config:calendar_new"), calendar_data())
    assert response.status_code == 302
    calendar = Calendar.objects.get(name="Berlin office")
    assert [(i.weekday, i.start, i.end) for i in calendar.intervals.all()][:2] == [
        (0, time(9), time(12, 30)),
        (0, time(13, 30), time(17, 30)),
    ]
    assert {h.date for h in calendar.holidays.all()} == {date(2026, 12, 24), date(2026, 12, 31)}
    assert (calendar.holiday_country, calendar.holiday_subdivision) == ("DE", "BY")
    record = AuditRecord.objects.get(action="calendar.save", target_id=str(calendar.pk))
    assert record.actor == org.admin and record.before is None


def test_editing_a_calendar_is_audited_before_and_after(admin_client, org):
    calendar = org.standard.current_version.calendar
    data = calendar_data(name=calendar.name, day_4="09:00-13:00")
    assert (
        admin_client.post(reverse("config:calendar_edit", args=[calendar.pk]), data).status_code
        == 302
    )
    record = AuditRecord.objects.filter(action="calendar.save").latest("id")
    assert "4 09:00-17:00" in record.before["week"]
    assert "4 09:00-13:00" in record.after["week"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "Unknown time zone “Mars/Olympus”"),
        ({"day_0": "09:00-12:00, 11:00-13:00"}, "Monday: 09:00-12:00 overlaps 11:00-13:00"),
        ({"day_1": "17:00-09:00"}, "Tuesday: 17:00-09:00 ends before it starts"),
        ({"day_2": "nine to five"}, "is not an interval like 09:00-17:00"),
        ({"day_3": "25:00-26:00"}, "is not a time of day"),
        ({"holiday_subdivision": "XX"}, "has no subdivision “XX”"),
        ({"holiday_country": "", "holiday_subdivision": "BY"}, "Choose the country"),
        ({"holidays": "Christmas"}, "does not start with a date"),
        (
            {f"day_{d}": "" for d in range(7)} | {"always_open": ""},
            "Give at least one working interval, or tick 24×7",
        ),
    ],
)
def test_calendar_form_refuses_with_a_clear_message(admin_client, org, overrides, message):
    response = admin_client.post(reverse("config:calendar_new"), calendar_data(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Calendar.objects.filter(name="Berlin office").exists()


def test_a_24x7_calendar_needs_no_hours(admin_client):
    data = calendar_data(always_open="on", **{f"day_{d}": "" for d in range(7)})
    assert admin_client.post(reverse("config:calendar_new"), data).status_code == 302
    assert Calendar.objects.get(name="Berlin office").always_open


def test_calendar_preview_shows_next_week_due_time_and_preset_dates(admin_client, org, travel):
    travel(at(12, 10))  # Monday 10:00 Berlin
    calendar = sla_services.calendar_save(
        name="Bavaria",
        timezone_name="Europe/Berlin",
        week={d: [(time(9), time(17))] for d in range(5)},
        holidays={date(2026, 1, 14): "Team day"},
        holiday_country="DE",
        holiday_subdivision="BY",
    )
    url = reverse("config:calendar_detail", args=[calendar.pk])
    page = admin_client.get(url, {"duration": "2 business days"}).content.decode()
    assert "Mon 12 Jan" in page and "09:00–17:00" in page
    assert "holiday" in page  # Wednesday the 14th
    assert "32h" in page  # four working days in the next seven (one is a holiday)
    # 16 business hours from Monday 10:00, skipping Wednesday: Thursday 10:00.
    assert "due <strong>Thu 15 Jan 2026 10:00</strong>" in page
    assert "Tue 6 Jan 2026" in page  # Epiphany, in Bavaria
    assert "2027" in page  # next year's preset dates too


def test_calendar_preview_explains_a_bad_duration(admin_client, org):
    calendar = org.standard.current_version.calendar
    url = reverse("config:calendar_detail", args=[calendar.pk])
    page = admin_client.get(url, {"duration": "2 days"}).content.decode()
    assert "business days" in page and "48h" in page


def test_calendar_edit_preview_does_not_save(admin_client, org):
    data = calendar_data(action="preview")
    response = admin_client.post(reverse("config:calendar_new"), data)
    assert response.status_code == 200
    assert "Working time over the next seven days" in response.content.decode()
    assert not Calendar.objects.filter(name="Berlin office").exists()


# --- Standards ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"P2_first_response": "8h", "P2_resolution": "4h"},
            "P2: resolution (4h) must not be shorter than first response (8h).",
        ),
        ({"P1_first_response": "soon"}, "“soon” is not a duration"),
        ({"P1_first_response": "2 days"}, "Say “2 business days”"),
        ({"P1_first_response": "0m"}, "A target must be longer than zero."),
        ({"P3_resolution": ""}, "P3: give both targets, or leave both empty."),
        (
            {"ladder-1-threshold": "75"},
            "First response levels must have increasing thresholds: 75 % comes after 75 %.",
        ),
        (
            {"ladder-1-threshold": "90", "ladder-3-threshold": "90"},
            "The ladder needs at least one level at 100 % (the breach).",
        ),
        ({"ladder-0-actions": []}, "Choose at least one action."),
        ({"ladder-0-threshold": "0"}, "Ensure this value is greater than or equal to 1."),
        (
            {
                f"{p}_{m}": ""
                for p in ("P1", "P2", "P3", "P4")
                for m in ("first_response", "resolution")
            },
            "Give the targets of at least one priority.",
        ),
    ],
)
def test_standard_form_refuses_with_a_clear_message(admin_client, org, overrides, message):
    url = reverse("config:standard_edit", args=[org.standard.pk])
    response = admin_client.post(url, standard_data(org, **overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert org.standard.versions.count() == 1


def test_business_days_use_the_chosen_calendars_working_day(admin_client, org):
    url = reverse("config:standard_edit", args=[org.standard.pk])
    data = standard_data(org, P4_first_response="2 business days", P4_resolution="6 business days")
    assert admin_client.post(url, data).status_code == 302
    target = org.standard.versions.get(number=2).targets.get(priority="P4")
    assert (target.first_response, target.resolution) == (16 * H, 48 * H)


def test_saving_a_change_publishes_a_new_version_and_keeps_the_old(admin_client, org):
    url = reverse("config:standard_edit", args=[org.standard.pk])
    data = standard_data(org, P3_first_response="2h", note="Faster P3")
    response = admin_client.post(url, data)
    assert response.status_code == 302
    v1, v2 = StandardVersion.objects.filter(standard=org.standard).order_by("number")
    assert v2.note == "Faster P3" and v2.created_by == org.admin
    assert v2.targets.get(priority="P3").first_response == 2 * H
    assert v1.targets.get(priority="P3").first_response == 4 * H
    page = admin_client.get(url).content.decode()
    assert "v1" in page and "v2" in page and "Faster P3" in page
    version_page = admin_client.get(reverse("config:standard_version", args=[org.standard.pk, 1]))
    assert version_page.status_code == 200 and "4h" in version_page.content.decode()


def test_saving_without_content_change_publishes_nothing(admin_client, org):
    url = reverse("config:standard_edit", args=[org.standard.pk])
    assert admin_client.post(url, standard_data(org)).status_code == 302
    assert org.standard.versions.count() == 1


def test_saving_assignments_updates_services(admin_client, org):
    extra = ServiceFactory(department=org.hr, name="Payslips")
    url = reverse("config:standard_edit", args=[org.standard.pk])
    admin_client.post(url, standard_data(org, services=[extra.pk]))
    extra.refresh_from_db()
    assert extra.standard == org.standard


def test_new_department_standard_end_to_end(admin_client, org):
    """An admin sets up a new department's calendar and standard in the app and saves it."""
    from departments.services import department_create

    legal = department_create(name="Legal", slug="legal", code="LEG")
    contracts = ServiceFactory(department=legal, name="Contract review")
    admin_client.post(reverse("config:calendar_new"), calendar_data(name="Legal hours"))
    calendar = Calendar.objects.get(name="Legal hours")
    data = standard_data(
        org,
        name="Legal standard",
        department=legal.pk,
        calendar=calendar.pk,
        departments=[legal.pk],
        P1_first_response="1h",
        P1_resolution="1 business day",
    )
    whatif = admin_client.post(reverse("config:standard_new"), {**data, "action": "whatif"})
    assert whatif.status_code == 200 and "What-if result" in whatif.content.decode()
    saved = admin_client.post(reverse("config:standard_new"), data)
    assert saved.status_code == 302
    legal.refresh_from_db()
    assert legal.default_standard.name == "Legal standard"
    ticket = services.ticket_create(requester=org.employee, service=contracts, title="NDA")
    assert SlaClock.objects.filter(ticket=ticket).count() == 2


# --- What-if and re-targeting through the pages ------------------------------------------------


def test_whatif_shows_predicted_next_to_actual_and_the_changed_tickets(admin_client, org, travel):
    travel(at(12, 10))
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="x")
    travel(at(12, 13))
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="hi")  # 3 h: met
    travel(at(13, 10))
    url = reverse("config:standard_edit", args=[org.standard.pk])
    response = admin_client.post(url, standard_data(org, P3_first_response="1h", action="whatif"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "1 ticket would have a different outcome." in page
    assert ticket.reference in page
    assert "100.0 %" in page and "0.0 %" in page
    assert org.standard.versions.count() == 1  # a what-if never saves


def test_long_whatif_runs_as_a_job_with_progress(admin_client, org, travel, settings):
    settings.SLA_REPLAY_SYNC_LIMIT = 0
    travel(at(12, 10))
    services.ticket_create(requester=org.employee, service=org.service, title="x")
    travel(at(13, 10))
    url = reverse("config:standard_edit", args=[org.standard.pk])
    response = admin_client.post(url, standard_data(org, action="whatif"))
    assert response.status_code == 200
    job = ReplayJob.objects.get()
    assert job.status == "queued" and f'data-job-status="/config/replays/{job.pk}/status/"' in (
        response.content.decode()
    )
    status = admin_client.get(reverse("config:replay_job_status", args=[job.pk])).json()
    assert (status["status"], status["percent"]) == ("queued", 0)
    replay_whatif(job.pk)
    status = admin_client.get(reverse("config:replay_job_status", args=[job.pk])).json()
    assert (status["status"], status["percent"], status["done"]) == ("done", 100, 1)
    page = admin_client.get(reverse("config:replay_job", args=[job.pk])).content.decode()
    assert "What-if result" in page and "1 ticket of the last 90 days replayed." in page


def test_a_replay_job_is_private_to_its_requester(client, org, it_configurable):
    job = ReplayJob.objects.create(
        requested_by=org.admin, proposal={}, created_at=datetime.now(UTC)
    )
    client_for(client, org.it_lead)
    assert client.get(reverse("config:replay_job", args=[job.pk])).status_code == 404
    assert client.get(reverse("config:replay_job_status", args=[job.pk])).status_code == 404


def test_retarget_needs_confirmation_then_moves_open_tickets(admin_client, org, travel):
    travel(at(12, 10))
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="x")
    sla_services.standard_publish(
        standard=org.standard,
        name=org.standard.name,
        calendar=org.standard.current_version.calendar,
        targets={**DEFAULT_TARGETS, "P3": (2 * H, 8 * H)},
        ladder=DEFAULT_LADDER,
    )
    edit = admin_client.get(reverse("config:standard_edit", args=[org.standard.pk]))
    assert "1 open ticket is still measured against an older version." in edit.content.decode()
    url = reverse("config:standard_retarget", args=[org.standard.pk])
    assert admin_client.get(url).status_code == 200
    refused = admin_client.post(url, {})
    assert refused.status_code == 400 and "Tick the box to confirm." in refused.content.decode()
    assert SlaClock.objects.filter(ticket=ticket, version__number=1).count() == 2
    assert admin_client.post(url, {"confirm": "on"}).status_code == 302
    assert SlaClock.objects.filter(ticket=ticket, version__number=2).count() == 2
