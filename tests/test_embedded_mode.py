"""The embedded default (`make run`): every migration applies on SQLite, demo data loads,
and the launcher serves the login page and /healthz with no PostgreSQL or Redis running.

PostgreSQL runs the rest of the suite; this guards the no-server mode against
PostgreSQL-only SQL slipping into a migration, and `make run`'s promises (HOST/PORT,
the printed URL and demo accounts, Ctrl-C stopping every process it started).
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _embedded_env(tmp: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'embedded.sqlite3'}",
        # No server at all: an empty REDIS_URL selects kombu's filesystem:// broker.
        "REDIS_URL": "",
        "CELERY_DATA_DIR": str(tmp / "var" / "celery"),
        "STATIC_ROOT": str(tmp / "static"),
        "MEDIA_ROOT": str(tmp / "media"),
        "WEB_CONCURRENCY": "1",
        "WORKER_CONCURRENCY": "1",
    }
    for name in ("DJANGO_ALLOW_ASYNC_UNSAFE", "CELERY_BROKER_URL"):
        env.pop(name, None)
    return env


def _manage(env: dict[str, str], *command: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A migrated SQLite database with demo data, built as `make run` builds it."""
    tmp = tmp_path_factory.mktemp("embedded")
    env = _embedded_env(tmp)
    _manage(env, "migrate", "--noinput")
    _manage(env, "seed_demo", "--history", "15")
    return tmp, env


def test_migrations_and_seed_demo_run_on_sqlite(embedded):
    tmp, _env = embedded
    with sqlite3.connect(tmp / "embedded.sqlite3") as connection:
        (tickets,) = connection.execute("SELECT count(*) FROM tickets_ticket").fetchone()
        (departments,) = connection.execute(
            "SELECT count(*) FROM departments_department"
        ).fetchone()
    assert tickets == 15
    assert departments >= 8


# Every page and API read each demo account opens first, on the embedded database: reads tuned
# for PostgreSQL (compiled SQL, arrays) must keep a path SQLite runs.
_READ_EVERY_PAGE = """
import json, sys, django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.test import Client
from rest_framework.authtoken.models import Token
from departments.models import User
from tickets.models import Ticket

failures = []
ticket = Ticket.objects.filter(confidential=False).order_by("pk").first()
pages = {
    "agent": ["/queue/", "/queue/?sla=at_risk&sort=priority", "/requests/", "/catalogue/",
              "/notifications/", f"/tickets/{ticket.reference}/"],
    "lead": ["/queue/", "/dashboards/", "/dashboards/map/", "/dashboards/satisfaction/",
             "/dashboards/tickets/", f"/tickets/{ticket.reference}/"],
    "employee": ["/", "/requests/", "/requests/?scope=watching", "/catalogue/"],
    "admin": ["/queue/", "/config/"],
}
for username, paths in pages.items():
    user = User.objects.get(username=username)
    client = Client()
    client.force_login(user)
    for path in paths:
        status = client.get(path, follow=True).status_code
        if status != 200:
            failures.append((username, path, status))
    token, _ = Token.objects.get_or_create(user=user)
    api = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    for path in ["/api/v1/tickets/", "/api/v1/tickets/?ordering=priority", "/api/v1/departments/"]:
        status = api.get(path).status_code
        if status != 200:
            failures.append((username, path, status))
print(json.dumps(failures))
"""


def test_every_main_page_and_api_read_works_on_sqlite(embedded):
    _tmp, env = embedded
    assert _django_json(env, _READ_EVERY_PAGE, timeout=300) == []


def test_make_run_hands_host_and_port_to_the_launcher():
    result = subprocess.run(
        ["make", "-n", "run", "HOST=0.0.0.0", "PORT=9911"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "HOST=0.0.0.0 PORT=9911 .venv/bin/python -m servicedesk.launcher" in result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    """Every live process below `pid` (gunicorn and Celery fork their own children)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 is the parent pid; the command name in (…) may contain spaces.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_launcher_serves_login_and_healthz_and_ctrl_c_stops_everything(embedded):
    tmp, env = embedded
    port = _free_port()
    env = {**env, "HOST": "127.0.0.1", "PORT": str(port)}
    output = tmp / "launcher.log"
    with output.open("w") as log:
        # Its own process group, like a terminal's foreground job: Ctrl-C is a SIGINT to it.
        launcher = subprocess.Popen(
            [sys.executable, "-m", "servicedesk.launcher"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline:
            try:
                health = _get(f"{base}/healthz")
                break
            except OSError:
                assert launcher.poll() is None, output.read_text()[-3000:]
                time.sleep(0.5)
        assert health is not None, output.read_text()[-3000:]
        assert health[0] == 200, health
        assert json.loads(health[1]) == {"database": "ok", "broker": "ok"}
        status, body = _get(f"{base}/accounts/login/")
        assert status == 200
        assert b'name="password"' in body
        printed = output.read_text()
        assert f"servicedesk is running at {base}/" in printed
        for account in ("admin", "lead", "agent", "employee", "password 'demo'"):
            assert account in printed
        # web, worker and beat (and their own forked children) are running.
        started = _descendants(launcher.pid)
        assert len(started) >= 3
    finally:
        os.killpg(launcher.pid, signal.SIGINT)
        launcher.wait(timeout=30)
    time.sleep(0.5)
    assert launcher.returncode == 0, output.read_text()[-3000:]
    assert [pid for pid in started if _alive(pid)] == []
    assert "stopped web, worker and beat" in output.read_text()


def _django_json(env: dict[str, str], code: str, *, timeout: int = 60):
    """Run `code` (which sets Django up and prints JSON last) with `env`; its JSON."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "servicedesk.settings"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _configured(env: dict[str, str]) -> dict:
    probe = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
        "'broker': settings.CELERY_BROKER_URL, "
        "'cache': settings.CACHES['default']['BACKEND']}))"
    )
    return _django_json(env, probe)


def test_no_server_by_default_and_postgresql_and_redis_when_their_urls_are_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("CELERY_BROKER_URL", None)
    embedded = _configured(env)
    assert embedded["engine"] == "django.db.backends.sqlite3"
    assert embedded["broker"] == "filesystem://"
    assert embedded["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    servers = _configured(
        {
            **env,
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/servicedesk",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert servers == {
        "engine": "django.db.backends.postgresql",
        "broker": "redis://127.0.0.1:6379/0",
        "cache": "servicedesk.cache.RedisCache",
    }


def test_make_run_links_in_e_mails_to_its_own_host_and_port_unless_site_url_is_set():
    from servicedesk.launcher import child_environment

    env = child_environment(host="0.0.0.0", port="8131", environ={})
    assert env["SITE_URL"] == "http://0.0.0.0:8131"
    assert env["DJANGO_SETTINGS_MODULE"] == "servicedesk.settings"
    kept = child_environment(host="h", port="1", environ={"SITE_URL": "https://desk.example"})
    assert kept["SITE_URL"] == "https://desk.example"
