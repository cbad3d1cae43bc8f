"""Dashboard response times at 10,000 and at 1,000,000 seeded tickets (issue 6 §6).

    python bench/dashboards.py                  # prepare both databases, measure, print a table
    python bench/dashboards.py --write          # also update bench/RESULTS.md
    python bench/dashboards.py --small 2000 --large 50000 --requests 20   # a quicker run

Two PostgreSQL databases of their own, one per size (defaults
postgres://postgres@127.0.0.1:5432/sd_bench_dash and …/sd_bench_dash_1m; override with
BENCH_SMALL_URL / BENCH_LARGE_URL). Preparing one: migrate, `seed_demo` (the demo organisation
and ~300 tickets filed through the services), bulk tickets (`tickets/bulk.py`, 180 days of
history) up to the size, `rebuild_rollups`, VACUUM ANALYZE. A database that already holds the
size is reused (its roll-ups are rebuilt); `--fresh` recreates both. `--large-base N` seeds
only N tickets into the large database and grows them to the size by SQL amplification
(bench/amplify.py: every copy keeps its original's instants, so per-day roll-up rows stay as
many and each holds `size / N` times the counts), minutes instead of an hour of seeding.

Measuring: one worker process per database answers "request page P once" through Django's
test client (in-process: no network or WSGI server in the figures) as the demo IT lead, or
the admin for the organisation map, with the default period (last 30 days). The two workers
are asked in turn, alternating which goes first, so whatever else the machine is doing weighs
on both sizes alike. After 5 warm-ups per page, `--requests` timed requests per page and size;
the table gives p50 and p95 in milliseconds and the SQL queries per request, twice: served
from the dashboards' cache (reports/cache.py; what a repeated request costs while nothing
changed) and computed (the cache invalidated before every request, as after a ticket change
in the department). The requirement: the department dashboard's p95 at the large size stays
within 1.5× its p95 at the small size — checked on the computed pages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run as a script, Python puts bench/ first on the path, where bench/http.py would shadow the
# standard library's http package: put the repository root there instead.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(REPO_ROOT)
elif str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
RESULTS = REPO_ROOT / "bench" / "RESULTS.md"
START_MARKER = "<!-- dashboards:start -->"
END_MARKER = "<!-- dashboards:end -->"
SMALL_URL = "postgres://postgres@127.0.0.1:5432/sd_bench_dash"
LARGE_URL = "postgres://postgres@127.0.0.1:5432/sd_bench_dash_1m"
LIMIT = 1.5
WARMUP = 5
MODES = ("cached", "computed")

PAGES = [
    # (label, username, url)
    ("department dashboard, IT as supplier", "lead", "/dashboards/it/supplier/"),
    ("department dashboard, IT as customer", "lead", "/dashboards/it/customer/"),
    ("department dashboard, last 90 days", "lead", "/dashboards/it/supplier/?period=90"),
    ("organisation map (admin, all pairs)", "admin", "/dashboards/map/"),
    ("API metrics, IT as supplier", "lead", "/api/v1/metrics/sla/?supplier_department=it"),
]  # fmt: skip
GATED = PAGES[0][0]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "servicedesk.settings")
    os.environ.setdefault("AXES_ENABLED", "false")
    import django

    django.setup()


# --- Preparing a database (runs in its own process) -----------------------------------------


def recreate_database(url: str) -> None:
    import dj_database_url
    import psycopg2

    config = dj_database_url.parse(url)
    connection = psycopg2.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"],
        dbname="postgres",
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}"')
        cursor.execute(f'CREATE DATABASE "{config["NAME"]}"')
    connection.close()


def prepare(url: str, size: int, fresh: bool, base: int = 0) -> dict:
    """Bring the database at `url` to `size` tickets with exact roll-ups; return timings."""
    if fresh:
        recreate_database(url)
    setup_django(url)
    from django.core.management import call_command
    from django.db import connection

    from reports.services import rollup_rebuild
    from tickets.bulk import bulk_seed_tickets
    from tickets.models import Ticket

    timings: dict[str, float] = {}
    call_command("migrate", "--noinput", verbosity=0)
    call_command("seed_demo", verbosity=0)
    have = Ticket.objects.count()
    seed_to = base if base and base < size else size
    if have < seed_to:
        started = time.perf_counter()
        bulk_seed_tickets(
            count=seed_to - have,
            seed=42 + have,
            progress=lambda n: log(f"  {n} tickets inserted"),
        )
        timings["bulk seeding"] = time.perf_counter() - started
    started = time.perf_counter()
    count = rollup_rebuild(progress=lambda n: log(f"  rebuilt {n}") if n % 100_000 == 0 else None)
    timings["rebuild_rollups"] = time.perf_counter() - started
    if count < size:
        from bench.amplify import amplify

        started = time.perf_counter()
        count = amplify(factor=round(size / count), log=log)
        timings["amplify"] = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    timings["vacuum analyze"] = time.perf_counter() - started
    return {"tickets": count, "timings": timings}


# --- A measuring worker (runs in its own process, one per database) -------------------------


def serve(url: str) -> None:
    """Answer lines "<page index>" with the milliseconds one request took (JSON per line)."""
    setup_django(url)
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    # The two workers share one cache server: each keeps its own keys (and generation tokens),
    # or one database's page would be served for the other.
    cache.key_prefix = f"bench-dashboards-{connection.settings_dict['NAME']}"

    from departments.models import User

    clients = {}
    for username in {username for _, username, _ in PAGES}:
        client = Client()
        client.force_login(User.objects.get(username=username))
        clients[username] = client
    from reports import cache as report_cache

    queries = {}
    for _, username, url_path in PAGES:
        client = clients[username]
        for _ in range(WARMUP):
            report_cache.everything_changed()
            assert client.get(url_path).status_code == 200, url_path
        for mode in MODES:
            if mode == "computed":
                report_cache.everything_changed()
            with CaptureQueriesContext(connection) as captured:
                client.get(url_path)
            queries.setdefault(mode, []).append(len(captured))
    print(json.dumps({"ready": True, "queries": queries}), flush=True)
    for line in sys.stdin:
        index, mode = line.split()
        _, username, url_path = PAGES[int(index)]
        if mode == "computed":
            # As after a ticket change: the next request computes the page.
            report_cache.everything_changed()
        else:
            # The other pages' computed requests invalidated everything: fill it (untimed).
            clients[username].get(url_path)
        started = time.perf_counter()
        response = clients[username].get(url_path)
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, url_path
        print(json.dumps({"ms": elapsed}), flush=True)


# --- Orchestration --------------------------------------------------------------------------


def _child(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )


def _ask(worker: subprocess.Popen, index: int, mode: str) -> float:
    worker.stdin.write(f"{index} {mode}\n")
    worker.stdin.flush()
    return json.loads(worker.stdout.readline())["ms"]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[-(-95 * len(ordered) // 100) - 1]


def measure(requests: int) -> dict:
    workers = {
        "small": _child("--serve", ARGS.small_url),
        "large": _child("--serve", ARGS.large_url),
    }
    queries = {name: json.loads(w.stdout.readline())["queries"] for name, w in workers.items()}
    times = {(name, i, m): [] for name in workers for i in range(len(PAGES)) for m in MODES}
    for round_ in range(requests):
        order = ("small", "large") if round_ % 2 == 0 else ("large", "small")
        for index in range(len(PAGES)):
            for mode in MODES:
                for name in order:
                    times[(name, index, mode)].append(_ask(workers[name], index, mode))
    for worker in workers.values():
        worker.stdin.close()
        worker.wait(timeout=60)
    result = {}
    for index, (label, *_rest) in enumerate(PAGES):
        for mode in MODES:
            result[(label, mode)] = {
                name: {
                    "p50": statistics.median(times[(name, index, mode)]),
                    "p95": p95(times[(name, index, mode)]),
                    "queries": queries[name][mode][index],
                }
                for name in workers
            }
    return result


def table(result: dict, prepared: dict) -> str:
    small, large = prepared["small"]["tickets"], prepared["large"]["tickets"]
    lines = [
        "## Dashboards at scale (`reports`)",
        "",
        f"Measured {date.today().isoformat()} on {platform.machine()} ({os.cpu_count()} CPUs), "
        f"Python {platform.python_version()}, PostgreSQL, with `.venv/bin/python "
        f"bench/dashboards.py {' '.join(sys.argv[1:])}`. Databases seeded with `seed_demo` + "
        "`tickets/bulk.py` (180 days of history, 9 departments, 28 services), roll-ups by "
        "`rebuild_rollups`"
        + (
            f"; the large one from {ARGS.large_base:,} seeded tickets amplified in SQL "
            "(bench/amplify.py)"
            if ARGS.large_base
            else ""
        )
        + ". Each page requested in-process (Django test client, no network or WSGI server) "
        "as the demo IT lead (organisation map: admin), default period (last 30 days); "
        f"{ARGS.requests} timed requests per page, size and mode after 5 warm-ups, the two "
        "sizes asked in turn so the machine's other load weighs on both alike. *Cached*: "
        "served from reports/cache.py (nothing changed since the last request); *computed*: "
        "the cache invalidated before each request, as after a ticket change in the department.",
        "",
        f"| page | mode | p50 @ {small:,} | p95 @ {small:,} | p50 @ {large:,} | p95 @ {large:,} "
        "| p95 ratio | SQL queries |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, *_rest in PAGES:
        for mode in MODES:
            a, b = result[(label, mode)]["small"], result[(label, mode)]["large"]
            lines.append(
                f"| {label} | {mode} | {a['p50']:.1f} ms | {a['p95']:.1f} ms | "
                f"{b['p50']:.1f} ms | {b['p95']:.1f} ms | {b['p95'] / a['p95']:.2f}× | "
                f"{a['queries']} → {b['queries']} |"
            )
    gated = result[(GATED, "computed")]
    ratio = gated["large"]["p95"] / gated["small"]["p95"]
    verdict = "holds" if ratio <= LIMIT else "FAILS"
    prep = "; ".join(
        f"{size} ({info['tickets']:,} tickets): "
        + (
            ", ".join(f"{name} {seconds:.0f} s" for name, seconds in info["timings"].items())
            or "as prepared by an earlier run"
        )
        for size, info in prepared.items()
    )
    lines += [
        "",
        f"Requirement (issue 6): the department dashboard's p95 at {large:,} tickets within "
        f"{LIMIT}× its p95 at {small:,}, computed (not cached): **{ratio:.2f}× — {verdict}**.",
        "",
        f"Preparation — {prep}.",
        "",
        "Why it holds: every count comes from daily roll-ups (a department's month is a few "
        "thousand rows at most, whatever the history), summed in one plain SQL statement per "
        "figure; medians and p90 are located in a fixed histogram bucket from the roll-ups and "
        "read exactly from the per-ticket facts of that one bucket; the live figures read "
        "partial indexes that hold only open tickets with a pending clock. A cached page costs "
        "the session, the permission check and one labels query; it is invalidated by every "
        "write to the department's facts or roll-ups, at the next pending deadline or warning "
        "instant, and by a rename (reports/cache.py).",
    ]
    return "\n".join(lines) + "\n"


def write_results(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{START_MARKER}\n{section}{END_MARKER}"
    if START_MARKER in text and END_MARKER in text:
        text = re.sub(
            re.escape(START_MARKER) + ".*?" + re.escape(END_MARKER),
            lambda _m: block,
            text,
            flags=re.S,
        )
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def main() -> int:
    if ARGS.serve:
        serve(ARGS.serve)
        return 0
    if ARGS.prepare:
        url, size, base = ARGS.prepare
        print(json.dumps(prepare(url, int(size), ARGS.fresh, int(base))), flush=True)
        return 0
    if ARGS.count:
        setup_django(ARGS.count)
        from tickets.models import Ticket

        print(json.dumps({"tickets": Ticket.objects.count(), "timings": {}}), flush=True)
        return 0
    prepared = {}
    for name, url, size in (
        ("small", ARGS.small_url, ARGS.small),
        ("large", ARGS.large_url, ARGS.large),
    ):
        if ARGS.measure_only:
            output, _ = _child("--count", url).communicate()
            prepared[name] = json.loads(output.strip().splitlines()[-1])
            continue
        log(f"preparing {name}: {size:,} tickets in {url}")
        base = ARGS.large_base if name == "large" else 0
        child = _child("--prepare", url, str(size), str(base), *(["--fresh"] if ARGS.fresh else []))
        output, _ = child.communicate()
        if child.returncode:
            log(f"preparing {name} failed")
            return 2
        prepared[name] = json.loads(output.strip().splitlines()[-1])
    log("measuring")
    result = measure(ARGS.requests)
    section = table(result, prepared)
    print(section)
    if ARGS.write:
        write_results(section)
        log(f"wrote {RESULTS}")
    gated = result[(GATED, "computed")]
    return 0 if gated["large"]["p95"] / gated["small"]["p95"] <= LIMIT else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small-url", default=os.environ.get("BENCH_SMALL_URL", SMALL_URL))
    parser.add_argument("--large-url", default=os.environ.get("BENCH_LARGE_URL", LARGE_URL))
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--fresh", action="store_true", help="recreate both databases")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--count", help=argparse.SUPPRESS)
    parser.add_argument(
        "--measure-only",
        action="store_true",
        help="measure the two databases as they are (prepared by an earlier run)",
    )
    parser.add_argument(
        "--large-base",
        type=int,
        default=0,
        help="seed this many tickets into the large database and amplify them to its size",
    )
    ARGS = parser.parse_args()
    sys.exit(main())
