"""EXPLAIN ANALYZE of the hot queries: the slowest queries each workload really issues.

For every HTTP workload the harness replays two requests in-process, captures their SQL
(CaptureQueriesContext), re-runs each read query under EXPLAIN (ANALYZE, BUFFERS) and keeps
the slowest ones with their plans. This follows the code as it changes instead of a
hand-kept list of queries.
"""

from __future__ import annotations

import json
import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from bench.http import _fix_paths, _label, _ticket_count, build_workloads, signed_in
from bench.results import replace_section

TOP = 2


def _explain(sql: str) -> tuple[float, str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + sql)
        lines = [row[0] for row in cursor.fetchall()]
    total = 0.0
    for line in lines:
        match = re.search(r"Execution Time: ([\d.]+) ms", line)
        if match:
            total = float(match.group(1))
    return total, "\n".join(lines)


def _readable(sql: str) -> tuple[str, str] | None:
    """(what to EXPLAIN, what to show) for a captured read: a SELECT as it is; a statement
    prepared on the server (servicedesk/prepared.py) as `EXECUTE name(values)`, shown with the
    statement PostgreSQL holds under that name. None for writes."""
    if sql.startswith("PREPARE "):
        sql = sql[sql.index("; EXECUTE ") + 2 :]
    if sql.startswith("EXECUTE "):
        name = sql[len("EXECUTE ") : sql.index("(")]
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements WHERE name = %s", [name])
            row = cursor.fetchone()
        return (sql, f"{row[0]}\n-- {sql}") if row else None
    return (sql, sql) if sql.lstrip().upper().startswith("SELECT") else None


def _captured(workload) -> list[str]:
    client, headers = signed_in(workload)
    sql = []
    for path in workload.paths[:2]:
        with CaptureQueriesContext(connection) as ctx:
            client.get(path, **headers)
        sql += [q["sql"] for q in ctx.captured_queries]
    return sql


def plans(*, write: bool = True) -> None:
    tickets = _ticket_count()
    sections = [
        f"## Query plans of the hot queries at {tickets:,} tickets",
        "",
        "`python -m bench plans`: for each read workload, the "
        f"{TOP} slowest SELECTs it issues, under `EXPLAIN (ANALYZE, BUFFERS)`.",
    ]
    for workload in build_workloads():
        if workload.missing or workload.method != "GET":
            continue
        _fix_paths(workload)
        if workload.missing:
            continue
        timed = []
        seen = set()
        for captured in _captured(workload):
            readable = _readable(captured)
            if readable is None:
                continue
            explained, sql = readable
            key = re.sub(r"\d+", "N", sql)
            if key in seen:
                continue
            seen.add(key)
            ms, plan = _explain(explained)
            timed.append((ms, sql, plan))
        timed.sort(key=lambda item: -item[0])
        total = sum(ms for ms, _, _ in timed)
        sections += [
            "",
            f"### {workload.title}",
            "",
            f"{len(timed)} distinct SELECTs, {total:.1f} ms of execution in total.",
        ]
        for ms, sql, plan in timed[:TOP]:
            short = sql if len(sql) < 1500 else sql[:1500] + " …"
            sections += ["", f"{ms:.2f} ms:", "", "```sql", short, "```", "", "```", plan, "```"]
        print(json.dumps({workload.name: [round(ms, 2) for ms, _, _ in timed[:TOP]]}))
    if write:
        label = _label(tickets)
        replace_section(f"plans_{label}", "\n".join(sections))
