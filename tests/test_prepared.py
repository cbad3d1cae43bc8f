"""servicedesk.prepared.PreparedGet answers exactly what queryset.get() answers."""

from __future__ import annotations

import contextlib

import pytest
from rest_framework.authtoken.models import Token

from departments.models import Service
from servicedesk.prepared import PreparedGet, PreparedQuery, prefetched
from slas.selectors import SERVICE_FILING_RELATED
from tests import factories
from tickets import services


def _graph(obj, depth=0) -> dict:
    """Field values of `obj` and of every related object select_related put in its cache."""
    values = {k: v for k, v in obj.__dict__.items() if k != "_state"}
    values["_db"] = obj._state.db
    values["_adding"] = obj._state.adding
    for name, related in obj._state.fields_cache.items():
        values[f"->{name}"] = None if related is None else _graph(related, depth + 1)
    return values


def _outcome(call):
    try:
        return ("found", _graph(call()))
    except Exception as error:  # noqa: BLE001 - the exception type is what is compared
        return (type(error).__name__,)


def test_service_with_its_standard_version_and_calendar(org):
    own = factories.ServiceFactory(department=org.it, name="Own standard", standard=org.standard)
    queryset = Service.objects.select_related(*SERVICE_FILING_RELATED)
    prepared = PreparedGet(queryset, "pk")
    for service in (org.service, own, org.hr_service):
        for _ in range(2):  # compiled on the first call, reused on the second
            assert _outcome(lambda s=service: prepared.get(s.pk)) == _outcome(
                lambda s=service: queryset.get(pk=s.pk)
            )
    found = prepared.get(own.pk)
    assert found.standard.current_version.calendar.pk == org.standard.current_version.calendar_id


@pytest.mark.parametrize("value", ["IT", None, 2**70, -1, 987654321, 1.5, "", "x"])
def test_service_lookup_errors_are_django_s(org, value):
    queryset = Service.objects.select_related(*SERVICE_FILING_RELATED)
    prepared = PreparedGet(queryset, "pk")
    prepared.get(org.service.pk)  # compiled
    assert _outcome(lambda: prepared.get(value)) == _outcome(lambda: queryset.get(pk=value))


def test_first_call_out_of_range_then_a_real_one(org):
    queryset = Service.objects.select_related(*SERVICE_FILING_RELATED)
    prepared = PreparedGet(queryset, "pk")
    with pytest.raises(Service.DoesNotExist):
        prepared.get(2**70)
    assert prepared.get(org.service.pk) == org.service


def test_token_with_user_and_home_department(org):
    token = Token.objects.create(user=org.employee)
    queryset = Token.objects.select_related("user__home_department")
    prepared = PreparedGet(queryset, "key")
    for key in (token.key, token.key, "no-such-token", "", None):
        assert _outcome(lambda k=key: prepared.get(k)) == _outcome(
            lambda k=key: queryset.get(key=k)
        )
    assert prepared.get(token.key).user.home_department.slug == "finance"


def test_only_plain_querysets():
    with pytest.raises(ValueError):
        PreparedGet(Service.objects.filter(active=True), "pk")


# --- PreparedQuery: many rows, compiled once ------------------------------------------------


def _ticket_with_conversation(org):
    from tickets import services

    ticket = services.ticket_create(requester=org.employee, service=org.service, title="Slow")
    services.ticket_comment(ticket=ticket, author=org.employee, body="Public")
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Note", internal=True)
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="Reply")
    return ticket


def test_list_answers_the_querysets_rows_with_their_related_objects(org):
    from tickets.models import Comment

    ticket = _ticket_with_conversation(org)
    other = _ticket_with_conversation(org)
    queryset = Comment.objects.select_related("author__home_department").filter(internal=False)
    prepared = PreparedQuery(queryset, "ticket_id")
    for current in (ticket, other, ticket):  # compiled on the first call, reused after
        expected = list(queryset.filter(ticket_id=current.pk))
        assert [_graph(c) for c in prepared.list(current.pk)] == [_graph(c) for c in expected]
    assert [c.body for c in prepared.list(ticket.pk)] == ["Public", "Reply"]


def test_list_takes_a_lookup_across_a_join_and_several_values(org):
    from departments.models import User

    queryset = User.objects.order_by("username")
    prepared = PreparedQuery(queryset, "memberships__department_id", "home_department_id")
    pairs = [(org.it, org.it), (org.it, org.exec), (org.hr, org.hr), (org.finance, org.finance)]
    for membership, home in pairs:
        expected = list(
            queryset.filter(memberships__department_id=membership.pk, home_department_id=home.pk)
        )
        assert prepared.list(membership.pk, home.pk) == expected
    assert {u.username for u in prepared.list(org.it.pk, org.it.pk)} == {"itlead", "itagent"}


