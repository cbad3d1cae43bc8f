"""Start web + Celery worker + Celery beat together; Ctrl-C stops all of them.

Used by `make run`. Honours HOST and PORT; prints the URL and the demo accounts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def child_environment(*, host: str, port: str, environ) -> dict[str, str]:
    """The environment of the web, worker and beat processes."""
    env = {**environ, "DJANGO_SETTINGS_MODULE": "servicedesk.settings"}
    # Links in e-mails point at this server unless SITE_URL says otherwise.
    env.setdefault("SITE_URL", f"http://{host}:{port}")
    return env


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    python = sys.executable
    # The same folder the settings give kombu's filesystem transport (CELERY_DATA_DIR).
    data_dir = Path(os.environ.get("CELERY_DATA_DIR", BASE_DIR / "var" / "celery"))
    for sub in ("queue", "control"):
        (data_dir / sub).mkdir(parents=True, exist_ok=True)
    env = child_environment(host=host, port=port, environ=os.environ)
    commands = {
        "web": [
            python,
            "-m",
            "gunicorn",
            "servicedesk.wsgi:application",
            "--bind",
            f"{host}:{port}",
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "2"),
            "--access-logfile",
            "-",
        ],
        "worker": [
            python,
            "-m",
            "celery",
            "-A",
            "servicedesk",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            os.environ.get("WORKER_CONCURRENCY", "2"),
        ],
        "beat": [
            python,
            "-m",
            "celery",
            "-A",
            "servicedesk",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(data_dir.parent / "celerybeat-schedule"),
        ],
    }
    stopping = False

    def stop(*_args) -> None:
        nonlocal stopping
        stopping = True

    # Handlers first: a Ctrl-C while the children start must still stop every one of them.
    # Each child runs in its own session, so the terminal's SIGINT reaches only this
    # process, which then stops all of them (no worker or beat left running on its own).
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    processes: dict[str, subprocess.Popen] = {}
    exit_code = 0
    url = f"http://{host}:{port}/"
    try:
        for name, cmd in commands.items():
            processes[name] = subprocess.Popen(cmd, cwd=BASE_DIR, env=env, start_new_session=True)
        print(
            f"\n  servicedesk is running at {url}\n"
            "  demo accounts (password 'demo'): admin (admin), lead (lead of IT),\n"
            "  agent (agent of IT), employee (Finance)\n"
            f"  health: {url}healthz · API docs: {url}api/docs/\n"
            "  Ctrl-C stops web, worker and beat.\n",
            flush=True,
        )
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"{name} exited with {process.returncode}; stopping", flush=True)
                    exit_code = process.returncode or 1
                    stopping = True
            time.sleep(0.5)
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        print("  stopped web, worker and beat.", flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
