"""SSO-ready (issue 9 §6): authentication backends are chosen by settings (the
AUTHENTICATION_BACKENDS environment variable), and the sign-in form, the lockout and the pages
work with whatever backend is plugged in — LDAP or OIDC need no code change (README "Single
sign-on")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from departments.models import User

BASE_DIR = Path(settings.BASE_DIR)
PLUGGED = ["axes.backends.AxesStandaloneBackend", "tests.sso_stub.DirectoryBackend"]


def test_backends_come_from_the_environment():
    env = {**os.environ, "AUTHENTICATION_BACKENDS": " , ".join(PLUGGED)}
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print('|'.join(settings.AUTHENTICATION_BACKENDS))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "servicedesk.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "|".join(PLUGGED)


def test_default_backends_keep_the_lockout_first():
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


@pytest.fixture
def directory(settings, org):
    settings.AUTHENTICATION_BACKENDS = PLUGGED
    return org


def test_the_sign_in_form_uses_the_plugged_backend(client, directory):
    response = client.post(
        reverse("login"), {"username": "dana.dir", "password": "s3cret-from-directory"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("home")
    dana = User.objects.get(username="dana.dir")
    assert not dana.has_usable_password()  # the directory vouches, no local password
    page = client.get(reverse("catalogue"))
    assert page.status_code == 200 and "Dana" in page.content.decode()


def test_without_the_model_backend_local_passwords_no_longer_work(client, directory):
    response = client.post(reverse("login"), {"username": "employee", "password": "pw"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_the_lockout_still_applies_to_the_plugged_backend(client, directory, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post(reverse("login"), {"username": "dana.dir", "password": "guess"})
    locked = client.post(
        reverse("login"), {"username": "dana.dir", "password": "s3cret-from-directory"}
    )
    assert locked.status_code == 429
    assert not User.objects.filter(username="dana.dir").exists()