@pytest.mark.parametrize("value", [None, "3", 2**70, -1])
def test_list_answers_odd_values_as_django_does(org, value):
    from tickets.models import Comment

    _ticket_with_conversation(org)
    queryset = Comment.objects.all()
    prepared = PreparedQuery(queryset, "ticket_id")

    def outcome(call):
        try:
            return ("rows", [c.pk for c in call()])
        except Exception as error:  # noqa: BLE001 - the exception type is what is compared
            return (type(error).__name__,)

    assert outcome(lambda: prepared.list(value)) == outcome(
        lambda: list(queryset.filter(ticket_id=value))
    )


def test_list_refuses_querysets_it_cannot_replay():
    from django.db.models import Count

    with pytest.raises(ValueError):
        PreparedQuery(Service.objects.all()[:5], "department_id")
    with pytest.raises(ValueError):
        PreparedQuery(Service.objects.annotate(n=Count("tickets")), "department_id")


def test_prefetched_rows_answer_all_without_a_query(org, django_assert_num_queries):
    ticket = _ticket_with_conversation(org)
    comments = list(ticket.comments.all())
    prefetched(ticket, "comments", comments[:1])
    with django_assert_num_queries(0):
        assert list(ticket.comments.all()) == comments[:1]


def test_a_filter_on_prefetched_rows_still_reads_only_the_instances_own(org):
    ticket = _ticket_with_conversation(org)
    _ticket_with_conversation(org)
    prefetched(ticket, "comments", [])
    assert list(ticket.comments.filter(internal=False)) == list(
        ticket.comments.model.objects.filter(ticket=ticket, internal=False)
    )


# --- Server-side prepared statements (PostgreSQL) ---------------------------------------------


def _prepared_on_server() -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


