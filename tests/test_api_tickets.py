"""REST API: tickets, their conversation and actions, per role, with ETag conflict detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from rest_framework.test import APIClient

from slas.escalation import sla_escalate
from tests import factories
from tests.api_helpers import _fresh_throttles, token_client  # noqa: F401
from tickets import services
from tickets.models import Comment, Event, SatisfactionRating, Ticket

TICKET_FIELDS = {
    "reference",
    "title",
    "description",
    "service",
    "supplier_department",
    "customer_department",
    "requester",
    "assignee",
    "priority",
    "status",
    "confidential",
    "created_at",
    "updated_at",
    "sla",
    "escalations",
}
CLOCK_FIELDS = {"metric", "target", "elapsed", "deadline", "state", "breached_at"}


def _file(org, *, requester=None, title="Laptop broken", now=None, **kwargs) -> Ticket:
    return services.ticket_create(
        requester=requester or org.employee,
        service=org.service,
        title=title,
        description="It does not boot.",
        now=now,
        **kwargs,
    )


# --- Auth -----------------------------------------------------------------------------------


def test_token_endpoint_hands_out_a_token_that_authenticates(org):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "employee", "password": "pw"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/tickets/").status_code == 200


def test_token_endpoint_refuses_a_wrong_password_with_400(org):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "employee", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_session_authentication_works_too(org):
    client = APIClient()
    client.force_login(org.employee)
    assert client.get("/api/v1/tickets/").status_code == 200


def test_anonymous_clients_are_throttled(org, monkeypatch):
    from rest_framework.throttling import AnonRateThrottle

    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {"anon": "3/min"})
    client = APIClient()
    codes = [
        client.post("/api/v1/auth/token/", {"username": "x", "password": "y"}).status_code
        for _ in range(4)
    ]
    assert codes == [400, 400, 400, 429]


def test_authenticated_clients_are_throttled(org, monkeypatch):
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min"})
    client = token_client(org.employee)
    codes = [client.get("/api/v1/tickets/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


# --- Create and read ------------------------------------------------------------------------


def test_employee_files_a_request_and_is_its_requester(org):
    response = token_client(org.employee).post(
        "/api/v1/tickets/",
        {"service": org.service.pk, "title": "VPN down", "description": "Since 9:00"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == TICKET_FIELDS
    assert body["reference"] == "IT-1"
    assert body["requester"] == "employee"
    assert body["customer_department"] == "finance"
    assert body["supplier_department"] == "it"
    assert body["priority"] == "P3"
    assert body["status"] == "new"
    assert {row["metric"] for row in body["sla"]} == {"first_response", "resolution"}
    assert set(body["sla"][0]) == CLOCK_FIELDS
    assert body["sla"][0]["state"] == "running"
    assert body["escalations"] == []
    assert response["ETag"]
    assert response["Location"].endswith("/api/v1/tickets/IT-1/")


def test_create_answers_what_a_read_of_the_new_ticket_answers(org, monday_10):
    # The create response is built from the rows just written (no read-back): it must be the
    # very representation, ETag included, that reading the ticket gives.
    client = token_client(org.employee)
    with time_machine.travel(monday_10, tick=False):
        created = client.post(
            "/api/v1/tickets/", {"service": org.service.pk, "title": "VPN down"}, format="json"
        )
        read = client.get("/api/v1/tickets/IT-1/")
    assert created.status_code == 201
    assert created.json() == read.json()
    assert created["ETag"] == read["ETag"]


# Token, service (with its standard's version and calendar), savepoint, reference number,
# ticket, event, clocks, roll-ups and fact (one round trip), release.
CREATE_QUERIES = 9


@pytest.mark.parametrize("handlers", [1, 15])
def test_an_api_create_costs_a_fixed_number_of_queries(
    org, handlers, django_assert_max_num_queries
):
    from departments.models import Membership

    for n in range(handlers):
        factories.MembershipFactory(
            user=factories.UserFactory(home_department=org.it),
            department=org.it,
            role=Membership.Role.LEAD if n % 3 == 0 else Membership.Role.MEMBER,
        )
    client = token_client(org.employee)
    body = {"service": org.service.pk, "title": "VPN down", "priority": "P3"}
    # The first create fills the per-process caches of calendar and standard version.
    assert client.post("/api/v1/tickets/", body, format="json").status_code == 201
    with django_assert_max_num_queries(CREATE_QUERIES):
        response = client.post("/api/v1/tickets/", body, format="json")
    assert response.status_code == 201, response.content


def test_create_takes_an_optional_priority(org):
    response = token_client(org.employee).post(
        "/api/v1/tickets/",
        {"service": org.service.pk, "title": "Down", "priority": "P1"},
        format="json",
    )
    assert response.json()["priority"] == "P1"
    first_response = next(r for r in response.json()["sla"] if r["metric"] == "first_response")
    assert first_response["target"] == "00:30:00"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"service": "", "title": "No service"}, "service"),
        ({"service": 987654321, "title": "x"}, "service"),
        ({"service": "IT", "title": "x"}, "service"),
        ({"service": None, "title": "x"}, "service"),
        ({"title": "x" * 201}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": ["a"]}, "title"),
        ({"title": "x", "priority": "P0"}, "priority"),
        ({"title": "x", "description": "d" * 60_000}, "description"),
        ({"title": "nul\x00"}, "title"),
    ],
)
def test_bad_ticket_input_answers_400_with_field_messages(org, payload, field):
    payload = {"service": org.service.pk, **payload}
    response = token_client(org.employee).post("/api/v1/tickets/", payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_inactive_service_answers_400(org):
    org.service.active = False
    org.service.save()
    response = token_client(org.employee).post(
        "/api/v1/tickets/", {"service": org.service.pk, "title": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "service" in response.json()


def test_lone_surrogates_answer_400_not_500(org):
    response = token_client(org.employee).post(
        "/api/v1/tickets/",
        data=b'{"service": %d, "title": "\\ud800"}' % org.service.pk,
        content_type="application/json",
    )
    assert response.status_code == 400


def test_malformed_json_answers_400(org):
    response = token_client(org.employee).post(
        "/api/v1/tickets/", data=b"{not json", content_type="application/json"
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "user, visible",
    [
        ("employee", True),
        ("it_agent", True),
        ("it_lead", True),
        ("admin", True),
        ("finance_lead", False),
        ("hr_agent", False),
        ("outsider", False),
    ],
)
def test_ticket_visibility_per_role(org, user, visible):
    ticket = _file(org)
    client = token_client(getattr(org, user))
    detail = client.get(f"/api/v1/tickets/{ticket.reference}/")
    assert detail.status_code == (200 if visible else 404)
    listed = [row["reference"] for row in client.get("/api/v1/tickets/").json()["results"]]
    assert (ticket.reference in listed) is visible


def test_watcher_sees_the_ticket(org):
    ticket = _file(org)
    services.ticket_set_watcher(ticket=ticket, actor=org.it_agent, user=org.outsider)
    assert token_client(org.outsider).get(f"/api/v1/tickets/{ticket.reference}/").status_code == 200


def test_confidential_request_is_hidden_from_other_agents(org):
    org.service.confidential = True
    org.service.save()
    ticket = _file(org)
    assert token_client(org.it_agent).get(f"/api/v1/tickets/{ticket.reference}/").status_code == 404
    assert token_client(org.employee).get(f"/api/v1/tickets/{ticket.reference}/").status_code == 200


def test_unknown_reference_answers_404(org):
    assert token_client(org.admin).get("/api/v1/tickets/IT-999/").status_code == 404


def test_list_filters_by_slug_username_and_status(org):
    _file(org)
    services.ticket_create(requester=org.it_agent, service=org.hr_service, title="Letter")
    client = token_client(org.admin)
    refs = lambda query: [  # noqa: E731
        row["reference"] for row in client.get(f"/api/v1/tickets/?{query}").json()["results"]
    ]
    assert refs("supplier_department=it") == ["IT-1"]
    assert refs("customer_department=it") == ["HR-1"]
    assert refs("requester=itagent") == ["HR-1"]
    assert refs("status=new&priority=P3&ordering=created_at") == ["IT-1", "HR-1"]
    assert refs("status=open") == []


@pytest.mark.parametrize(
    "query",
    ["status=flying", "priority=P7", "supplier_department=nowhere", "requester=ghost", "service=x"],
)
def test_bad_filters_answer_400(org, query):
    response = token_client(org.admin).get(f"/api/v1/tickets/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_tickets_list_has_a_query_budget(org, django_assert_max_num_queries, monday_10):
    with time_machine.travel(monday_10, tick=False):
        for n in range(60):
            ticket = _file(org, title=f"T{n}")
        services.ticket_comment(ticket=ticket, author=org.it_agent, body="On it")
    with time_machine.travel(monday_10 + timedelta(hours=3, minutes=10), tick=False):
        for ticket in Ticket.objects.all():
            sla_escalate(ticket_id=ticket.pk, now=monday_10 + timedelta(hours=3, minutes=10))
    for user in (org.admin, org.it_agent, org.employee):
        client = token_client(user)
        with django_assert_max_num_queries(14):
            response = client.get("/api/v1/tickets/?page_size=500")
        assert response.json()["count"] == 60
    assert any(row["escalations"] for row in response.json()["results"])


def test_one_ticket_with_escalations_is_read_once(org, django_assert_max_num_queries, monday_10):
    with time_machine.travel(monday_10, tick=False):
        ticket = _file(org)
    later = monday_10 + timedelta(hours=3, minutes=10)
    with time_machine.travel(later, tick=False):
        sla_escalate(ticket_id=ticket.pk, now=later)
    client = token_client(org.it_agent)
    client.get(f"/api/v1/tickets/{ticket.reference}/")  # calendar and version caches warm
    # token, ticket, its clocks, the agent's memberships, its escalations (the ladder is cached)
    with django_assert_max_num_queries(5):
        response = client.get(f"/api/v1/tickets/{ticket.reference}/")
    assert response.status_code == 200
    assert response.json()["escalations"]


# --- SLA and escalations --------------------------------------------------------------------


def test_sla_and_escalations_fields_follow_the_contract(org, monday_10):
    with time_machine.travel(monday_10, tick=False):
        ticket = _file(org)
    later = monday_10 + timedelta(hours=4, minutes=30)  # past first response (4 h, P3)
    with time_machine.travel(later, tick=False):
        sla_escalate(ticket_id=ticket.pk, now=later)
        body = token_client(org.employee).get(f"/api/v1/tickets/{ticket.reference}/").json()
    clocks = {row["metric"]: row for row in body["sla"]}
    assert clocks["first_response"]["target"] == "04:00:00"
    assert clocks["first_response"]["elapsed"] == "04:30:00"
    assert clocks["first_response"]["state"] == "breached"
    assert clocks["first_response"]["breached_at"] is not None
    assert clocks["resolution"]["state"] == "running"
    assert clocks["resolution"]["breached_at"] is None
    levels = [(e["metric"], e["level"], e["threshold"]) for e in body["escalations"]]
    assert levels == [("first_response", 1, 0.75), ("first_response", 2, 1.0)]
    assert all(e["fired_at"] for e in body["escalations"])


# --- Comments -------------------------------------------------------------------------------


def test_internal_notes_never_reach_the_requester(org):
    ticket = _file(org)
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Public", internal=False)
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Secret", internal=True)
    url = f"/api/v1/tickets/{ticket.reference}/comments/"
    employee_view = token_client(org.employee).get(url).json()
    assert [c["body"] for c in employee_view["results"]] == ["Public"]
    agent_view = token_client(org.it_agent).get(url).json()
    assert [(c["body"], c["internal"]) for c in agent_view["results"]] == [
        ("Public", False),
        ("Secret", True),
    ]
    # Nor through the ticket's own fields.
    assert (
        "Secret"
        not in token_client(org.employee)
        .get(f"/api/v1/tickets/{ticket.reference}/")
        .content.decode()
    )


def test_requester_replies_and_agent_adds_a_note(org):
    ticket = _file(org)
    url = f"/api/v1/tickets/{ticket.reference}/comments/"
    reply = token_client(org.employee).post(url, {"body": "More detail"}, format="json")
    assert reply.status_code == 201
    assert set(reply.json()) == {"id", "author", "body", "internal", "created_at"}
    note = token_client(org.it_agent).post(url, {"body": "Check", "internal": True}, format="json")
    assert note.status_code == 201
    assert note.json()["internal"] is True
    assert Comment.objects.filter(ticket=ticket).count() == 2


def test_requester_may_not_add_internal_notes(org):
    ticket = _file(org)
    response = token_client(org.employee).post(
        f"/api/v1/tickets/{ticket.reference}/comments/",
        {"body": "x", "internal": True},
        format="json",
    )
    assert response.status_code == 403
    assert not Comment.objects.exists()


def test_comments_of_an_invisible_ticket_answer_404(org):
    ticket = _file(org)
    client = token_client(org.outsider)
    url = f"/api/v1/tickets/{ticket.reference}/comments/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"body": "hi"}, format="json").status_code == 404


def test_empty_comment_answers_400(org):
    ticket = _file(org)
    response = token_client(org.employee).post(
        f"/api/v1/tickets/{ticket.reference}/comments/", {"body": "  "}, format="json"
    )
    assert response.status_code == 400
    assert "body" in response.json()


def test_comments_list_has_a_query_budget(org, django_assert_max_num_queries):
    ticket = _file(org)
    for n in range(50):
        services.ticket_comment(ticket=ticket, author=org.it_agent, body=f"c{n}", internal=n % 2)
    client = token_client(org.it_agent)
    with django_assert_max_num_queries(9):
        response = client.get(f"/api/v1/tickets/{ticket.reference}/comments/?page_size=500")
    assert response.json()["count"] == 50


# --- Actions --------------------------------------------------------------------------------


def test_agent_assigns_and_transitions_with_a_note(org):
    ticket = _file(org)
    agent = token_client(org.it_agent)
    url = f"/api/v1/tickets/{ticket.reference}/"
    response = agent.post(url + "assign/", {"assignee": "itagent"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["assignee"] == "itagent"
    response = agent.post(url + "transition/", {"status": "open"}, format="json")
    assert response.json()["status"] == "open"
    response = agent.post(
        url + "transition/", {"status": "resolved", "note": "Replaced the disk"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "resolved"
    assert Comment.objects.get(ticket=ticket).body == "Replaced the disk"
    response = agent.post(url + "assign/", {"assignee": None}, format="json")
    assert response.json()["assignee"] is None


def test_transition_outside_the_graph_answers_400(org):
    ticket = _file(org)
    response = token_client(org.it_agent).post(
        f"/api/v1/tickets/{ticket.reference}/transition/", {"status": "closed"}, format="json"
    )
    assert response.status_code == 400
    assert "status" in response.json()


def test_requester_may_cancel_but_not_resolve(org):
    ticket = _file(org)
    client = token_client(org.employee)
    url = f"/api/v1/tickets/{ticket.reference}/transition/"
    assert client.post(url, {"status": "open"}, format="json").status_code == 400
    response = client.post(url, {"status": "cancelled"}, format="json")
    assert response.json()["status"] == "cancelled"


def test_only_the_supplier_assigns_and_changes_priority(org):
    ticket = _file(org)
    for user in (org.employee, org.hr_agent):
        client = token_client(user)
        url = f"/api/v1/tickets/{ticket.reference}/"
        expected = 403 if user == org.employee else 404
        assert (
            client.post(url + "assign/", {"assignee": "itagent"}, format="json").status_code
            == expected
        )
        assert (
            client.post(url + "priority/", {"priority": "P1"}, format="json").status_code
            == expected
        )
        assert client.patch(url, {"priority": "P1"}, format="json").status_code == expected
    ticket.refresh_from_db()
    assert ticket.priority == "P3" and ticket.assignee is None


def test_assigning_someone_outside_the_supplier_answers_400(org):
    ticket = _file(org)
    url = f"/api/v1/tickets/{ticket.reference}/assign/"
    client = token_client(org.it_lead)
    response = client.post(url, {"assignee": "hragent"}, format="json")
    assert response.status_code == 400
    assert "assignee" in response.json()
    response = client.post(url, {"assignee": "ghost"}, format="json")
    assert response.status_code == 400


def test_priority_change_retargets_the_clocks(org):
    ticket = _file(org)
    response = token_client(org.it_lead).post(
        f"/api/v1/tickets/{ticket.reference}/priority/", {"priority": "P1"}, format="json"
    )
    assert response.status_code == 200
    clocks = {row["metric"]: row for row in response.json()["sla"]}
    assert clocks["first_response"]["target"] == "00:30:00"


def test_patch_changes_priority_service_and_assignee_through_services(org):
    other = factories.ServiceFactory(department=org.it, name="Printer")
    ticket = _file(org)
    response = token_client(org.it_lead).patch(
        f"/api/v1/tickets/{ticket.reference}/",
        {"priority": "P2", "service": other.pk, "assignee": "itagent"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["priority"], body["service"], body["assignee"]) == ("P2", other.pk, "itagent")
    kinds = set(Event.objects.filter(ticket=ticket).values_list("kind", flat=True))
    assert {"priority", "service", "assigned"} <= kinds


def test_put_is_not_offered(org):
    ticket = _file(org)
    response = token_client(org.admin).put(
        f"/api/v1/tickets/{ticket.reference}/", {"title": "x"}, format="json"
    )
    assert response.status_code == 405


def test_requester_rates_a_resolved_request_once(org):
    ticket = _file(org)
    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="open")
    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="resolved")
    url = f"/api/v1/tickets/{ticket.reference}/rating/"
    response = token_client(org.employee).post(url, {"score": 5, "comment": "Fast"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["score"] == 5
    again = token_client(org.employee).post(url, {"score": 4}, format="json")
    assert again.status_code == 400
    assert token_client(org.it_agent).post(url, {"score": 1}, format="json").status_code == 403
    assert SatisfactionRating.objects.get(ticket=ticket).rating == 5


@pytest.mark.parametrize("score", [0, 6, "five", None, 2.5])
def test_bad_rating_answers_400(org, score):
    ticket = _file(org)
    response = token_client(org.employee).post(
        f"/api/v1/tickets/{ticket.reference}/rating/", {"score": score}, format="json"
    )
    assert response.status_code == 400
    assert "score" in response.json()


# --- Conflict detection ---------------------------------------------------------------------


def test_stale_if_match_answers_412_and_changes_nothing(org):
    ticket = _file(org)
    agent = token_client(org.it_agent)
    url = f"/api/v1/tickets/{ticket.reference}/"
    etag = agent.get(url)["ETag"]
    # Someone else changes the ticket meanwhile.
    token_client(org.it_lead).post(url + "priority/", {"priority": "P2"}, format="json")
    response = agent.patch(url, {"priority": "P1"}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 412
    response = agent.post(
        url + "transition/", {"status": "open"}, format="json", HTTP_IF_MATCH=etag
    )
    assert response.status_code == 412
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.status) == ("P2", "new")


def test_fresh_if_match_writes_and_returns_the_new_etag(org):
    ticket = _file(org)
    agent = token_client(org.it_agent)
    url = f"/api/v1/tickets/{ticket.reference}/"
    etag = agent.get(url)["ETag"]
    response = agent.patch(url, {"priority": "P1"}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200
    assert response["ETag"] != etag
    assert agent.get(url)["ETag"] == response["ETag"]


def test_comment_with_stale_if_match_answers_412(org):
    ticket = _file(org)
    client = token_client(org.employee)
    url = f"/api/v1/tickets/{ticket.reference}/"
    etag = client.get(url)["ETag"]
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Answer")
    response = client.post(url + "comments/", {"body": "x"}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 412


@pytest.mark.parametrize(
    "value",
    ["0918-08-15T15:37:49+20:50", "0001-01-01T00:00:00-12:00", "9999-12-31T23:59:59", "noon"],
)
def test_odd_instants_in_filters_answer_400_or_200_never_500(org, value):
    response = token_client(org.admin).get("/api/v1/tickets/", {"created_before": value})
    assert response.status_code in (200, 400)


def test_created_filters_accept_any_offset(org, monday_10):
    with time_machine.travel(monday_10, tick=False):
        _file(org)
    client = token_client(org.admin)
    # 09:00 UTC is 20:00 at +11:00.
    after = client.get("/api/v1/tickets/", {"created_after": "2026-01-12T20:00:00+11:00"})
    assert after.json()["count"] == 1
    before = client.get("/api/v1/tickets/", {"created_before": "2026-01-12T20:00:00+11:00"})
    assert before.json()["count"] == 0


def test_a_watching_agent_of_another_department_sees_no_internal_notes(org):
    ticket = _file(org)
    services.ticket_set_watcher(ticket=ticket, actor=org.it_agent, user=org.hr_agent)
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Secret", internal=True)
    response = token_client(org.hr_agent).get(f"/api/v1/tickets/{ticket.reference}/comments/")
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize("role", ["it_lead", "admin"])
def test_leads_and_admins_see_internal_notes(org, role):
    ticket = _file(org)
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Secret", internal=True)
    response = token_client(getattr(org, role)).get(f"/api/v1/tickets/{ticket.reference}/comments/")
    assert [c["body"] for c in response.json()["results"]] == ["Secret"]


def test_an_agents_note_with_open_opens_a_new_ticket_once(org):
    ticket = _file(org)
    response = token_client(org.it_agent).post(
        f"/api/v1/tickets/{ticket.reference}/transition/",
        {"status": "open", "note": "Looking into it"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "open"
    assert Event.objects.filter(ticket=ticket, kind="status").count() == 1


def test_a_transition_to_the_current_status_answers_400_even_with_a_note(org):
    ticket = _file(org)
    services.ticket_transition(ticket=ticket, actor=org.it_agent, to_status="open")
    response = token_client(org.it_agent).post(
        f"/api/v1/tickets/{ticket.reference}/transition/",
        {"status": "open", "note": "Still open"},
        format="json",
    )
    assert response.status_code == 400
    assert not Comment.objects.filter(ticket=ticket).exists()  # rolled back with it


def test_a_throttled_client_is_told_when_its_window_ends_and_may_go_on_in_the_next(
    org, monkeypatch
):
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min"})
    client = token_client(org.employee)
    start = datetime(2026, 1, 12, 9, 0, 10, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        codes = [client.get("/api/v1/tickets/").status_code for _ in range(2)]
        refused = client.get("/api/v1/tickets/")
    assert codes == [200, 200] and refused.status_code == 429
    assert refused["Retry-After"] == "50"  # the minute's window ends at 9:01:00
    with time_machine.travel(start + timedelta(seconds=50), tick=False):
        assert client.get("/api/v1/tickets/").status_code == 200
    other = token_client(org.it_agent)  # counted per person
    with time_machine.travel(start, tick=False):
        assert other.get("/api/v1/tickets/").status_code == 200


def test_a_throttle_counter_costs_one_cache_round_trip_and_expires_with_its_window(org):
    from django.core.cache import cache

    from servicedesk.api.throttling import _count

    assert [_count("throttle-test", 60) for _ in range(3)] == [1, 2, 3]
    if hasattr(cache, "incr_with_expiry"):  # Redis: the key lives a window at most
        client = cache._cache.get_client(write=True)
        assert 0 < client.ttl(cache.make_and_validate_key("throttle-test")) <= 60
