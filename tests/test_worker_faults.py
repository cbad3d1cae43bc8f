"""Fault tolerance of escalation with a REAL Celery worker, REAL Redis and PostgreSQL (SPEC §4).

Each test starts its own redis-server on a free port (never the shared one: we stop ours),
Celery worker(s) — and beat where the safety-net sweep is part of the story — as
subprocesses pointed at pytest-django's test database, and points this process's Celery app
at the same Redis. Every wait polls a condition with a deadline; nothing sleeps to assert.

Tickets are served under a 24×7 standard (P3: first response 10 min) with the ladder
first response 50 % → assignee + supplier lead, 100 % → supplier lead. A ticket "filed 6
minutes ago" therefore has its 50 % level due; "filed 11 minutes ago" has both levels due.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from slas import escalation
from slas.models import Escalation
from slas.services import calendar_save
from tests.escalation_helpers import celery_broker
from tests.factories import ServiceFactory, standard
from tickets import services
from tickets.models import Event, Notification, Ticket

pytestmark = [pytest.mark.worker]

BASE_DIR = Path(__file__).resolve().parent.parent
# Generous: the suite shares a small machine with other suites; a healthy run takes seconds.
DEADLINE = 60.0
MIN = timedelta(minutes=1)
LADDER = [
    ("first_response", 0.5, ["notify_assignee", "notify_supplier_lead"]),
    ("first_response", 1.0, ["notify_supplier_lead"]),
]
TARGETS = {p: (10 * MIN, 60 * MIN) for p in ("P1", "P2", "P3", "P4")}


# --- Harness ----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], object], *, what: str, timeout: float = DEADLINE, logs=()):
    """Poll `condition` until truthy; at the deadline fail with `what` and the logs' tails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.1)
    tails = "\n".join(f"--- {log.name} ---\n{log.read()[-3000:]}" for log in logs)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server we may stop and start (the shared one on 6379 is never touched)."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for the worker fault tests"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.answers, what=f"redis-server on port {self.port}")

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


class Log:
    def __init__(self, path: Path):
        self.path = path
        self.name = path.name

    def read(self) -> str:
        return self.path.read_text(errors="replace") if self.path.exists() else ""

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.read()))


class Process:
    """A Celery worker or beat subprocess in its own process group."""

    def __init__(self, command: list[str], env: dict, log: Log):
        self.log = log
        self.handle = log.path.open("ab")
        self.process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole group: parent and pool children die without any cleanup."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.handle.close()


