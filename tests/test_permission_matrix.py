"""Permission matrix (issue 9 §1): every URL route of the project × every role → the answer.

HOW IT WORKS
  The routes come from the URL resolver (django.urls.get_resolver, walked recursively: pages,
  DRF router routes with their format-suffix twins, the admin). Each route is looked up in
  ROUTES (or, for the admin, ADMIN_MODELS / ADMIN_SITE_ROUTES) by its key:
      * the route name with its namespace ("ticket_detail", "ticket-list", "admin:index"), or
      * for an unnamed route, its pattern ("admin/departments/user/<path:object_id>/").
  A route missing from the table FAILS `test_every_route_has_a_row`, so a new page is never
  left out; a row whose route is gone fails `test_every_row_has_a_route`.

  Each request runs on a fresh client, logged in as the role, inside a savepoint that is rolled
  back afterwards, so no request sees another's changes. Bodies are empty unless the row gives
  `data` (a dict, or a callable taking the World). DRF throttling state is cleared per request.

ROLES (columns, always in this order), on the org of tests/factories.build_org():
      anon      not signed in
      employee  org.employee (Finance) – the requester of the ticket in the URLs
      agent     org.it_agent – agent of IT, the ticket's supplier department
      lead      org.it_lead  – lead of IT (IT does not let leads configure standards)
      admin     org.admin    – superuser
      other     org.outsider – a user of an unrelated department (HR), no membership

OUTCOMES
      OK     allowed: 2xx, or a redirect that is not to a sign-in page; for POST/PUT/PATCH/
             DELETE also 400 (the request reached the handler and the empty input was refused)
      LOGIN  302 to the sign-in page (settings.LOGIN_URL)
      ALOGIN 302 to the admin sign-in page
      UNAUTH 401 (API: not authenticated)
      DENIED 403 (may see, may not do; never for something the user may not see)
      NF     404 (may not see: SPEC §6 says 404, not 403)
      NA     405 (method not allowed)

ADDING A ROW
  New page `reports:dashboard` at reports/<slug:slug>/ for leads of the department:

      "reports:dashboard": row(
          kwargs={"slug": "it"},
          #        anon   employee agent lead admin other
          get=   (LOGIN, NF,      NF,   OK,  OK,   NF),
          post=  (LOGIN, NA,      NA,   NA,  NA,   NA),
      ),

  `kwargs` may be omitted when the URL's parameters are the usual ones (see DEFAULT_KWARGS:
  reference → the ticket, slug → IT, notification_id → the employee's notification, format →
  json); `pk` must be given (a callable taking the World, e.g. lambda w: w.org.service.pk).
  Give at least GET and POST; add patch/put/delete where the route takes them.
  A new ModelAdmin: add one line to ADMIN_MODELS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from tests import factories
from tickets import services as ticket_services
from tickets.models import Notification

ROLES = ("anon", "employee", "agent", "lead", "admin", "other")
ROLE_USERS = {
    "employee": "employee",
    "agent": "it_agent",
    "lead": "it_lead",
    "admin": "admin",
    "other": "outsider",
}

OK, LOGIN, ALOGIN, UNAUTH, DENIED, NF, NA = "OK", "LOGIN", "ALOGIN", "UNAUTH", "403", "404", "405"
METHODS = ("get", "post", "put", "patch", "delete")


# --- The routes of the project ----------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    key: str  # name with namespace, or the pattern of an unnamed route
    name: str | None
    pattern: str
    params: tuple[str, ...]  # URL parameters the route takes

    @property
    def has_format(self) -> bool:
        return "format" in self.params


def _params(pattern) -> tuple[str, ...]:
    regex = pattern.regex
    return tuple(regex.groupindex)


def walk(patterns=None, prefix: str = "", namespace: str | None = None, params=()):
    """Every route of the project, recursively (includes, namespaces, router routes)."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        here = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from walk(entry.url_patterns, here, ns, params + _params(entry.pattern))
        elif isinstance(entry, URLPattern):
            name = entry.name and (f"{namespace}:{entry.name}" if namespace else entry.name)
            yield Route(
                key=name or here, name=name, pattern=here, params=params + _params(entry.pattern)
            )


