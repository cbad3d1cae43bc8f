"""Hardening (issue 9 §3): sign-in lockout, Content Security Policy without inline scripts,
CSRF on every form and session-authenticated API write, production settings that pass
`check --deploy`."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tickets import services

BASE_DIR = Path(settings.BASE_DIR)


# --- Sign-in lockout (django-axes on the real login form) ---------------------------------


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3


def _sign_in(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_login_form_locks_out_after_repeated_failures(client, org, axes_on):
    for _ in range(2):
        assert _sign_in(client, "employee", "wrong").status_code == 200
    # The failure that reaches the limit already answers with the lockout page…
    assert _sign_in(client, "employee", "wrong").status_code == 429
    # …and the right password no longer helps.
    locked = _sign_in(client, "employee", "pw")
    assert locked.status_code == 429
    assert "Too many sign-in attempts" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_lockout_is_per_account_and_address(client, org, axes_on):
    for _ in range(3):
        _sign_in(client, "employee", "wrong")
    response = _sign_in(Client(), "itagent", "pw")
    assert response.status_code == 302


def test_lockout_also_covers_the_admin_login(client, org, axes_on):
    for _ in range(3):
        client.post(reverse("admin:login"), {"username": "admin", "password": "wrong"})
    response = client.post(reverse("admin:login"), {"username": "admin", "password": "pw"})
    assert response.status_code == 429


def test_a_success_before_the_limit_resets_the_count(client, org, axes_on):
    for _ in range(2):
        _sign_in(client, "employee", "wrong")
    assert _sign_in(client, "employee", "pw").status_code == 302
    client.logout()
    for _ in range(2):
        _sign_in(client, "employee", "wrong")
    assert _sign_in(client, "employee", "pw").status_code == 302


# --- Content Security Policy ---------------------------------------------------------------


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def test_pages_carry_a_policy_without_inline_or_eval_scripts(client, org):
    client.force_login(org.employee)
    policy = _policy(client.get(reverse("my_requests")))
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["style-src"]


def test_api_docs_get_their_own_policy_but_still_no_inline_scripts(client):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    policy = _policy(response)
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" in policy["style-src"]
    html = response.content.decode()
    assert not _inline_scripts(html)
    # The Swagger UI start-up script is served from our own origin.
    script_url = re.search(r'<script src="([^"]*\?script=[^"]*)"', html).group(1)
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert "javascript" in script["Content-Type"]
    assert "SwaggerUIBundle" in script.content.decode()


_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)


def _inline_scripts(html: str) -> list[str]:
    """Executable inline script: <script> without src and not a JSON data island, or on*=."""
    found = []
    for attributes, body in _SCRIPT.findall(html):
        if "src=" in attributes:
            continue
        if re.search(r'type="application/(ld\+)?json"', attributes):
            continue
        found.append(body.strip()[:80])
    found += _HANDLER.findall(html)
    found += re.findall(r'href="javascript:', html, re.I)
    return found


def _html_pages(world_user, client) -> list[str]:
    """Every page reachable without parameters, plus a ticket page, for this user."""
    urls = []

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern) and not entry.pattern.regex.groupindex:
                route = prefix + str(entry.pattern)
                if "^" in route or "(?P" in route or route.startswith("admin/"):
                    continue
                urls.append("/" + route)

    walk(get_resolver().url_patterns)
    return urls


@pytest.mark.parametrize("who", ["employee", "it_lead", "admin"])
def test_no_page_contains_an_inline_script(client, org, who):
    ticket = services.ticket_create(
        requester=org.employee,
        service=org.service,
        title="Printer",
        attachments=[SimpleUploadedFile("a.txt", b"hello", content_type="text/plain")],
    )
    services.ticket_comment(ticket=ticket, author=org.it_agent, body="On it")
    user = getattr(org, who)
    client.force_login(user)
    urls = [
        *_html_pages(user, client),
        reverse("ticket_detail", args=[ticket.reference]),
        reverse("admin:index"),
        reverse("admin:tickets_ticket_changelist"),
        reverse("admin:departments_user_change", args=[org.employee.pk]),
    ]
    checked = 0
    for url in urls:
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        checked += 1
        assert not _inline_scripts(response.content.decode()), url
    assert checked >= 4


# --- CSRF ---------------------------------------------------------------------------------


@pytest.fixture
def csrf_client():
    return Client(enforce_csrf_checks=True)


def _token(client, url) -> str:
    client.get(url)
    return client.cookies["csrftoken"].value


def test_login_form_needs_the_csrf_token(csrf_client, org):
    response = csrf_client.post(reverse("login"), {"username": "employee", "password": "pw"})
    assert response.status_code == 403
    token = _token(csrf_client, reverse("login"))
    response = csrf_client.post(
        reverse("login"), {"username": "employee", "password": "pw", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302


def test_filing_a_request_needs_the_csrf_token(csrf_client, org):
    csrf_client.force_login(org.employee)
    data = {"service": org.service.pk, "title": "Forged", "priority": ""}
    assert csrf_client.post(reverse("ticket_new"), data).status_code == 403
    assert not org.service.tickets.exists()
    token = _token(csrf_client, reverse("ticket_new"))
    response = csrf_client.post(reverse("ticket_new"), {**data, "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert org.service.tickets.count() == 1


def test_replying_needs_the_csrf_token(csrf_client, org):
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="x")
    csrf_client.force_login(org.employee)
    url = reverse("ticket_comment", args=[ticket.reference])
    assert csrf_client.post(url, {"body": "forged"}).status_code == 403
    assert not ticket.comments.exists()


def test_signing_out_needs_the_csrf_token(csrf_client, org):
    csrf_client.force_login(org.employee)
    assert csrf_client.post(reverse("logout")).status_code == 403
    assert "_auth_user_id" in csrf_client.session


def test_session_authenticated_api_write_needs_the_csrf_token(csrf_client, org):
    csrf_client.force_login(org.employee)
    body = {"service": org.service.pk, "title": "Forged through the API"}
    response = csrf_client.post("/api/v1/tickets/", body, content_type="application/json")
    assert response.status_code == 403
    assert not org.service.tickets.exists()
    token = _token(csrf_client, reverse("my_requests"))
    response = csrf_client.post(
        "/api/v1/tickets/", body, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201


def test_token_authenticated_api_write_needs_no_csrf_token(csrf_client, org):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=org.employee)
    response = csrf_client.post(
        "/api/v1/tickets/",
        {"service": org.service.pk, "title": "With a token"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert response.status_code == 201


def test_no_view_opts_out_of_csrf_except_the_api():
    """Only DRF views are csrf_exempt (DRF's SessionAuthentication enforces CSRF itself)."""
    exempt = []

    def walk(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
                continue
            callback = entry.callback
            if not getattr(callback, "csrf_exempt", False):
                continue
            view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
            from rest_framework.views import APIView

            if view_class is not None and issubclass(view_class, APIView):
                continue
            exempt.append(prefix + str(entry.pattern))

    walk(get_resolver().url_patterns)
    assert exempt == []


def test_api_authentication_is_session_and_token_only():
    from rest_framework.authentication import SessionAuthentication, TokenAuthentication
    from rest_framework.settings import api_settings

    classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    # DRF's two, or subclasses of them (servicedesk.api.authentication reads the token faster).
    assert len(classes) == 2
    assert sum(issubclass(c, TokenAuthentication) for c in classes) == 1
    assert sum(issubclass(c, SessionAuthentication) for c in classes) == 1


# --- Production settings ------------------------------------------------------------------


def _production_env(**extra) -> dict:
    # Only what a deployment would set: nothing the test process itself added (the browser
    # tests set DJANGO_ALLOW_ASYNC_UNSAFE, which check --deploy rightly refuses).
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "DATABASE_URL", "REDIS_URL"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update(
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="servicedesk.example.org",
        **extra,
    )
    return env


def test_check_deploy_is_clean_with_production_environment():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output
    assert "WARNINGS" not in output


def test_production_refuses_to_start_without_a_secret_key():
    env = _production_env()
    env.pop("SECRET_KEY")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_settings_secure_cookies_and_transport():
    code = (
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_CONTENT_TYPE_NOSNIFF, s.DEBUG, "
        "s.X_FRAME_OPTIONS)"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=BASE_DIR,
        env={**_production_env(), "DJANGO_SETTINGS_MODULE": "servicedesk.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split()[-9:] == [
        "True",
        "True",
        "True",
        "True",
        "True",
        "True",
        "True",
        "False",
        "DENY",
    ], result.stderr


def test_responses_carry_the_security_headers(client, org):
    client.force_login(org.employee)
    response = client.get(reverse("my_requests"))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
