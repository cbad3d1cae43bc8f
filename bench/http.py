"""HTTP workloads: gunicorn (2 sync workers, DEBUG off) on PostgreSQL + Redis, driven by wrk.

Each workload is measured twice:
- throughput and latency with `wrk -t2 -c8 --latency` (sequential creates: `-t1 -c1`) and a
  generated Lua script that sends the session cookie of a real login (pages) or an API token
  (API), rotating over many different tickets so caches do not flatter the numbers;
- queries per request in-process with Django's test client and CaptureQueriesContext, on the
  same database, for the same paths and users.

Workloads whose route does not exist yet are listed as "not built" rather than skipped
silently.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver, reverse

from bench.calibrate import reference_ms
from bench.results import replace_section

REPO_ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("BENCH_PORT", "8765"))
BASE = f"http://127.0.0.1:{PORT}"
PASSWORD = "demo"


@dataclass
class Workload:
    name: str
    title: str
    baseline: str
    # Budget: p50 under 50 ms and at least this many req/s.
    min_rps: float
    user: str = "agent"
    auth: str = "session"  # or "token"
    method: str = "GET"
    paths: list[str] = field(default_factory=list)
    body: dict | None = None
    connections: int = 8
    threads: int = 2
    missing: str = ""
    result: dict = field(default_factory=dict)


def _find_route(*words: str, exclude: tuple[str, ...] = ()) -> list[tuple[str, list[str]]]:
    """(url name, parameter names) of named routes whose name contains all `words`."""
    found = []
    resolver = get_resolver()

    def walk(res, prefix=""):
        for pattern in res.url_patterns:
            if hasattr(pattern, "url_patterns"):
                namespace = pattern.namespace
                walk(pattern, f"{prefix}{namespace}:" if namespace else prefix)
            elif pattern.name and all(w in pattern.name for w in words):
                if any(x in pattern.name for x in exclude):
                    continue
                params = list(pattern.pattern.converters) if hasattr(pattern, "pattern") else []
                found.append((prefix + pattern.name, params))

    walk(resolver)
    return found


def _reverse_any(candidates, kwargs_for) -> str | None:
    for name, params in candidates:
        try:
            return reverse(name, kwargs={p: kwargs_for(p) for p in params} or None)
        except Exception:  # noqa: BLE001 - a candidate that does not reverse is just not it
            continue
    return None


def build_workloads() -> list[Workload]:
    from departments.models import Department, Service
    from tickets.models import Ticket

    it = Department.objects.get(slug="it")
    refs = list(
        Ticket.objects.filter(supplier_department=it, confidential=False)
        .order_by("?")
        .values_list("reference", "pk")[:200]
    )
    workloads = [
        Workload(
            "queue",
            "agent queue page (25 rows)",
            "3.6 req/s, p50 2.2 s",
            min_rps=36,
            paths=[reverse("queue")],
        ),
        Workload(
            "queue_filtered",
            "agent queue, open + at-risk filter, page 2",
            "(list data) 3.6 req/s, p50 2.2 s",
            min_rps=36,
            paths=[reverse("queue") + "?status=open&page=2"],
        ),
        Workload(
            "ticket",
            "ticket page (200 different tickets)",
            "59 req/s, p50 133 ms (40 queries)",
            min_rps=118,
            paths=[reverse("ticket_detail", args=[r]) for r, _ in refs],
        ),
    ]
    slug_kwargs = {"slug": "it", "department": "it", "department_slug": "it", "code": "IT"}
    slug_kwargs["side"] = "supplier"
    dashboard = _reverse_any(
        [("reports:department", ["slug", "side"]), *_find_route("dashboard", exclude=("api",))],
        lambda p: slug_kwargs.get(p, "it"),
    )
    workloads.append(
        Workload(
            "dashboard",
            "lead dashboard (IT)",
            "1.1 req/s, p50 7.1 s (67 queries)",
            min_rps=11,
            user="lead",
            paths=[dashboard] if dashboard else [],
            missing="" if dashboard else "no dashboard route yet",
        )
    )
    org_map = _reverse_any(
        _find_route("map", exclude=("api", "sitemap")), lambda p: slug_kwargs.get(p, "it")
    )
    workloads.append(
        Workload(
            "org_map",
            "organisation map",
            "(reports) 0.3 req/s, p50 24 s",
            min_rps=3,
            user="lead",
            paths=[org_map] if org_map else [],
            missing="" if org_map else "no organisation map route yet",
        )
    )
    try:
        api_list = reverse("ticket-list")
    except Exception:  # noqa: BLE001 - the API is not there yet
        api_list = None
    api_list = api_list if api_list and api_list.startswith("/api/") else None
    detail_paths = []
    create_body = None
    if api_list:
        detail_paths = [f"{api_list}{ref}/" for ref, _ in refs]
        service = Service.objects.filter(department=it, confidential=False).first()
        create_body = {
            "service": service.pk,
            "title": "Benchmark request",
            "description": "Created by the benchmark.",
            "priority": "P3",
        }
    workloads += [
        Workload(
            "api_list",
            "API ticket list (token)",
            "~27 s per request",
            min_rps=1,
            auth="token",
            paths=[api_list] if api_list else [],
            missing="" if api_list else "no /api/v1/tickets/ route yet",
        ),
        Workload(
            "api_detail",
            "API one ticket (token, 200 tickets)",
            "~25 s per request",
            min_rps=1,
            auth="token",
            paths=detail_paths,
            missing="" if api_list else "no /api/v1/tickets/ route yet",
        ),
        Workload(
            "api_create",
            "API create (token, POST)",
            "122 req/s",
            min_rps=244,
            user="employee",
            auth="token",
            method="POST",
            paths=[api_list] if api_list else [],
            body=create_body,
            missing="" if api_list else "no /api/v1/tickets/ route yet",
        ),
        Workload(
            "api_create_seq",
            "API create, sequential (one client)",
            "57 tickets/s",
            min_rps=114,
            user="employee",
            auth="token",
            method="POST",
            paths=[api_list] if api_list else [],
            body=create_body,
            connections=1,
            threads=1,
            missing="" if api_list else "no /api/v1/tickets/ route yet",
        ),
    ]
    return workloads


# --- in-process query counts ---------------------------------------------------------------


def _token_for(username: str) -> str:
    from rest_framework.authtoken.models import Token

    from departments.models import User

    token, _ = Token.objects.get_or_create(user=User.objects.get(username=username))
    return token.key


def signed_in(workload: Workload, client: Client | None = None) -> tuple[Client, dict]:
    """A test client and request headers acting as the workload's user (session or token)."""
    from departments.models import User

    client = client or Client()
    headers = {}
    if workload.auth == "token":
        headers["HTTP_AUTHORIZATION"] = f"Token {_token_for(workload.user)}"
    else:
        client.force_login(User.objects.get(username=workload.user))
    return client, headers