ALL_ROUTES = list(walk())


# --- The world the URLs point into --------------------------------------------------------------


@dataclass
class World:
    org: Any
    ticket: Any
    public_file: Any
    internal_file: Any
    notification: Any
    calendar: Any
    media_root: Any = None
    # Objects a row makes lazily (inside the test's savepoint); emptied before every test.
    extra: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once for the module inside a transaction rolled back at its end; every test
    then runs in its own savepoint on top (the `db` fixture), and every request in another."""
    media_root = tmp_path_factory.mktemp("matrix-media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media_root):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            built = _build_world()
            built.media_root = media_root
            yield built
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _build_world() -> World:
    org = factories.build_org()
    ticket = ticket_services.ticket_create(
        requester=org.employee,
        service=org.service,
        title="Laptop does not start",
        attachments=[SimpleUploadedFile("photo.png", b"\x89PNG...", content_type="image/png")],
    )
    note = ticket_services.ticket_comment(
        ticket=ticket,
        author=org.it_agent,
        body="Vendor quote",
        internal=True,
        attachments=[SimpleUploadedFile("quote.pdf", b"%PDF-1.4", content_type="application/pdf")],
    )
    notification = Notification.objects.create(
        recipient=org.employee,
        ticket=ticket,
        message="Your request was answered",
        dedupe_key="matrix",
        created_at=timezone.now(),
    )
    # One row for every admin model that has none yet, so object pages point at real rows.
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from rest_framework.authtoken.models import Token

    Token.objects.create(user=org.employee)
    attempt = {"user_agent": "matrix", "ip_address": "127.0.0.9", "username": "employee"}
    AccessAttempt.objects.create(failures_since_start=1, **attempt)
    AccessLog.objects.create(**attempt)
    AccessFailureLog.objects.create(locked_out=False, **attempt)
    return World(
        org=org,
        ticket=ticket,
        public_file=ticket.attachments.get(comment=None),
        internal_file=note.attachments.get(),
        notification=notification,
        calendar=org.standard.current_version.calendar,
    )


DEFAULT_KWARGS: dict[str, Callable[[World], Any]] = {
    "reference": lambda w: w.ticket.reference,
    "slug": lambda w: w.org.it.slug,
    "notification_id": lambda w: w.notification.pk,
    "format": lambda w: "json",
}


# --- The table ----------------------------------------------------------------------------------


@dataclass
class Row:
    expect: dict[str, tuple[str, ...]]
    kwargs: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    # For routes that cannot be reversed (unnamed, regex catch-alls): a path or a callable.
    path: str | Callable[[World], str] | None = None


def row(*, kwargs=None, data=None, path=None, **methods) -> Row:
    for method, outcomes in methods.items():
        assert method in METHODS, method
        assert len(outcomes) == len(ROLES), (method, outcomes)
    return Row(expect=methods, kwargs=kwargs or {}, data=data or {}, path=path)


# Frequent lines, named after who is allowed.
#                  anon    employee agent lead admin other
SIGNED_IN = (LOGIN, OK, OK, OK, OK, OK)
TICKET_VIEWERS = (LOGIN, OK, OK, OK, OK, NF)  # requester, supplier department, admin
# Supplier department and admin; the requester sees the ticket, so it may not do: 403.
TICKET_WORKERS = (LOGIN, DENIED, OK, OK, OK, NF)
AGENTS = (LOGIN, NF, OK, OK, OK, NF)
POST_ONLY = (LOGIN, NA, NA, NA, NA, NA)
GET_ONLY = (LOGIN, NA, NA, NA, NA, NA)
API_SIGNED_IN = (UNAUTH, OK, OK, OK, OK, OK)
API_TICKET_VIEWERS = (UNAUTH, OK, OK, OK, OK, NF)
API_NA = (UNAUTH, NA, NA, NA, NA, NA)
ADMIN_ONLY_PAGE = (ALOGIN, ALOGIN, ALOGIN, ALOGIN, OK, ALOGIN)
PUBLIC = (OK, OK, OK, OK, OK, OK)

#                  anon    employee agent lead admin other
LEADS_PAGE = (LOGIN, NF, NF, OK, OK, NF)  # the Dashboards area
LEADS_GET_ONLY = (LOGIN, NA, NA, NA, NA, NA)
OWNER_ONLY = (LOGIN, NF, NF, OK, NF, NF)


#                  anon    employee agent lead admin other
# Configuration (issue 7): admins; a lead only where its department allows it (IT does not).
CONFIG = (LOGIN, NF, NF, NF, OK, NF)


def _admin_replay_job(w: World) -> int:
    """A what-if replay job the admin asked for (made once per world)."""
    if "replay_job" not in w.extra:
        from slas.models import ReplayJob

        w.extra["replay_job"] = ReplayJob.objects.create(
            requested_by=w.org.admin, proposal={}, created_at=timezone.now()
        ).pk
    return w.extra["replay_job"]


def _lead_export(w: World) -> int:
    """A finished CSV export of the IT lead (made once per world)."""
    if "export" not in w.extra:
        from django.core.files.base import ContentFile

        from reports.models import Export

        export = Export(
            requested_by=w.org.it_lead,
            table="pairs",
            state=Export.State.DONE,
            filename="pairs.csv",
            created_at=timezone.now(),
        )
        export.file.save("matrix.csv", ContentFile(b"supplier,customer\n"), save=False)
        export.save()
        w.extra["export"] = export.pk
    return w.extra["export"]


ROUTES: dict[str, Row] = {
    # --- Infrastructure and sign-in ---------------------------------------------------------
    "healthz": row(get=PUBLIC, post=(NA,) * 6),
    "login": row(
        #     anon employee agent lead admin other  (signed-in people are sent home)
        get=PUBLIC,
        post=PUBLIC,
    ),
    # After signing out everybody lands on the sign-in page.
    "logout": row(get=(NA,) * 6, post=(LOGIN,) * 6),
    # --- Browser pages ----------------------------------------------------------------------
    "home": row(get=SIGNED_IN, post=SIGNED_IN),
    "catalogue": row(get=SIGNED_IN, post=SIGNED_IN),
    "my_requests": row(get=SIGNED_IN, post=SIGNED_IN),
    "queue": row(
        #     anon   employee agent lead admin other
        get=(LOGIN, NF, OK, OK, OK, NF),
        post=(LOGIN, NF, OK, OK, OK, NF),
    ),
    "queue_bulk": row(get=GET_ONLY, post=AGENTS),
    "markdown_preview": row(get=GET_ONLY, post=SIGNED_IN),
    "ticket_new": row(get=SIGNED_IN, post=SIGNED_IN),
    "ticket_detail": row(get=TICKET_VIEWERS, post=TICKET_VIEWERS),
    "ticket_comment": row(get=POST_ONLY, post=TICKET_VIEWERS),
    "ticket_transition": row(get=POST_ONLY, post=TICKET_VIEWERS),
    "ticket_assign": row(get=POST_ONLY, post=TICKET_WORKERS),
    "ticket_priority": row(get=POST_ONLY, post=TICKET_WORKERS),
    "ticket_service": row(get=POST_ONLY, post=TICKET_WORKERS),
    "ticket_watchers": row(get=POST_ONLY, post=TICKET_WORKERS),
    "ticket_link": row(get=TICKET_WORKERS, post=TICKET_WORKERS),
    "ticket_rate": row(get=POST_ONLY, post=TICKET_VIEWERS),
    "attachment_download": row(
        kwargs={"pk": lambda w: w.public_file.pk},
        get=TICKET_VIEWERS,
        post=(LOGIN, NA, NA, NA, NA, NA),
    ),
    "notifications": row(get=SIGNED_IN, post=SIGNED_IN),
    "notification_read_all": row(get=POST_ONLY, post=SIGNED_IN),
    "notification_read": row(
        # the notification belongs to the employee
        #      anon   employee agent lead admin other
        get=POST_ONLY,
        post=(LOGIN, OK, NF, NF, NF, NF),
    ),
    # --- API --------------------------------------------------------------------------------
    "api-root": row(get=API_SIGNED_IN, post=API_NA),
    "api-token": row(
        #      anon employee agent lead admin other
        get=(NA,) * 6,
        post=(OK,) * 6,
    ),
    "api-schema": row(get=PUBLIC, post=(NA,) * 6),
    "api-docs": row(get=PUBLIC, post=(NA,) * 6),
    # --- Dashboards (reports app): leads of the department and admins ------------------------
    "reports:index": row(get=LEADS_PAGE, post=LEADS_GET_ONLY),
    "reports:organisation_map": row(get=LEADS_PAGE, post=LEADS_GET_ONLY),
    "reports:satisfaction": row(get=LEADS_PAGE, post=LEADS_GET_ONLY),
    "reports:tickets": row(get=LEADS_PAGE, post=LEADS_GET_ONLY),
    "reports:department_home": row(get=LEADS_PAGE, post=LEADS_GET_ONLY),
    "reports:department": row(
        kwargs={"slug": "it", "side": "supplier"}, get=LEADS_PAGE, post=LEADS_GET_ONLY
    ),
    "reports:export_csv": row(kwargs={"table": "pairs"}, get=LEADS_PAGE, post=LEADS_GET_ONLY),
    # An export belongs to whoever asked for it (the IT lead here), admins included.
    "reports:export_detail": row(kwargs={"pk": _lead_export}, get=OWNER_ONLY, post=GET_ONLY),
    "reports:export_status": row(kwargs={"pk": _lead_export}, get=OWNER_ONLY, post=GET_ONLY),
    "reports:export_download": row(kwargs={"pk": _lead_export}, get=OWNER_ONLY, post=GET_ONLY),
    "reports:export_retry": row(kwargs={"pk": _lead_export}, get=POST_ONLY, post=OWNER_ONLY),
    # --- Configuration (slas app): calendars, standards, versions, what-if -------------------
    "config:home": row(get=CONFIG, post=GET_ONLY),
    "config:calendar_new": row(get=CONFIG, post=CONFIG),
    "config:calendar_detail": row(
        kwargs={"pk": lambda w: w.calendar.pk}, get=CONFIG, post=GET_ONLY
    ),
    "config:calendar_edit": row(kwargs={"pk": lambda w: w.calendar.pk}, get=CONFIG, post=CONFIG),
    "config:standard_new": row(get=CONFIG, post=CONFIG),
    "config:standard_edit": row(
        kwargs={"pk": lambda w: w.org.standard.pk}, get=CONFIG, post=CONFIG
    ),
    "config:standard_version": row(
        kwargs={"pk": lambda w: w.org.standard.pk, "number": 1}, get=CONFIG, post=GET_ONLY
    ),
    "config:standard_retarget": row(
        kwargs={"pk": lambda w: w.org.standard.pk}, get=CONFIG, post=CONFIG
    ),
    "config:replay_job": row(kwargs={"pk": _admin_replay_job}, get=CONFIG, post=GET_ONLY),
    "config:replay_job_status": row(kwargs={"pk": _admin_replay_job}, get=CONFIG, post=GET_ONLY),
    "config:replay_job_retry": row(kwargs={"pk": _admin_replay_job}, get=POST_ONLY, post=CONFIG),
    "api-metrics-sla": row(
        #      anon    employee agent lead admin other
        get=(UNAUTH, NF, NF, OK, OK, NF),
        post=API_NA,
    ),
    "department-list": row(get=API_SIGNED_IN, post=API_NA),
    "department-detail": row(get=API_SIGNED_IN, post=API_NA, patch=API_NA, delete=API_NA),
    "service-list": row(
        #      anon    employee agent lead admin other
        get=API_SIGNED_IN,
        post=(UNAUTH, OK, OK, OK, OK, OK),
    ),
    "service-detail": row(
        kwargs={"pk": lambda w: w.org.service.pk},
        get=API_SIGNED_IN,
        post=API_NA,
        patch=API_NA,
        delete=API_NA,
    ),
    # Calendars are business hours, nothing secret: everybody reads them, admins change them.
    "calendar-list": row(
        #      anon    employee agent lead admin other
        get=API_SIGNED_IN,
        post=(UNAUTH, DENIED, DENIED, DENIED, OK, DENIED),
    ),
    "calendar-detail": row(
        kwargs={"pk": lambda w: w.calendar.pk},
        #      anon    employee agent lead admin other
        get=API_SIGNED_IN,
        post=API_NA,
        patch=(UNAUTH, DENIED, DENIED, DENIED, OK, DENIED),
        delete=API_NA,
    ),
    # Standards are published promises (the catalogue shows them); IT does not let its lead
    # configure them, so only the admin may publish one for IT.
    "standard-list": row(
        data=lambda w: {
            "name": "Matrix standard",
            "department": "it",
            "calendar": w.calendar.pk,
            "targets": [{"priority": "P1", "first_response": "01:00:00", "resolution": "04:00:00"}],
        },
        #      anon    employee agent lead admin other
        get=API_SIGNED_IN,
        post=(UNAUTH, DENIED, DENIED, DENIED, OK, DENIED),
    ),
    "standard-detail": row(
        kwargs={"pk": lambda w: w.org.standard.pk},
        get=API_SIGNED_IN,
        post=API_NA,
        patch=(UNAUTH, DENIED, DENIED, DENIED, OK, DENIED),
        delete=API_NA,
    ),
    "ticket-list": row(get=API_SIGNED_IN, post=API_SIGNED_IN),
    "ticket-detail": row(
        get=API_TICKET_VIEWERS,
        post=API_NA,
        patch=API_TICKET_VIEWERS,
        put=API_NA,
        delete=API_NA,
    ),
    "ticket-assign": row(
        data={"assignee": "itagent"},
        #      anon    employee agent lead admin other
        get=API_NA,
        post=(UNAUTH, DENIED, OK, OK, OK, NF),
    ),
    "ticket-comments": row(get=API_TICKET_VIEWERS, post=API_TICKET_VIEWERS),
    "ticket-priority": row(
        data={"priority": "P1"},
        get=API_NA,
        post=(UNAUTH, DENIED, OK, OK, OK, NF),
    ),
    "ticket-rating": row(get=API_NA, post=API_TICKET_VIEWERS),
    "ticket-transition": row(get=API_NA, post=API_TICKET_VIEWERS),
}

# --- The admin ------------------------------------------------------------------------------
# Only superusers (the admin role) get past the admin's sign-in; everybody else is sent to it.
# Per registered model: what the admin role gets on the add and delete pages (403 where the
# model is read-only in the admin) — the changelist, change and history pages answer OK.
EDITABLE = {"add": OK, "delete": OK}
READ_ONLY = {"add": DENIED, "delete": DENIED}
NO_ADD = {"add": DENIED, "delete": OK}

ADMIN_MODELS: dict[str, dict[str, str]] = {
    "authtoken.tokenproxy": EDITABLE,
    "axes.accessattempt": NO_ADD,
    "axes.accesslog": NO_ADD,
    "axes.accessfailurelog": NO_ADD,
    "auth.group": EDITABLE,
    "departments.user": EDITABLE,
    "departments.department": EDITABLE,
    "departments.membership": EDITABLE,
    "departments.service": EDITABLE,
    "slas.calendar": EDITABLE,
    "slas.standardversion": EDITABLE,
    "slas.servicestandard": EDITABLE,
    "slas.slaclock": NO_ADD,
    "slas.escalation": NO_ADD,
    "tickets.ticket": READ_ONLY,
    "tickets.event": READ_ONLY,
    "tickets.satisfactionrating": NO_ADD,
    "tickets.notification": EDITABLE,
    "tickets.attachment": NO_ADD,
    "audit.auditrecord": READ_ONLY,
}

ADMIN_SITE_ROUTES: dict[str, Row] = {
    "admin:index": row(get=ADMIN_ONLY_PAGE),
    "admin:login": row(
        #      anon employee agent lead admin other  (signed-in non-staff see the form again)
        get=(OK, OK, OK, OK, OK, OK),
    ),
    # GET is refused for the admin; the others are sent to the admin index (then sign-in).
    "admin:logout": row(get=(OK, OK, OK, OK, NA, OK)),
    "admin:password_change": row(get=ADMIN_ONLY_PAGE),
    "admin:password_change_done": row(get=ADMIN_ONLY_PAGE),
    "admin:autocomplete": row(
        #      anon    employee agent  lead   admin other   (no query → 403 for the admin too)
        get=(ALOGIN, ALOGIN, ALOGIN, ALOGIN, DENIED, ALOGIN),
    ),
    "admin:jsi18n": row(get=ADMIN_ONLY_PAGE),
    "admin:view_on_site": row(
        kwargs={
            "content_type_id": lambda w: _content_type_id("departments.department"),
            "object_id": lambda w: w.org.it.pk,
        },
        #      anon    employee agent  lead   admin other   (departments have no public URL)
        get=(ALOGIN, ALOGIN, ALOGIN, ALOGIN, NF, ALOGIN),
    ),
    "admin:app_list": row(kwargs={"app_label": "departments"}, get=ADMIN_ONLY_PAGE),
    "admin:auth_user_password_change": row(
        kwargs={"id": lambda w: w.org.employee.pk}, get=ADMIN_ONLY_PAGE
    ),
    "admin/(?P<url>.*)$": row(
        path="/admin/no-such-page/",
        #      anon    employee agent  lead   admin other
        get=(ALOGIN, ALOGIN, ALOGIN, ALOGIN, NF, ALOGIN),
    ),
}


def _content_type_id(label: str) -> int:
    from django.contrib.contenttypes.models import ContentType

    app_label, model = label.split(".")
    return ContentType.objects.get(app_label=app_label, model=model).pk


def _admin_object_id(label: str) -> Callable[[World], Any]:
    def find(w: World):
        from django.apps import apps

        model = apps.get_model(label)
        first = model._default_manager.order_by("pk").first()
        return first.pk if first is not None else 999_999

    return find


def admin_model_rows() -> dict[str, Row]:
    """The standard admin pages of every model in ADMIN_MODELS."""
    rows: dict[str, Row] = {}
    for label, answers in ADMIN_MODELS.items():
        app_label, model = label.split(".")
        prefix = f"admin:{app_label}_{model}"
        object_id = {"object_id": _admin_object_id(label)}
        for_admin = {"changelist": OK, "change": OK, "history": OK, **answers}
        for page, answer in for_admin.items():
            line = (ALOGIN, ALOGIN, ALOGIN, ALOGIN, answer, ALOGIN)
            rows[f"{prefix}_{page}"] = row(
                kwargs={} if page in ("changelist", "add") else object_id, get=line
            )
        # The bare object URL redirects to its change page (unnamed route).
        find = object_id["object_id"]
        rows[f"admin/{app_label}/{model}/<path:object_id>/"] = row(
            path=lambda w, a=app_label, m=model, f=find: f"/admin/{a}/{m}/{f(w)}/",
            get=ADMIN_ONLY_PAGE,
        )
    return rows


def full_table() -> dict[str, Row]:
    table = {**ROUTES, **ADMIN_SITE_ROUTES}
    for key, value in admin_model_rows().items():
        assert key not in table, f"{key} is both an admin model page and an explicit row"
        table[key] = value
    return table


TABLE = full_table()


# --- Checking one answer ------------------------------------------------------------------------


def _is_login_redirect(response, login_path: str) -> bool:
    return response.status_code == 302 and response["Location"].split("?")[0].endswith(login_path)


def check(response, outcome: str, method: str) -> bool:
    status = response.status_code
    login = reverse(settings.LOGIN_URL) if ":" not in settings.LOGIN_URL else settings.LOGIN_URL
    admin_login = reverse("admin:login")
    if outcome == LOGIN:
        return _is_login_redirect(response, login)
    if outcome == ALOGIN:
        return _is_login_redirect(response, admin_login)
    if outcome == UNAUTH:
        return status == 401
    if outcome in (DENIED, NF, NA):
        return status == int(outcome)
    assert outcome == OK, outcome
    if _is_login_redirect(response, login) or _is_login_redirect(response, admin_login):
        return False
    if 200 <= status < 400:
        return True
    return method != "get" and status == 400


def _resolve(value, w: World):
    return value(w) if callable(value) else value


def url_for(route: Route, table_row: Row, w: World) -> str:
    if table_row.path:
        return _resolve(table_row.path, w)
    kwargs = {}
    for param in route.params:
        if param in table_row.kwargs:
            kwargs[param] = _resolve(table_row.kwargs[param], w)
        elif param in DEFAULT_KWARGS:
            kwargs[param] = DEFAULT_KWARGS[param](w)
        else:
            raise AssertionError(f"{route.key}: give kwargs for URL parameter {param!r}")
    return reverse(route.name, kwargs=kwargs)


_CLIENTS: dict[str, Client] = {}


def request_as(role: str, method: str, url: str, data, w: World, *, api: bool):
    # One client per role for the whole module: a new Client builds a new request handler,
    # and WhiteNoise scans every static file then (most of the time of a request).
    client = _CLIENTS.setdefault(role, Client())
    client.cookies.clear()
    if role != "anon":
        client.force_login(getattr(w.org, ROLE_USERS[role]))
    cache.clear()  # DRF throttling counts live in the cache
    kwargs: dict = {}
    if method != "get":
        if api:
            kwargs = {"data": data or {}, "content_type": "application/json"}
        else:
            kwargs = {"data": data or {}}
            if method != "post":
                from django.test.client import encode_multipart

                kwargs = {
                    "data": encode_multipart("BoUnDaRy", data or {}),
                    "content_type": "multipart/form-data; boundary=BoUnDaRy",
                }
    # Each request sees the same world: its changes are rolled back at once.
    with transaction.atomic():
        response = getattr(client, method)(url, **kwargs)
        transaction.set_rollback(True)
    return response


# --- The tests --------------------------------------------------------------------------------


def test_every_route_has_a_row():
    missing = sorted({route.key for route in ALL_ROUTES} - set(TABLE))
    assert not missing, (
        "Routes without a row in tests/test_permission_matrix.py (add them to ROUTES, or the "
        "model to ADMIN_MODELS): " + ", ".join(missing)
    )


def test_every_row_has_a_route():
    stale = sorted(set(TABLE) - {route.key for route in ALL_ROUTES})
    assert not stale, "Rows for routes that no longer exist: " + ", ".join(stale)


def test_every_registered_admin_model_has_a_row():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == set(ADMIN_MODELS)


def test_every_page_row_checks_get_and_post():
    for key, table_row in ROUTES.items():
        assert {"get", "post"} <= set(table_row.expect), f"{key}: give at least get and post"


@pytest.mark.parametrize("route", ALL_ROUTES, ids=lambda r: r.pattern)
def test_route_answers_each_role_as_the_table_says(route, world, db, settings):
    settings.AXES_ENABLED = False
    settings.MEDIA_ROOT = world.media_root
    world.extra.clear()
    table_row = TABLE.get(route.key)
    assert table_row is not None, f"{route.key} has no row"
    url = url_for(route, table_row, world)
    api = route.pattern.startswith("api/v1/")
    mismatches = []
    for method, outcomes in table_row.expect.items():
        data = _resolve(table_row.data, world) if method != "get" else None
        for role, outcome in zip(ROLES, outcomes, strict=True):
            response = request_as(role, method, url, data, world, api=api)
            assert response.status_code != 500, f"{method.upper()} {url} as {role}: 500"
            if not check(response, outcome, method):
                where = response.get("Location", "")
                mismatches.append(
                    f"{method.upper()} {url} as {role}: expected {outcome}, "
                    f"got {response.status_code} {where}".rstrip()
                )
    assert not mismatches, "\n".join(mismatches)
