"""Micro-benchmark of the business-time clock (slas.clock), no Django needed.

    python bench/sla_clock.py            # print a markdown table
    python bench/sla_clock.py --write    # also update bench/RESULTS.md

Each row is the best of five timeit repeats; "calls" is the number of calls per repeat
(chosen by timeit's autorange).  "warm" rows reuse the per-date cache the clock keeps for a
zone and weekly schedule, as a long-running process does; "cold" rows empty that cache
before every call (what the first call after start-up, or for a new schedule, costs).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import sys
import timeit
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from slas.clock import BusinessCalendar  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "RESULTS.md"
START_MARKER = "<!-- sla_clock:start -->"
END_MARKER = "<!-- sla_clock:end -->"

BERLIN = ZoneInfo("Europe/Berlin")
GERMAN_HOLIDAYS_2026_2027 = {
    date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 1),
    date(2026, 5, 14), date(2026, 5, 25), date(2026, 10, 3), date(2026, 12, 25),
    date(2026, 12, 26), date(2027, 1, 1), date(2027, 3, 26), date(2027, 3, 29),
    date(2027, 5, 1), date(2027, 5, 6), date(2027, 5, 17), date(2027, 10, 3),
    date(2027, 12, 25), date(2027, 12, 26),
}  # fmt: skip
NINE_TO_FIVE = {day: [(time(9), time(17))] for day in range(5)}
H = timedelta(hours=1)
DAY = timedelta(days=1)
SPLIT_SHIFT = {
    day: [(time(7), time(11, 30)), (time(12, 15), time(16)), (time(18), time(22))]
    for day in range(6)
}


def cases() -> list[tuple[str, Callable[[], object]]]:
    office = BusinessCalendar("Europe/Berlin", NINE_TO_FIVE, GERMAN_HOLIDAYS_2026_2027)
    split = BusinessCalendar("America/New_York", SPLIT_SHIFT)
    always = BusinessCalendar.always_open("Europe/Berlin")

    friday_afternoon = datetime(2026, 3, 27, 15, 20, tzinfo=BERLIN)  # before the DST weekend
    monday = datetime(2026, 1, 5, 9, tzinfo=BERLIN)
    ten_years_later = datetime(2036, 1, 5, 9, tzinfo=BERLIN)
    year_of_business_time = timedelta(hours=52 * 40)

    def cold(call: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            office._cache.clear()  # private on purpose: measure the uncached path
            return call()

        return run

    # Sanity: the benchmark measures correct answers.
    deadline = office.add(monday, year_of_business_time)
    assert office.elapsed(monday, deadline) == year_of_business_time

    return [
        (
            "construct 9–17 calendar with 18 holidays",
            lambda: BusinessCalendar("Europe/Berlin", NINE_TO_FIVE, GERMAN_HOLIDAYS_2026_2027),
        ),
        ("add 4 h, 9–17 Berlin, over a DST weekend", lambda: office.add(friday_afternoon, 4 * H)),
        (
            "elapsed 3 days, 9–17 Berlin",
            lambda: office.elapsed(friday_afternoon, friday_afternoon + 3 * DAY),
        ),
        ("add 3 business days (24 h), 9–17 Berlin", lambda: office.add(friday_afternoon, 24 * H)),
        ("is_open, 9–17 Berlin", lambda: office.is_open(friday_afternoon)),
        (
            "add 1 year (2080 h), 9–17 Berlin, warm",
            lambda: office.add(monday, year_of_business_time),
        ),
        (
            "add 1 year (2080 h), 9–17 Berlin, cold",
            cold(lambda: office.add(monday, year_of_business_time)),
        ),
        ("add 365 days of business time, 9–17 Berlin", lambda: office.add(monday, 365 * DAY)),
        ("elapsed 10 years, 9–17 Berlin, warm", lambda: office.elapsed(monday, ten_years_later)),
        (
            "elapsed 10 years, 9–17 Berlin, cold",
            cold(lambda: office.elapsed(monday, ten_years_later)),
        ),
        ("add 40 h, 3-shift split day, New York", lambda: split.add(friday_afternoon, 40 * H)),
        (
            "elapsed 30 days, 3-shift split day, New York",
            lambda: split.elapsed(monday, monday + 30 * DAY),
        ),
        ("add 4 h, 24x7", lambda: always.add(friday_afternoon, 4 * H)),
        ("elapsed 10 years, 24x7", lambda: always.elapsed(monday, ten_years_later)),
    ]


def measure(call: Callable[[], object]) -> tuple[int, float]:
    """(calls per repeat, best µs per call)."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    best = min(timer.repeat(repeat=5, number=number))
    return number, best / number * 1e6


def table(rows: list[tuple[str, int, float]]) -> str:
    lines = ["| operation | calls | µs/call |", "|---|---:|---:|"]
    for name, calls, micros in rows:
        lines.append(f"| {name} | {calls} | {micros:,.2f} |")
    return "\n".join(lines)


def section(body: str) -> str:
    executable = os.path.relpath(sys.executable, Path.cwd())
    if executable.startswith(".."):
        executable = sys.executable
    command = shlex.join([executable, *sys.argv])
    machine = platform.processor() or platform.machine() or "unknown CPU"
    return "\n".join(
        [
            START_MARKER,
            "## SLA business clock (`slas.clock`)",
            "",
            f"Measured {date.today().isoformat()} on {machine} ({os.cpu_count()} CPUs), "
            f"Python {platform.python_version()}, with `{command}` from the repository root.",
            "Best of 5 timeit repeats; warm rows reuse the per-date cache, cold rows empty it"
            " before every call.",
            "",
            body,
            END_MARKER,
        ]
    )


def write_results(text: str) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(START_MARKER) + r".*?" + re.escape(END_MARKER), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text, current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    RESULTS.write_text(updated)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"update {RESULTS.name}")
    args = parser.parse_args(argv)
    rows = []
    for name, call in cases():
        calls, micros = measure(call)
        rows.append((name, calls, micros))
        print(f"{name}: {micros:,.2f} µs", file=sys.stderr)
    body = table(rows)
    print(body)
    if args.write:
        write_results(section(body))
        print(f"updated {RESULTS.relative_to(REPO_ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