def send(workload: Workload, client: Client, headers: dict, path: str):
    """The workload's request to `path` (its POST body, or a GET)."""
    if workload.method == "POST":
        return client.post(
            path, data=json.dumps(workload.body), content_type="application/json", **headers
        )
    return client.get(path, **headers)


def _fix_paths(workload: Workload) -> None:
    """Keep only paths that answer 200 (API detail may be keyed by reference or id)."""
    # Others' work in progress may still fail: report it instead of stopping the run.
    client, headers = signed_in(workload, Client(raise_request_exception=False))
    if workload.method == "POST":
        response = send(workload, client, headers, workload.paths[0])
        if response.status_code != 201:
            workload.missing = f"create answered {response.status_code}: {response.content[:200]!r}"
        return
    good = []
    status = None
    for path in workload.paths:
        status = client.get(path, **headers).status_code
        if status == 200:
            good.append(path)
    if not good:
        workload.missing = f"{workload.paths[0]} answered {status}"
    workload.paths = good


def count_queries(workload: Workload, samples: int = 5) -> float:
    client, headers = signed_in(workload)
    counts = []
    for n in range(samples):
        path = workload.paths[n % len(workload.paths)]
        with CaptureQueriesContext(connection) as ctx:
            response = send(workload, client, headers, path)
        assert response.status_code in (200, 201), (path, response.status_code)
        counts.append(len(ctx.captured_queries))
    return sum(counts) / len(counts)