def test_a_prepared_read_is_planned_once_then_executed_by_name(org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tickets.models import Comment

    ticket = _ticket_with_conversation(org)
    prepared = PreparedQuery(Comment.objects.order_by("pk"), "ticket_id")
    expected = list(Comment.objects.filter(ticket_id=ticket.pk).order_by("pk"))
    with CaptureQueriesContext(connection) as first:
        assert prepared.list(ticket.pk) == expected
    with CaptureQueriesContext(connection) as second:
        assert prepared.list(ticket.pk) == expected
    assert first.captured_queries[0]["sql"].startswith("PREPARE servicedesk_")
    assert second.captured_queries[0]["sql"].startswith("EXECUTE servicedesk_")
    assert any('"tickets_comment"."ticket_id" = $1' in sql for sql in _prepared_on_server())


def test_prepared_reads_run_as_plain_sql_when_server_statements_are_off(org, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tickets.models import Comment

    settings.SERVER_PREPARED_STATEMENTS = False
    ticket = _ticket_with_conversation(org)
    prepared = PreparedQuery(Comment.objects.order_by("pk"), "ticket_id")
    expected = list(Comment.objects.filter(ticket_id=ticket.pk).order_by("pk"))
    with CaptureQueriesContext(connection) as captured:
        assert prepared.list(ticket.pk) == expected
    assert captured.captured_queries[0]["sql"].startswith("SELECT")


@pytest.mark.django_db
def test_a_statement_keeps_a_literal_percent_and_numbers_its_parameters():
    from django.db import connection

    from servicedesk.prepared import ServerStatement

    statement = ServerStatement("SELECT %s::int + %s::int, '100%%', %s::text")
    assert statement.server_sql == "SELECT $1::int + $2::int, '100%%', $3::text"
    for _ in range(2):  # prepared, then executed by name
        with connection.cursor() as cursor:
            statement.execute(cursor, connection, [2, 3, "50%"])
            assert cursor.fetchone() == (5, "100%", "50%")


def _run(statement, value):
    from django.db import connection

    with connection.cursor() as cursor:
        statement.execute(cursor, connection, [value])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_a_first_run_in_an_aborted_transaction_leaves_nothing_behind():
    from django.db import DatabaseError, connection, transaction

    from servicedesk.prepared import ServerStatement

    statement = ServerStatement("SELECT %s::int * 2")
    with transaction.atomic(), connection.cursor() as cursor:
        with contextlib.suppress(DatabaseError):
            cursor.execute("SELECT 1/0")
        with pytest.raises(DatabaseError):
            statement.execute(cursor, connection, [21])
        transaction.set_rollback(True)
    assert _run(statement, 21) == 42
    assert _run(statement, 4) == 8


@pytest.mark.django_db
def test_a_first_run_whose_execute_fails_prepares_again_under_another_name():
    from django.db import DatabaseError, transaction

    from servicedesk.prepared import ServerStatement

    statement = ServerStatement("SELECT 10 / %s::int")
    # PREPARE succeeds (and outlives the rollback), then EXECUTE divides by zero.
    with pytest.raises(DatabaseError), transaction.atomic():
        _run(statement, 0)
    assert _run(statement, 5) == 2
    assert _run(statement, 2) == 5


@pytest.mark.django_db
def test_a_statement_whose_execute_by_name_fails_is_prepared_again():
    from django.db import DatabaseError, connection, transaction

    from servicedesk.prepared import ServerStatement

    statement = ServerStatement("SELECT %s::int + 1")
    assert _run(statement, 1) == 2
    name = connection._servicedesk_prepared[1][statement.id]
    with connection.cursor() as cursor:
        cursor.execute(f"DEALLOCATE {name}")  # as if a migration had made it unusable
    with pytest.raises(DatabaseError), transaction.atomic():
        _run(statement, 1)
    assert _run(statement, 2) == 3


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_prepares_its_statements_again(org):
    from django.db import connection

    prepared = PreparedGet(Service.objects.select_related(*SERVICE_FILING_RELATED), "pk")
    assert prepared.get(org.service.pk).name == org.service.name
    connection.close()
    assert not any("departments_service" in sql for sql in _prepared_on_server())
    assert prepared.get(org.service.pk).name == org.service.name
    assert any("departments_service" in sql for sql in _prepared_on_server())


def test_rows_in_order_follow_the_ids_and_leave_out_ids_without_a_row(org):
    from servicedesk.prepared import PreparedByIds
    from tickets.models import Comment

    ticket = _ticket_with_conversation(org)
    ids = list(Comment.objects.filter(ticket=ticket).order_by("-pk").values_list("pk", flat=True))
    reader = PreparedByIds(Comment.objects.all(), "pk", ("pk", "body"))
    rows = reader.rows_in_order([ids[1], 10**9, ids[0], ids[2]])
    assert [row.pk for row in rows] == [ids[1], ids[0], ids[2]]
    assert reader.rows_in_order([]) == []
    with pytest.raises(ValueError, match="first column"):
        PreparedByIds(Comment.objects.all(), "pk", ("body", "pk")).rows_in_order(ids)


@pytest.mark.parametrize("pk", ["own", "own-as-text", 987654321, 2**70, -1, None, "x"])
def test_user_get_by_pk_answers_what_the_queryset_answers(org, pk):
    from django.db.models import QuerySet

    from departments.models import User

    value = {"own": org.it_agent.pk, "own-as-text": str(org.it_agent.pk)}.get(pk, pk)
    assert _outcome(lambda: User.objects.get(pk=value)) == _outcome(
        lambda: QuerySet(User).get(pk=value)
    )


def test_a_signed_in_request_reads_its_person_by_a_prepared_statement(org, client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(org.it_agent)
    client.get("/catalogue/")  # the statement is compiled and prepared
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/catalogue/")
    assert response.wsgi_request.user == org.it_agent
    compiled_each_time = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith('SELECT "departments_user"')
    ]
    # SQLite (the embedded mode) runs the compiled SQL itself; PostgreSQL EXECUTEs it.
    assert compiled_each_time == [] or connection.vendor != "postgresql"


def _shape_build(calls):
    """A list of tickets by requester, filed after an instant, as Django compiles it."""
    from tickets.models import Ticket

    def build(values):
        calls.append(values)
        requester, after = values
        queryset = Ticket.objects.filter(requester_id=requester, created_at__gt=after)
        return queryset.values_list("pk").query.sql_with_params()

    return build


def test_a_shape_is_compiled_twice_once_and_then_only_takes_new_values(org):
    from datetime import UTC, datetime

    from servicedesk.prepared import PreparedShapes

    shapes, calls = PreparedShapes(), []
    first = (org.employee.pk, datetime(2026, 1, 1, tzinfo=UTC))
    statement, params = shapes.statement("by requester", first, _shape_build(calls))
    assert len(calls) == 2 and first not in calls  # two probe compiles, not the values
    assert params == list(_shape_build([])(first)[1])  # the values where Django puts them
    second = (org.it_agent.pk, datetime(2026, 2, 1, tzinfo=UTC))
    again, params = shapes.statement("by requester", second, _shape_build(calls))
    assert len(calls) == 2 and again is statement
    assert params == list(_shape_build([])(second)[1])


def test_a_shape_is_not_learnt_from_values_it_cannot_probe_or_a_constant_instant(org):
    from django.utils import timezone

    from servicedesk.prepared import PreparedShapes
    from tickets.models import Ticket

    shapes = PreparedShapes()
    assert shapes.statement("text", ("IT-1", 3), lambda values: ("", [])) is None
    assert shapes.statement("naive", (timezone.now().replace(tzinfo=None),), None) is None

    def with_now(values):
        # The same instant in both compiles (a frozen clock): it must not be kept.
        return (
            Ticket.objects.filter(requester_id=values[0], created_at__lt=now)
            .values_list("pk")
            .query.sql_with_params()
        )

    now = timezone.now()
    assert shapes.statement("now", (org.employee.pk,), with_now) is None


def test_at_most_size_shapes_are_kept(org):
    from servicedesk.prepared import PreparedShapes

    shapes = PreparedShapes(size=2)
    for key in ("a", "b", "c"):
        shapes.statement(key, (1,), lambda values: ("SELECT %s", [values[0]]))
    assert [key for key, _using, _kinds in shapes._shapes] == ["b", "c"]


def test_a_shape_whose_sql_does_not_carry_a_value_is_not_learnt(org):
    from servicedesk.prepared import PreparedShapes
    from tickets.models import Ticket

    def ignores_the_second(values):
        return (
            Ticket.objects.filter(requester_id=values[0]).values_list("pk").query.sql_with_params()
        )

    assert PreparedShapes().statement("one of two", (1, 2), ignores_the_second) is None


def test_a_connection_starts_afresh_past_its_bound_of_prepared_statements(org, monkeypatch):
    from django.db import connection

    from servicedesk import prepared

    if connection.vendor != "postgresql":
        return  # SQLite runs the SQL as it is: nothing is prepared
    monkeypatch.setattr(prepared, "MAX_PREPARED_PER_CONNECTION", 2)
    statements = [prepared.ServerStatement(f"SELECT %s + {n}") for n in range(3)]
    with connection.cursor() as cursor:
        for n, statement in enumerate(statements):
            statement.execute(cursor, connection, [10])
            assert cursor.fetchone() == (10 + n,)
        kept = connection._servicedesk_prepared[1]
        assert list(kept) == [statements[2].id]  # the first two were deallocated
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone() == (1,)
        statements[0].execute(cursor, connection, [5])  # prepared again under a new name
        assert cursor.fetchone() == (5,)


def test_a_shapes_constants_are_written_into_its_sql_and_only_its_values_are_parameters(org):
    """So that a generic plan can use a partial index whose condition names them (the queue's
    active statuses)."""
    from django.db import connection

    from servicedesk.prepared import PreparedShapes
    from tickets.models import Ticket

    def build(values):
        queryset = Ticket.objects.filter(
            requester_id=values[0], status__in=["new", "open"], title__contains="100%"
        )
        return queryset.values_list("pk").query.sql_with_params()

    statement, params = PreparedShapes().statement("constants", (org.employee.pk,), build)
    if connection.vendor == "postgresql":
        assert params == [org.employee.pk]
        assert "IN ('new', 'open')" in statement.sql and "'%%100\\%%%%'" in statement.sql
    mine = services.ticket_create(requester=org.employee, service=org.service, title="100% off")
    with connection.cursor() as cursor:
        statement.execute(cursor, connection, params)
        assert cursor.fetchall() == [(mine.pk,)]


def _stored(obj) -> dict:
    """Every column of `obj`'s row as the database has it."""
    fresh = type(obj).objects.get(pk=obj.pk)
    return {f.attname: getattr(fresh, f.attname) for f in type(obj)._meta.concrete_fields}


def _held(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}


def test_a_ticket_and_its_event_are_inserted_by_a_prepared_statement_as_django_would(org):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tickets.models import Event

    services.ticket_create(requester=org.employee, service=org.service, title="First")
    with CaptureQueriesContext(connection) as queries:
        ticket = services.ticket_create(
            requester=org.employee,
            service=org.service,
            title="Second, with 100% of the <detail>",
            description="",
            priority="P3",
        )
    event = Event.objects.get(ticket=ticket)
    # The rows are what the instances hold, every column (the returned id included).
    assert _stored(ticket) == _held(ticket)
    assert _stored(event)["after"] == {
        "status": "new",
        "priority": "P3",
        "service": "Laptop problem",
    }
    inserts = [q["sql"] for q in queries.captured_queries if "INSERT INTO" in q["sql"]]
    if connection.vendor == "postgresql":
        # Only the clocks' bulk insert and the roll-ups' upsert are compiled for this filing.
        assert not any('INSERT INTO "tickets_ticket"' in sql for sql in inserts)
        assert not any('INSERT INTO "tickets_event"' in sql for sql in inserts)


def test_an_insert_with_an_expression_or_a_clash_is_djangos(org):
    from django.db import IntegrityError, transaction
    from django.db.models.functions import Now

    from tickets.models import Event

    first = services.ticket_create(requester=org.employee, service=org.service, title="One")
    event = Event.objects.create(
        ticket=first, actor=org.employee, kind=Event.Kind.COMMENT, created_at=Now()
    )
    assert Event.objects.get(pk=event.pk).created_at is not None
    second = services.ticket_create(requester=org.employee, service=org.service, title="Two")
    second.pk, second.reference = None, first.reference  # the same reference again
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()