class Stack:
    def __init__(self, tmp_path: Path, redis: RedisServer):
        self.tmp = tmp_path
        self.redis = redis
        self.mail_dir = tmp_path / "mail"
        self.pause_file = tmp_path / "pause"
        self.processes: list[Process] = []
        database = settings.DATABASES["default"]
        auth = quote(database["USER"] or "")
        if database["PASSWORD"]:
            auth += ":" + quote(database["PASSWORD"])
        # The test database pytest-django created (test_<name>), not the configured one.
        self.database_url = (
            f"postgres://{auth}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
            f"/{database['NAME']}"
        )

    def env(self) -> dict:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "servicedesk.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "SLA_SWEEP_SECONDS": "1",
            "NOTIFICATION_EMAIL_SWEEP_SECONDS": "2",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(self.mail_dir),
            "SLA_ESCALATION_TEST_PAUSE_FILE": str(self.pause_file),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("CELERY_BROKER_URL", None)
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        return env

    def worker(self, name: str, *, concurrency: int = 2, wait: bool = True) -> Process:
        log = Log(self.tmp / f"worker-{name}.log")
        process = Process(
            [sys.executable, "-m", "celery", "-A", "servicedesk", "worker", "-n",
             f"{name}@%h", "--pool", "prefork", "--concurrency", str(concurrency),
             "--loglevel", "INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            self.env(),
            log,
        )  # fmt: skip
        self.processes.append(process)
        if wait:
            self.wait_ready(process)
        return process

    def wait_ready(self, process: Process) -> None:
        wait_for(
            lambda: " ready." in process.log.read(),
            what=f"{process.log.name} to be ready",
            logs=[process.log],
        )

    def beat(self) -> Process:
        log = Log(self.tmp / "beat.log")
        process = Process(
            [sys.executable, "-m", "celery", "-A", "servicedesk", "beat", "--loglevel",
             "INFO", "--schedule", str(self.tmp / "beat-schedule")],
            self.env(),
            log,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def logs(self) -> list[Log]:
        return [process.log for process in self.processes]

    def emails(self) -> int:
        if not self.mail_dir.exists():
            return 0
        return sum(
            path.read_text(errors="replace").count("\nMessage-ID: ")
            for path in self.mail_dir.iterdir()
        )

    def shutdown(self) -> None:
        for process in self.processes:
            process.kill()
            process.handle.close()


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack(transactional_db, redis_server, tmp_path):
    """Worker/beat factory; this process publishes to the same private Redis meanwhile.

    Depends on transactional_db so it is torn down (processes killed) before the database
    is flushed: committed data is what the worker sees.
    """
    (tmp_path / "mail").mkdir()
    running = Stack(tmp_path, redis_server)
    with celery_broker(redis_server.url):
        try:
            yield running
        finally:
            running.shutdown()


@pytest.fixture
def service(org):
    always = calendar_save(name="Always", timezone_name="UTC", always_open=True)
    return ServiceFactory(
        department=org.it,
        name="Around the clock",
        standard=standard(name="24x7", calendar=always, targets=TARGETS, ladder=LADDER),
    )


def file_ticket(org, service, *, ago: timedelta, title: str = "Server down") -> Ticket:
    """A P3 request filed `ago` ago, assigned to the IT agent (through the services).

    One transaction: the ETA task queued on commit must not reach a worker before the
    assignment, or the firing would hold the row the assignment waits for.
    """
    filed_at = timezone.now() - ago
    with transaction.atomic():
        ticket = services.ticket_create(
            requester=org.employee, service=service, title=title, now=filed_at
        )
        return services.ticket_assign(
            ticket=ticket, actor=org.it_lead, assignee=org.it_agent, now=filed_at
        )


def levels(ticket) -> list[str]:
    return sorted(
        f"{metric}:{threshold:.2f}"
        for metric, threshold in Escalation.objects.filter(ticket=ticket).values_list(
            "metric", "threshold"
        )
    )


def all_mailed() -> bool:
    return Notification.objects.filter(emailed_at__isnull=True).count() == 0


def sweeps_done(log: Log) -> int:
    return log.count(r"Task slas\.tasks\.sla_sweep\[[^\]]+\] succeeded")


# --- Faults -----------------------------------------------------------------------------------


def test_worker_killed_mid_firing_records_and_notifies_once_after_restart(org, service, stack):
    stack.pause_file.touch()
    stack.beat()
    first = stack.worker("first")
    ticket = file_ticket(org, service, ago=6 * MIN)
    wait_for(
        lambda: "escalation paused for a fault test" in first.log.read(),
        what="the worker to be inside the firing transaction",
        logs=stack.logs(),
    )
    # Inside: Escalation and Notification rows are written but not committed.
    assert levels(ticket) == []
    first.kill()
    stack.pause_file.unlink()

    second = stack.worker("second")
    wait_for(
        lambda: levels(ticket) == ["first_response:0.50"] and all_mailed(),
        what="the level to fire after the restart",
        logs=stack.logs(),
    )
    # More sweeps come and go over the same ticket: still once.
    seen = sweeps_done(second.log)
    wait_for(lambda: sweeps_done(second.log) >= seen + 2, what="two more sweeps", logs=stack.logs())
    assert levels(ticket) == ["first_response:0.50"]
    assert sorted(
        Notification.objects.filter(ticket=ticket).values_list("recipient__username", flat=True)
    ) == ["itagent", "itlead"]
    assert stack.emails() == 2
    assert Event.objects.filter(ticket=ticket, kind=Event.Kind.ESCALATION).count() == 1


def test_pool_process_killed_mid_firing_is_redelivered_and_fires_once(org, service, stack):
    """acks_late + reject_on_worker_lost: the message of a killed pool process comes back."""
    stack.pause_file.touch()
    worker = stack.worker("solo", concurrency=1)
    ticket = file_ticket(org, service, ago=6 * MIN)  # its ETA task is due at once
    match = wait_for(
        lambda: re.search(r"escalation paused for a fault test \(pid (\d+)\)", worker.log.read()),
        what="the pool process to be inside the firing transaction",
        logs=stack.logs(),
    )
    os.kill(int(match.group(1)), signal.SIGKILL)
    wait_for(
        lambda: (
            "WorkerLostError" in worker.log.read() or "exited with 'signal 9" in worker.log.read()
        ),
        what="the worker to notice its lost pool process",
        logs=stack.logs(),
    )
    stack.pause_file.unlink()
    wait_for(
        lambda: levels(ticket) == ["first_response:0.50"] and all_mailed(),
        what="the redelivered task to fire the level",
        logs=stack.logs(),
    )
    assert Notification.objects.filter(ticket=ticket).count() == 2
    assert stack.emails() == 2
    assert Event.objects.filter(ticket=ticket, kind=Event.Kind.ESCALATION).count() == 1


def test_two_workers_and_several_sweeps_racing_fire_each_level_once(org, service, stack):
    from slas.tasks import sla_sweep

    # Queue everything first, then let two workers (four pool processes) loose on it.
    tickets = [file_ticket(org, service, ago=11 * MIN, title=f"Due {n}") for n in range(30)]
    for _ in range(6):
        sla_sweep.delay()
    stack.worker("left", wait=False)
    stack.worker("right", wait=False)
    wait_for(
        lambda: (
            Escalation.objects.count() == 60
            and not Ticket.objects.filter(next_sla_event_at__lte=timezone.now()).exists()
            and all_mailed()
        ),
        what="every due level to fire",
        timeout=2 * DEADLINE,
        logs=stack.logs(),
    )
    for ticket in tickets:
        assert levels(ticket) == ["first_response:0.50", "first_response:1.00"]
    assert Event.objects.filter(kind=Event.Kind.ESCALATION).count() == 60
    # 50 %: assignee + lead; 100 %: lead — one notification per recipient and level.
    assert Notification.objects.count() == 30 * 3
    assert stack.emails() == 30 * 3


def test_redis_outage_does_not_stop_work_and_due_levels_fire_once_it_is_back(
    org, service, stack, redis_server
):
    beat = stack.beat()
    steady = stack.worker("steady")
    before_outage = file_ticket(org, service, ago=5 * MIN - 4 * timedelta(seconds=1))
    redis_server.stop()

    # Employees keep filing and updating requests while the broker is gone.
    during_outage = file_ticket(org, service, ago=5 * MIN - 2 * timedelta(seconds=1))
    already_due = file_ticket(org, service, ago=6 * MIN, title="Filed while Redis was down")
    services.ticket_transition(ticket=before_outage, actor=org.it_agent, to_status="open")
    services.ticket_comment(ticket=during_outage, author=org.employee, body="Any news?")
    assert Ticket.objects.get(pk=before_outage.pk).status == "open"
    assert during_outage.comments.count() == 1

    due = max(
        Ticket.objects.filter(pk__in=[before_outage.pk, during_outage.pk]).values_list(
            "next_sla_event_at", flat=True
        )
    )
    wait_for(lambda: timezone.now() > due, what="the levels to fall due during the outage")
    redis_server.start()  # same port, empty: every queued message is lost

    tickets = [before_outage, during_outage, already_due]
    wait_for(
        lambda: all(levels(t) == ["first_response:0.50"] for t in tickets) and all_mailed(),
        what="every level that fell due to fire once Redis is back",
        timeout=2 * DEADLINE,
        logs=stack.logs(),
    )
    assert Escalation.objects.count() == 3
    assert Notification.objects.count() == 3 * 2
    assert stack.emails() == 3 * 2
    # The same worker and beat rode out the outage (servicedesk/broker.py).
    assert steady.process.poll() is None
    assert beat.process.poll() is None


def test_rolled_back_firing_notifies_nobody_even_with_a_worker_running(org, service, stack):
    stack.worker("watcher")
    with pytest.raises(RuntimeError), transaction.atomic():
        doomed = file_ticket(org, service, ago=6 * MIN, title="Rolled back")
        fired = escalation.sla_escalate(ticket_id=doomed.pk, now=timezone.now())
        assert len(fired.fired) == 1  # notifications were written in this transaction…
        raise RuntimeError("…which then fails")
    # A control ticket fired by the worker after the rollback: once its e-mails are out, any
    # work the rolled-back transaction might have queued would have been done too.
    control = file_ticket(org, service, ago=6 * MIN, title="Control")
    wait_for(
        lambda: levels(control) == ["first_response:0.50"] and all_mailed(),
        what="the control ticket to be fired and mailed",
        logs=stack.logs(),
    )
    assert not Ticket.objects.filter(title="Rolled back").exists()
    assert Notification.objects.exclude(ticket=control).count() == 0
    assert stack.emails() == 2  # the control's two recipients, nobody else