def cpu_per_request(workload: Workload, samples: int = 40) -> float:
    """CPU ms of one request in this process (Django test client, no query capture, after a
    warm-up): the Python side of what the server spends, without gunicorn, PostgreSQL or wrk."""
    client, headers = signed_in(workload)

    def one(n: int) -> None:
        send(workload, client, headers, workload.paths[n % len(workload.paths)])

    for n in range(10):
        one(n)
    started = time.process_time()
    for n in range(samples):
        one(n)
    return (time.process_time() - started) * 1000 / samples


# --- the server and wrk ----------------------------------------------------------------------


def start_server(root: Path = REPO_ROOT, port: int = PORT) -> subprocess.Popen:
    """gunicorn serving the checkout at `root` (bench ab serves a second one beside this)."""
    env = dict(os.environ)
    # One token drives hundreds of requests a second here: the per-person API throttle (6000/min
    # by default, a product policy) still runs and costs what it costs, with a limit wrk never
    # reaches.
    env.update(DEBUG="0", AXES_ENABLED="0", PYTHONUNBUFFERED="1", API_THROTTLE_USER="10000000/min")
    # Ahead of the editable install, which maps the packages to this repository.
    env["PYTHONPATH"] = str(root)
    env.pop("DJANGO_ENV", None)
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "servicedesk.wsgi",
            "--workers",
            # 2 sync workers as at the comparison point; BENCH_WORKERS tries other counts.
            os.environ.get("BENCH_WORKERS", "2"),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=root,
        env=env,
        start_new_session=True,
    )
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return server
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"gunicorn on port {port} did not come up")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


