"""The embedded default (`make run`): every migration applies on SQLite and demo data loads.

PostgreSQL runs the rest of the suite; this guards the no-server mode against
PostgreSQL-only SQL slipping into a migration.
"""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_migrations_and_seed_demo_run_on_sqlite(tmp_path):
    database = tmp_path / "embedded.sqlite3"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "memory://",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    for command in (["migrate", "--noinput"], ["seed_demo", "--history", "15"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(database) as connection:
        (tickets,) = connection.execute("SELECT count(*) FROM tickets_ticket").fetchone()
        (departments,) = connection.execute(
            "SELECT count(*) FROM departments_department"
        ).fetchone()
    assert tickets == 15
    assert departments >= 8
