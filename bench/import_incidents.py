"""Benchmark: the whole ServiceNow incident log into PostgreSQL with `import_incidents`.

    python bench/import_incidents.py            # print the results
    python bench/import_incidents.py --write    # also update bench/RESULTS.md

Uses its own database (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/sd_bench_import),
dropped and re-created first: migrate, `seed_demo --accounts-only` (not timed), then three timed
runs of the real command, each a fresh process as a user would start it:

1. the first import of the whole file (tickets, events, clocks, people, reports roll-ups);
2. the same command again (the file is recognised: nothing to do);
3. the same command with --recheck (every incident compared with what is stored).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

LOG = REPO_ROOT.parent / "shared" / "data" / "uci-incident-event-log" / "incident_event_log.zip"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/sd_bench_import"


def _reset_database(url: str) -> None:
    import dj_database_url
    import psycopg2

    config = dj_database_url.parse(url)
    connection = psycopg2.connect(
        dbname="postgres",
        user=config["USER"],
        password=config["PASSWORD"] or None,
        host=config["HOST"],
        port=config["PORT"] or 5432,
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{config["NAME"]}"')
    connection.close()


def _manage(env: dict, *args: str) -> tuple[float, str]:
    """Run one management command; return (wall seconds, stdout). CPU seconds of the last
    call are left in _manage.cpu (user + system of the child process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    _manage.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"manage.py {' '.join(args)} failed ({result.returncode})")
    return elapsed, result.stdout


def run(*, write: bool) -> str:
    url = os.environ.get("BENCH_IMPORT_DATABASE_URL", DEFAULT_DB)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "servicedesk.settings"}
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")
    _reset_database(url)
    _manage(env, "migrate", "--noinput", "-v0")
    _manage(env, "seed_demo", "--accounts-only")
    load_before = os.getloadavg()[0]
    command = ["import_incidents", str(LOG), "--preset", "servicenow", "--no-progress"]
    first, first_out = _manage(env, *command)
    first_cpu = _manage.cpu
    load_after = os.getloadavg()[0]
    second, second_out = _manage(env, *command)
    second_cpu = _manage.cpu
    recheck, recheck_out = _manage(env, *command, "--recheck")
    recheck_cpu = _manage.cpu
    _, report = _manage(env, "incident_sla_report")

    def rows_line(text: str) -> str:
        match = re.search(r"rows read\s+([\d,]+)\s+\(([^)]*)\)", text)
        return f"{match.group(1)} rows ({match.group(2)})" if match else "?"

    machine = platform.processor() or platform.machine() or "unknown CPU"
    summary_lines = [line for line in first_out.splitlines() if line.strip()][:16]
    body = "\n".join(
        [
            "## Importing the ServiceNow incident log (`import_incidents`)",
            "",
            f"Measured {date.today().isoformat()} on {machine} ({os.cpu_count()} CPUs), "
            f"Python {platform.python_version()}, PostgreSQL, with "
            "`.venv/bin/python bench/import_incidents.py --write` from the repository root. "
            "Wall-clock time of the whole command in a fresh process (Django start-up "
            "included). The machine is shared: 1-minute load average "
            f"{load_before:.1f} before and {load_after:.1f} after the first run.",
            "",
            "Data: UCI dataset 498 (Amaral, Fantinato, Peres 2018; DOI 10.24432/C57S4H; "
            "CC BY 4.0), 141,712 rows, 24,918 incidents.",
            "",
            "| run | wall time | CPU of the command | |",
            "|---|---:|---:|---|",
            f"| first import, empty database | {first:.1f} s | {first_cpu:.1f} s | "
            f"{rows_line(first_out)} |",
            f"| same file again | {second:.1f} s | {second_cpu:.1f} s | "
            f"{second_out.strip().split(';')[0]} |",
            f"| same file, `--recheck` | {recheck:.1f} s | {recheck_cpu:.1f} s | "
            f"{rows_line(recheck_out)} |",
            "",
            "CPU is the command's own process (user + system); PostgreSQL's work is on top, "
            "in its own processes.",
            "",
            "Summary of the first run:",
            "",
            "```",
            *summary_lines,
            "```",
            "",
            "Comparison with the log's own `made_sla` (standard 'Standard support', "
            "office hours Berlin):",
            "",
            "```",
            report.strip(),
            "```",
        ]
    )
    if write:
        from bench.results import replace_section

        replace_section("import_incidents", body)
    return body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args(argv)
    print(run(write=args.write))


if __name__ == "__main__":
    main()