def login_cookie(username: str) -> str:
    """A real login through the login form; returns the Cookie header value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{BASE}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(
        f"{BASE}/accounts/login/", data=data, headers={"Referer": f"{BASE}/accounts/login/"}
    )
    opener.open(request).read()
    cookies = {c.name: c.value for c in jar}
    if "sessionid" not in cookies:
        raise RuntimeError(f"login as {username} failed")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def api_token(username: str) -> str:
    data = urllib.parse.urlencode({"username": username, "password": PASSWORD}).encode()
    with urllib.request.urlopen(f"{BASE}/api/v1/auth/token/", data=data) as response:
        return json.loads(response.read())["token"]


def _lua(workload: Workload, header: tuple[str, str]) -> str:
    paths = ", ".join(json.dumps(p) for p in workload.paths)
    lines = [
        f"local paths = {{{paths}}}",
        "local i = math.random(#paths)",
        f'wrk.headers["{header[0]}"] = {json.dumps(header[1])}',
        f'wrk.method = "{workload.method}"',
    ]
    if workload.body is not None:
        lines += [
            'wrk.headers["Content-Type"] = "application/json"',
            f"wrk.body = {json.dumps(json.dumps(workload.body))}",
        ]
    lines += [
        "request = function()",
        "  i = i % #paths + 1",
        "  return wrk.format(nil, paths[i])",
        "end",
    ]
    return "\n".join(lines) + "\n"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * _UNITS[unit]


def run_wrk(workload: Workload, header: tuple[str, str], duration: int, base: str = BASE) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(workload, header))
    command = [
        "wrk",
        f"-t{workload.threads}",
        f"-c{workload.connections}",
        f"-d{duration}s",
        "--timeout",
        "60s",
        "--latency",
        "-s",
        script.name,
        base,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    result = {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": _ms(re.search(r"\s50%\s+(\S+)", output).group(1)),
        "p99": _ms(re.search(r"\s99%\s+(\S+)", output).group(1)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "errors": 0,
    }
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        result["errors"] = int(bad.group(1))
    result["command"] = " ".join(command[:-3]) + " <script> " + base
    return result


def _ticket_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tickets_ticket")
        return cursor.fetchone()[0]


def _rested(baseline: float, *, patience: float = 120) -> float:
    """Wait (up to `patience` seconds) until the CPU reference is back within 15 % of the
    run's starting one, and return it. This machine was seen to slow down by up to 1.8x after a
    minute or two of full load and to recover when idle (a burstable virtual machine, it
    seems), so each workload starts on a rested machine and the table shows the reference
    before and after it."""
    deadline = time.monotonic() + patience
    while True:
        now = reference_ms(repeats=3)
        if now <= baseline * 1.15 or time.monotonic() > deadline:
            return now
        time.sleep(5)


def _settle_database() -> None:
    """Write out what seeding, copying or migrating left dirty before measuring: a checkpoint
    running under the first workloads made them up to 1.5x slower here."""
    from django.db import DatabaseError

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError as error:  # CHECKPOINT needs a superuser (or pg_checkpoint)
        print(f"no CHECKPOINT before measuring: {error}", flush=True)


def _label(count: int) -> str:
    """The history size a section is filed under: creates during runs add a few thousand
    tickets, which must not start a section of their own (100k stays 100k)."""
    if count >= 900_000:
        return "1m"
    if count >= 90_000:
        return "100k"
    return f"{round(count / 1000)}k"


def run(*, duration: int = 10, only: set[str] | None = None, label: str = "", write=True):
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    cpu_reference = reference_ms()  # before anything else runs
    # The schema of the commit measured (a seeded database may predate an index change).
    call_command("migrate", "--noinput", verbosity=0)
    _settle_database()
    tickets = _ticket_count()
    label = label or _label(tickets)
    workloads = [w for w in build_workloads() if not only or w.name in only]
    for workload in workloads:
        if not workload.missing:
            _fix_paths(workload)
        if not workload.missing:
            workload.result["queries"] = count_queries(workload)
            workload.result["cpu_ms"] = cpu_per_request(workload)
    server = start_server()
    try:
        cookies = {}
        tokens = {}
        for workload in workloads:
            if workload.missing:
                print(f"{workload.name}: not measured ({workload.missing})", flush=True)
                continue
            if workload.auth == "token":
                if workload.user not in tokens:
                    tokens[workload.user] = api_token(workload.user)
                header = ("Authorization", f"Token {tokens[workload.user]}")
            else:
                if workload.user not in cookies:
                    cookies[workload.user] = login_cookie(workload.user)
                header = ("Cookie", cookies[workload.user])
            workload.result["reference_before"] = _rested(cpu_reference)
            run_wrk(workload, header, 2)  # warm-up: imports, connections, caches
            workload.result.update(run_wrk(workload, header, duration))
            workload.result["reference_after"] = reference_ms(repeats=3)
            r = workload.result
            print(
                f"{workload.name}: {r['rps']:.1f} req/s, p50 {r['p50']:.1f} ms, "
                f"p99 {r['p99']:.1f} ms, {r['queries']:.1f} queries, "
                f"{r['cpu_ms']:.1f} CPU ms in-process, {r['errors']} errors, CPU reference "
                f"{r['reference_before']:.0f} -> {r['reference_after']:.0f} ms",
                flush=True,
            )
    finally:
        stop_server(server)
    extra = _sweep_and_clock(only)
    # Again at the end: this machine's speed was seen to drift by 1.7x within minutes.
    cpu_reference = (cpu_reference, reference_ms())
    print(f"CPU reference at start / end: {cpu_reference[0]:.0f} / {cpu_reference[1]:.0f} ms")
    if write:
        replace_section(
            f"http_{label}", _markdown(workloads, extra, tickets, label, duration, cpu_reference)
        )
    return workloads


class _Rollback(Exception):
    pass


def _timed_sweep(sweep, now) -> tuple[float, int, object]:
    """Run one sweep inside a transaction that is rolled back, so every run sees the same
    backlog (the sweep's own per-ticket transactions become savepoints)."""
    from django.db import transaction

    result = {}
    try:
        with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            result["outcome"] = sweep(now=now, budget_seconds=3600, schedule=False)
            result["seconds"] = time.perf_counter() - started
            result["queries"] = len(ctx.captured_queries)
            raise _Rollback
    except _Rollback:
        pass
    return result["seconds"], result["queries"], result["outcome"]


def _sweep_and_clock(only) -> list[str]:
    """Escalation sweep over the open backlog, timed in-process and rolled back."""
    if only and "sweep" not in only:
        return []
    from datetime import timedelta

    from django.utils import timezone

    from tickets.models import ACTIVE_STATUSES, Ticket

    try:
        from slas.escalation import sla_sweep
    except ImportError:
        return ["- escalation sweep: `slas.escalation.sla_sweep` not built yet"]
    lines = []
    backlog = Ticket.objects.filter(status__in=ACTIVE_STATUSES).count()
    for title, now, budget in (
        ("now (steady state)", timezone.now(), True),
        (
            "catch-up: 8 hours later, every level due by then fires",
            timezone.now() + timedelta(hours=8),
            True,
        ),
        # Stress, not the budget: the workers were down for a whole day.
        (
            "stress: 24 hours later (a day without workers)",
            timezone.now() + timedelta(hours=24),
            False,
        ),
    ):
        due = Ticket.objects.filter(next_sla_event_at__lte=now).count()
        seconds, queries, outcome = _timed_sweep(sla_sweep, now)
        print(f"sweep {title}: {due} due, {seconds:.2f} s, {queries} queries", flush=True)
        fired = getattr(outcome, "fired", "?")
        failed = getattr(outcome, "failed", 0)
        fired = f"{fired} ({failed} failed)" if failed else fired
        verdict = ("yes" if seconds < 1 else "**no**") if budget else "(stress)"
        lines.append(
            f"| {title} | {backlog:,} | {due:,} | {fired} | {seconds:.2f} | {queries:,} | "
            f"{verdict} |"
        )
    return [
        "Escalation sweep (`slas.escalation.sla_sweep(schedule=False)`, in-process, inside a "
        "rolled-back transaction so every run sees the same backlog; budget < 1 s):",
        "",
        "| sweep at | open backlog | due tickets | levels fired | seconds | queries | met? |",
        "|---|---:|---:|---:|---:|---:|---|",
        *lines,
    ]


def _fmt_ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _markdown(workloads, extra, tickets, label, duration, cpu_reference) -> str:
    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
    ).stdout.strip()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    lines = [
        f"## HTTP workloads at {tickets:,} tickets ({label})",
        "",
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC at commit {git} on "
        f"{platform.machine()} ({os.cpu_count()} CPUs), Python {platform.python_version()}, "
        f"PostgreSQL {pg.split()[0]}, Redis cache; gunicorn "
        f"{os.environ.get('BENCH_WORKERS', '2')} sync workers, DEBUG off. "
        f"Load average when the run ended: {load} (gunicorn, PostgreSQL, Redis and wrk all "
        "share these 2 cores; a load well above 2 means something else was running too). "
        "CPU reference (`bench/calibrate.py`, lower is faster) at the start / end of the run: "
        f"{cpu_reference[0]:.0f} / {cpu_reference[1]:.0f} ms.",
        f"Command: `python -m bench run` (each workload, once the CPU reference is back within "
        f"15 % of the run's first or after 2 min: 2 s warm-up, then {duration} s of "
        "`wrk -t2 -c8 --latency`, sequential creates `-t1 -c1`). Queries per request: Django "
        "test client + CaptureQueriesContext, same database, mean of 5 requests; CPU ms/req: "
        "the same client in the benchmark's process, 40 requests after 10 of warm-up (Python "
        "only: without gunicorn, PostgreSQL and wrk).",
        "Budget: p50 < 50 ms and at least the req/s shown (10× the comparison point where it was "
        "under 10 req/s, 2× for the queue, ticket page and creates).",
        "",
        "| workload | comparison point | req/s | p50 ms | p99 ms | queries/req | CPU ms/req "
        "| CPU reference before → after (ms) | budget (req/s) | met? |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for w in workloads:
        if w.missing:
            lines.append(
                f"| {w.title} | {w.baseline} | – | – | – | – | – | – | ≥ {w.min_rps:g} | "
                f"not measured: {w.missing} |"
            )
            continue
        r = w.result
        met = r["p50"] < 50 and r["rps"] >= w.min_rps and not r["errors"]
        if w.name == "api_create_seq":
            met = r["rps"] >= w.min_rps and not r["errors"]
        note = "yes" if met else "**no**"
        if r["errors"]:
            note += f" ({r['errors']} non-2xx)"
        lines.append(
            f"| {w.title} | {w.baseline} | {r['rps']:,.1f} | {_fmt_ms(r['p50'])} | "
            f"{_fmt_ms(r['p99'])} | {r['queries']:.1f} | {r['cpu_ms']:.1f} | "
            f"{r['reference_before']:.0f} → {r['reference_after']:.0f} | ≥ {w.min_rps:g} | "
            f"{note} |"
        )
    if extra:
        lines += ["", *extra]
    return "\n".join(lines)
