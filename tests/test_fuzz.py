"""Bad input (issue 9 §5): hypothesis throws huge strings, control characters, invalid UTF-8,
wrong types, negative and enormous durations and unknown time zones at the ticket and comment
forms, the configuration forms and the API bodies. Every answer is a clear 4xx or a success —
never a 500 — and a refused request leaves nothing behind: no row, no event, no file.

Each example runs in a savepoint rolled back afterwards, so examples do not see each other.
Adding an API body as it appears: add an entry to API_BODIES (method, URL, role, fields).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tickets import services

FUZZ = hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# Everything a request may create; compared before and after a refused request.
WATCHED = [
    "tickets.Ticket",
    "tickets.Comment",
    "tickets.Attachment",
    "tickets.Event",
    "tickets.SatisfactionRating",
    "tickets.Notification",
    "slas.SlaClock",
    "slas.Calendar",
    "slas.WorkingInterval",
    "slas.Holiday",
    "slas.ServiceStandard",
    "slas.StandardVersion",
    "slas.StandardTarget",
    "slas.LadderLevel",
    "departments.Service",
]


def _state() -> dict[str, int]:
    counts = {label: apps.get_model(label).objects.count() for label in WATCHED}
    media = Path(settings.MEDIA_ROOT)
    counts["files"] = sum(1 for p in media.rglob("*") if p.is_file()) if media.exists() else 0
    return counts


# --- Strategies -----------------------------------------------------------------------------

# Any text a browser or client could send (lone surrogates cannot be encoded, so not those).
any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
control = st.text(alphabet=st.characters(max_codepoint=0x1F), min_size=1, max_size=40)
huge = st.builds(
    lambda chunk, n: chunk * n,
    st.sampled_from(["x", "é", "😀", "\u202e", "\x00", "<script>", "\r\n", " "]),
    st.integers(min_value=150, max_value=200_000),
)
nasty_text = st.one_of(any_text, control, huge, st.sampled_from(["", " ", "\x00", "\ufeff"]))
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    nasty_text,
)
json_any = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=8,
)
durations = st.one_of(
    st.sampled_from(
        [
            "-1 00:00:00",
            "-P1D",
            "999999999 00:00:00",
            "P99999999999D",
            "99999999999999999999",
            "1e308",
            "nan",
            "inf",
            "00:00:00",
            "P1000000000Y",
            "-00:00:01",
            "24:00:00",
            "1 day",
            "2h",
            "-3h",
            "999999999h",
            "9" * 40 + "d",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    nasty_text,
)
time_zones = st.one_of(
    st.sampled_from(
        [
            "Mars/Olympus_Mons",
            "../../etc/passwd",
            "/etc/localtime",
            "UTC\x00",
            "Europe/Berlin\n",
            "localtime",
            "posixrules",
            "right/UTC",
            "Etc/GMT+14",
            "Etc/GMT+15",
            "EST5EDT",
            "",
            "Europe/Berlin" * 10,
        ]
    ),
    nasty_text,
)
content_types = st.one_of(
    st.sampled_from(
        ["text/plain", "image/png", "application/pdf", "text/html", "image/svg+xml", "", ";;"]
    ),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
)
filenames = st.one_of(
    any_text,
    st.sampled_from(["../../etc/passwd", "a/b\\c.txt", "CON", ".htaccess", "x" * 400, ""]),
)
uploads = st.lists(
    st.tuples(filenames, st.binary(max_size=3000), content_types), min_size=0, max_size=3
)


def _files(items) -> list[SimpleUploadedFile]:
    files = []
    for name, content, content_type in items:
        # A file name with a line break or quote cannot be put in a multipart header by the
        # test client; the raw-multipart test below covers such bytes.
        clean = "".join(ch for ch in name if ch not in '\r\n"\x00') or "f"
        files.append(SimpleUploadedFile(clean, content, content_type=content_type))
    return files


# --- Running one example --------------------------------------------------------------------


def _run(client: Client, verb: str, url: str, **kwargs):
    """Send one request in a savepoint; return (response, state before, state after)."""
    cache.clear()  # API throttling counts
    with transaction.atomic():
        before = _state()
        response = getattr(client, verb)(url, **kwargs)
        after = _state()
        transaction.set_rollback(True)
    return response, before, after


def _check(response, before, after, *, success: bool, what: str) -> None:
    status = response.status_code
    assert status < 500, f"{what}: {status}"
    assert status != 403 or not success, what
    if success:
        return
    assert 400 <= status < 500 or status == 200, f"{what}: {status}"
    assert after == before, (
        f"{what}: refused ({status}) but something was saved: {before} → {after}"
    )


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Browser forms --------------------------------------------------------------------------


@pytest.fixture
def ticket(org):
    return services.ticket_create(requester=org.employee, service=org.service, title="Mouse")


@FUZZ
@given(
    title=nasty_text,
    description=nasty_text,
    priority=st.one_of(st.sampled_from(["", "P1", "P4"]), nasty_text),
    service=st.one_of(st.just("VALID"), st.integers(), nasty_text),
    files=uploads,
)
def test_ticket_form_never_fails_and_never_half_saves(
    org, title, description, priority, service, files
):
    client = _login(org.employee)
    data = {
        "service": org.service.pk if service == "VALID" else service,
        "title": title,
        "description": description,
        "priority": priority,
        "attachments": _files(files),
    }
    response, before, after = _run(client, "post", reverse("ticket_new"), data=data)
    success = response.status_code == 302
    _check(response, before, after, success=success, what="ticket form")
    if success:
        assert after["tickets.Ticket"] == before["tickets.Ticket"] + 1
        added = after["tickets.Attachment"] - before["tickets.Attachment"]
        assert after["files"] - before["files"] == added


@FUZZ
@given(
    body=nasty_text,
    visibility=st.one_of(st.sampled_from(["public", "internal", ""]), nasty_text),
    files=uploads,
    who=st.sampled_from(["employee", "it_agent", "outsider"]),
)
def test_comment_form_never_fails_and_never_half_saves(org, ticket, body, visibility, files, who):
    client = _login(getattr(org, who))
    data = {"body": body, "visibility": visibility, "attachments": _files(files)}
    url = reverse("ticket_comment", args=[ticket.reference])
    response, before, after = _run(client, "post", url, data=data)
    success = response.status_code == 302
    _check(response, before, after, success=success, what=f"comment form as {who}")
    if who == "outsider":
        assert response.status_code == 404
    if success:
        assert after["tickets.Comment"] == before["tickets.Comment"] + 1


def _raw_multipart(fields: list[tuple[bytes, bytes | None, bytes]]) -> bytes:
    """A multipart body built byte by byte: (field name, file name or None, content)."""
    boundary = b"----fuzzboundary"
    parts = []
    for name, filename, content in fields:
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
            disposition += b"\r\nContent-Type: text/plain"
        parts.append(b"--" + boundary + b"\r\n" + disposition + b"\r\n\r\n" + content + b"\r\n")
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


@FUZZ
@given(
    title=st.binary(max_size=300),
    description=st.binary(max_size=300),
    filename=st.binary(max_size=120),
    content=st.binary(max_size=2000),
)
def test_invalid_utf8_in_fields_and_uploads_is_a_clear_answer(
    org, title, description, filename, content
):
    client = _login(org.employee)
    body = _raw_multipart(
        [
            (b"service", None, str(org.service.pk).encode()),
            (b"title", None, title),
            (b"description", None, description),
            (b"attachments", filename.replace(b'"', b"").replace(b"\r", b""), content),
        ]
    )
    # A content type other than the client's own multipart one: the bytes go out untouched.
    response, before, after = _run(
        client,
        "post",
        reverse("ticket_new"),
        data=body,
        content_type="multipart/form-data; boundary=----fuzzboundary",
    )
    success = response.status_code == 302
    _check(response, before, after, success=success, what="raw multipart")


def test_upload_of_invalid_utf8_content_is_stored_byte_for_byte(org):
    client = _login(org.employee)
    body = _raw_multipart(
        [
            (b"service", None, str(org.service.pk).encode()),
            (b"title", None, b"Broken \xff title"),
            (b"attachments", "résumé ☃.txt".encode(), b"\xff\xfe\x00 not utf-8"),
        ]
    )
    response = client.post(
        reverse("ticket_new"),
        data=body,
        content_type="multipart/form-data; boundary=----fuzzboundary",
    )
    assert response.status_code == 302
    ticket = org.service.tickets.get()
    attachment = ticket.attachments.get()
    assert attachment.filename == "résumé ☃.txt"
    assert attachment.file.read() == b"\xff\xfe\x00 not utf-8"


def test_request_larger_than_the_upload_limit_is_refused(org):
    client = _login(org.employee)
    data = {"service": org.service.pk, "title": "big", "description": "x" * (6 * 1024 * 1024)}
    response, before, after = _run(client, "post", reverse("ticket_new"), data=data)
    assert response.status_code == 400
    assert after == before


# --- Configuration forms (durations and time zones) -----------------------------------------


@FUZZ
@given(
    timezone=time_zones,
    day=st.one_of(
        st.sampled_from(
            ["09:00-17:00", "17:00-09:00", "25:00-26:00", "09:00-", "-", "24:00-24:00"]
        ),
        nasty_text,
    ),
    holidays=st.one_of(st.sampled_from(["2026-02-30", "0000-01-01", "9999-12-31 x"]), nasty_text),
    country=st.one_of(st.sampled_from(["DE", "XX", ""]), nasty_text),
)
def test_calendar_form_never_fails(org, timezone, day, holidays, country):
    client = _login(org.admin)
    data = {
        "name": "Fuzz calendar",
        "timezone": timezone,
        "day_0": day,
        "day_1": "09:00-17:00",
        "holidays": holidays,
        "holiday_country": country,
    }
    response, before, after = _run(client, "post", reverse("config:calendar_new"), data=data)
    success = response.status_code == 302
    _check(response, before, after, success=success, what="calendar form")


@FUZZ
@given(
    first=durations,
    resolution=durations,
    threshold=st.one_of(st.sampled_from(["", "-1", "0", "1e9", "NaN", "75.5"]), nasty_text),
    days=st.one_of(st.integers(min_value=-(2**40), max_value=2**40), nasty_text),
)
def test_standard_form_never_fails(org, first, resolution, threshold, days):
    client = _login(org.admin)
    data = {
        "name": "Fuzz standard",
        "calendar": org.standard.current_version.calendar_id,
        "days": days,
        "P1_first_response": first,
        "P1_resolution": resolution,
        "ladder-TOTAL_FORMS": "1",
        "ladder-INITIAL_FORMS": "0",
        "ladder-0-metric": "resolution",
        "ladder-0-threshold": threshold,
    }
    response, before, after = _run(client, "post", reverse("config:standard_new"), data=data)
    success = response.status_code == 302
    _check(response, before, after, success=success, what="standard form")


# --- API bodies -----------------------------------------------------------------------------


def _valid_or(valid, strategy=json_any):
    return st.one_of(st.just(valid), strategy)


# name → (method, url (callable of org and ticket), role, {field: strategy factory})
API_BODIES = {
    "ticket create": (
        "post",
        lambda org, t: "/api/v1/tickets/",
        "employee",
        lambda org: {
            "service": _valid_or(org.service.pk),
            "title": _valid_or("Printer", nasty_text),
            "description": nasty_text,
            "priority": _valid_or("P2"),
        },
    ),
    "ticket patch": (
        "patch",
        lambda org, t: f"/api/v1/tickets/{t.reference}/",
        "it_agent",
        lambda org: {
            "priority": _valid_or("P1"),
            "service": _valid_or(org.service.pk),
            "assignee": _valid_or("itagent"),
        },
    ),
    "ticket transition": (
        "post",
        lambda org, t: f"/api/v1/tickets/{t.reference}/transition/",
        "it_agent",
        lambda org: {
            "status": _valid_or("open"),
            "note": nasty_text,
            "internal": json_any,
        },
    ),
    "ticket assign": (
        "post",
        lambda org, t: f"/api/v1/tickets/{t.reference}/assign/",
        "it_agent",
        lambda org: {"assignee": _valid_or("itagent")},
    ),
    "ticket priority": (
        "post",
        lambda org, t: f"/api/v1/tickets/{t.reference}/priority/",
        "it_agent",
        lambda org: {"priority": _valid_or("P3")},
    ),
    "ticket comment": (
        "post",
        lambda org, t: f"/api/v1/tickets/{t.reference}/comments/",
        "employee",
        lambda org: {"body": _valid_or("Thanks", nasty_text), "internal": json_any},
    ),
    "ticket rating": (
        "post",
        lambda org, t: f"/api/v1/tickets/{t.reference}/rating/",
        "employee",
        lambda org: {"score": _valid_or(5), "comment": nasty_text},
    ),
    "service create": (
        "post",
        lambda org, t: "/api/v1/services/",
        "admin",
        lambda org: {
            "name": _valid_or("Fuzz service", nasty_text),
            "description": nasty_text,
            "department": _valid_or("it"),
            "standard": _valid_or(org.standard.pk),
            "default_priority": _valid_or("P2"),
            "confidential": json_any,
        },
    ),
    "calendar create": (
        "post",
        lambda org, t: "/api/v1/calendars/",
        "admin",
        lambda org: {
            "name": _valid_or("Fuzz calendar", nasty_text),
            "timezone": _valid_or("Europe/Berlin", time_zones),
            "always_open": json_any,
            "week": _valid_or(
                {"0": [["09:00", "17:00"]]},
                st.dictionaries(
                    st.one_of(st.sampled_from(["0", "6", "7", "-1"]), any_text),
                    st.lists(st.lists(_valid_or("09:00", nasty_text), max_size=3), max_size=3),
                    max_size=3,
                ),
            ),
            "holidays": st.lists(_valid_or("2026-12-24", nasty_text), max_size=3),
            "holiday_preset": _valid_or({"country": "DE", "subdivision": "BY"}),
        },
    ),
    "standard create": (
        "post",
        lambda org, t: "/api/v1/standards/",
        "admin",
        lambda org: {
            "name": _valid_or("Fuzz standard", nasty_text),
            "department": _valid_or("it"),
            "calendar": _valid_or(org.standard.current_version.calendar_id),
            "targets": st.lists(
                st.fixed_dictionaries(
                    {
                        "priority": _valid_or("P1"),
                        "first_response": durations,
                        "resolution": durations,
                    }
                ),
                max_size=2,
            ),
            "ladder": st.lists(
                st.fixed_dictionaries(
                    {
                        "metric": _valid_or("resolution"),
                        "threshold": _valid_or("0.75", durations),
                        "actions": _valid_or(["notify_assignee"]),
                    }
                ),
                max_size=2,
            ),
        },
    ),
}


@pytest.mark.parametrize("name", sorted(API_BODIES))
@FUZZ
@given(data=st.data())
def test_api_bodies_never_fail_and_never_half_save(org, ticket, name, data):
    method, url, role, fields = API_BODIES[name]
    strategies = fields(org)
    body = data.draw(
        st.one_of(
            st.fixed_dictionaries({}, optional=strategies),
            json_any,  # not even an object
        ),
        label="body",
    )
    client = _login(getattr(org, role))
    response, before, after = _run(
        client, method, url(org, ticket), data=json.dumps(body), content_type="application/json"
    )
    success = 200 <= response.status_code < 300
    _check(response, before, after, success=success, what=f"{name} {response.content[:200]!r}")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"title": "\xff\xfe broken"}',
        b"\xef\xbb\xbf{}",
        b'{"title": "a"',
        b"[" * 10_000 + b"]" * 10_000,
        b'{"title": "\\ud800"}',
        b"NaN",
        b'{"service": 1e999}',
    ],
)
def test_api_refuses_malformed_json_with_400(org, raw):
    client = _login(org.employee)
    response, before, after = _run(
        client, "post", "/api/v1/tickets/", data=raw, content_type="application/json"
    )
    assert response.status_code == 400
    assert after == before


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "from",
                "to",
                "supplier_department",
                "customer_department",
                "service",
                "priority",
                "status",
                "created_after",
                "created_before",
                "ordering",
                "page",
                "page_size",
                "assignee",
                "search",
            ]
        ),
        st.one_of(
            st.sampled_from(
                ["0001-01-01T00:00:00-12:00", "9999-12-31T23:59:59+14:00", "-1", "10**9"]
            ),
            st.integers(min_value=-(2**70), max_value=2**70).map(str),
            any_text.filter(lambda s: "\x00" not in s),
        ),
        max_size=4,
    ),
    url=st.sampled_from(["/api/v1/tickets/", "/api/v1/metrics/sla/", "/api/v1/standards/"]),
)
def test_api_query_parameters_never_fail(org, params, url):
    client = _login(org.it_lead)
    response, _before, _after = _run(client, "get", url, data=params)
    assert response.status_code < 500, (url, params)
