"""Reads for the dashboards, the organisation map, the CSV exports and `/api/v1/metrics/sla/`.

SPEC §3 "Compliance figures", for the tickets filed in a period [from, to) (whole days in
settings.TIME_ZONE), cancelled tickets excluded, per metric:

- `met`: clocks stopped with elapsed ≤ target and no breach recorded;
- `breached`: clocks with a breach recorded, stopped with elapsed > target, or still running
  past their deadline at `now`;
- `compliance` = met / (met + breached), None when both are 0;
- `median`, `p90`: of the business time to stop over stopped clocks; for sorted x₀…xₙ₋₁ the
  median is x₍ₙ₋₁₎/₂ for odd n and the mean of the two middle values for even n
  (`statistics.median`), p90 is the nearest-rank value x⌈0.9·n⌉₋₁ (the same definitions as
  slas/metrics.py).

Counts come from the roll-ups (cost independent of history); the clocks that have run past
their deadline since their ticket last changed are read live through a partial index over the
open tickets. Quantiles are located in a histogram bucket from the roll-ups and read exactly
from the per-ticket facts of that one bucket (reports/buckets.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection, connections
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, Sum
from django.utils import timezone

from departments.models import Department, Service, User
from reports import buckets
from reports.facts import RATING_FIELDS
from reports.models import (
    HISTOGRAM_FIELDS,
    AgentRollup,
    BacklogRollup,
    DailyRollup,
    PairRollup,
    TicketFact,
)
from tickets.models import SatisfactionRating

METRICS = (("first_response", "fr"), ("resolution", "res"))
QUANTILE_NAMES = ("median", "p90")
COUNTERS = ("filed", "open", "cancelled", "fr_met", "fr_breached", "res_met", "res_breached")
AGE_BANDS = ((0, 1), (1, 3), (3, 7), (7, 30), (30, None))
LOW_RATING = 2


# --- Scope and period -----------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole reporting days [start, end) in settings.TIME_ZONE."""

    start: date
    end: date
    key: str = "custom"

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def start_instant(self) -> datetime:
        return _local_midnight(self.start)

    def end_instant(self) -> datetime:
        return _local_midnight(self.end)


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()), _tz())


def _tz():
    return timezone.get_default_timezone()


def reporting_today(now: datetime | None = None) -> date:
    return timezone.localtime(now or timezone.now(), _tz()).date()


def preset_period(key: str, *, today: date) -> Period:
    """this week (Monday to today), last 30 or 90 days (today included)."""
    tomorrow = today + timedelta(days=1)
    if key == "week":
        return Period(today - timedelta(days=today.weekday()), tomorrow, "week")
    if key == "90":
        return Period(tomorrow - timedelta(days=90), tomorrow, "90")
    return Period(tomorrow - timedelta(days=30), tomorrow, "30")


@dataclass(frozen=True)
class Scope:
    """Which tickets a figure covers. Empty tuples/None mean "no restriction"."""

    supplier_ids: tuple[int, ...] | None = None
    customer_ids: tuple[int, ...] | None = None
    # Supplier *or* customer among these (a lead's departments on both sides).
    either_ids: tuple[int, ...] | None = None
    exclude_supplier_ids: tuple[int, ...] = ()
    service_id: int | None = None
    priority: str | None = None

    def q(self, *, dims: Iterable[str]) -> Q:
        """Filter for a table having the given dimension columns."""
        dims = set(dims)
        q = Q()
        if self.supplier_ids is not None:
            q &= Q(supplier_id__in=self.supplier_ids)
        if self.exclude_supplier_ids:
            q &= ~Q(supplier_id__in=self.exclude_supplier_ids)
        if self.either_ids is not None:
            if "customer_id" not in dims:
                raise ValueError("this table has no customer dimension")
            q &= Q(supplier_id__in=self.either_ids) | Q(customer_id__in=self.either_ids)
        if self.customer_ids is not None:
            if "customer_id" not in dims:
                raise ValueError("this table has no customer dimension")
            q &= Q(customer_id__in=self.customer_ids)
        if self.service_id is not None:
            if "service_id" not in dims:
                raise ValueError("this table has no service dimension")
            q &= Q(service_id=self.service_id)
        if self.priority:
            if "priority" not in dims:
                raise ValueError("this table has no priority dimension")
            q &= Q(priority=self.priority)
        return q


DAILY_DIMS = ("supplier_id", "customer_id", "service_id", "priority")
PAIR_DIMS = ("supplier_id", "customer_id")
FACT_DIMS = ("supplier_id", "customer_id", "service_id", "priority", "assignee_id")
AGENT_DIMS = ("supplier_id", "assignee_id")
BACKLOG_DIMS = ("supplier_id", "customer_id")


def department_scope(department: Department, side: str) -> Scope:
    """The dashboard scope of a department as supplier, or as customer of other departments."""
    if side == "customer":
        return Scope(customer_ids=(department.pk,), exclude_supplier_ids=(department.pk,))
    return Scope(supplier_ids=(department.pk,))


# --- Figures --------------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts of one slice (a whole period, a week, a service, a pair…)."""

    filed: int = 0
    open: int = 0
    cancelled: int = 0
    fr_met: int = 0
    fr_breached: int = 0
    res_met: int = 0
    res_breached: int = 0
    ratings: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])

    def add_row(self, row: dict) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + (row.get(name) or 0))
        for i, name in enumerate(RATING_FIELDS):
            self.ratings[i] += row.get(name) or 0

    def compliance(self, prefix: str) -> float | None:
        met = getattr(self, f"{prefix}_met")
        total = met + getattr(self, f"{prefix}_breached")
        return met / total if total else None

    @property
    def fr_compliance(self) -> float | None:
        return self.compliance("fr")

    @property
    def res_compliance(self) -> float | None:
        return self.compliance("res")

    @property
    def rating_count(self) -> int:
        return sum(self.ratings)

    @property
    def rating_average(self) -> float | None:
        count = self.rating_count
        if not count:
            return None
        return sum((i + 1) * n for i, n in enumerate(self.ratings)) / count


def _period_q(period: Period) -> Q:
    return Q(day__gte=period.start, day__lt=period.end)


def overdue_rows(*, scope: Scope, now: datetime) -> list[dict]:
    """All of `scope`'s overdue pending clocks (see `_overdue`), for a page to read once and
    pass to the selectors below as `overdue=`."""
    return _overdue(scope=scope, now=now)


def _overdue(
    *,
    scope: Scope,
    now: datetime,
    period: Period | None = None,
    rows: list[dict] | None = None,
) -> list[dict]:
    """Facts whose pending running clock has passed its deadline since the ticket last
    changed: breached now (SPEC §3) though the roll-ups still hold them as pending.

    Only open tickets carry `next_deadline`, so this reads a partial index whose size is the
    open backlog that is overdue, not the history. `rows` from `overdue_rows` (same scope and
    now) saves the query.
    """
    if rows is not None:
        if period is None:
            return rows
        return [row for row in rows if period.start <= row["day"] < period.end]
    queryset = TicketFact.objects.filter(scope.q(dims=FACT_DIMS), next_deadline__lt=now)
    if period is not None:
        queryset = queryset.filter(_period_q(period))
    rows = []
    for row in queryset.values(
        "day",
        "supplier_id",
        "customer_id",
        "service_id",
        "priority",
        "assignee_id",
        "breached_any",
        "fr_deadline",
        "res_deadline",
    ):
        row["fr_breached"] = int(row["fr_deadline"] is not None and row["fr_deadline"] < now)
        row["res_breached"] = int(row["res_deadline"] is not None and row["res_deadline"] < now)
        rows.append(row)
    return rows


def _sums(queryset, names: Iterable[str], group_by: tuple[str, ...] = ()) -> list[dict]:
    """SUM of each of `names` over `queryset`'s rows, per `group_by` columns: one plain SQL
    statement with the queryset's WHERE.

    The same as `.values(*group_by).annotate(**{n: Sum(n)})`, without building a Django
    expression per column (the 129 counters and histogram columns took the ORM ~10 ms)."""
    names = list(names)
    query = queryset.query
    compiler = query.get_compiler(using=queryset.db)
    try:
        where, params = compiler.compile(query.where)
    except FullResultSet:
        where, params = "", []
    except EmptyResultSet:
        return [] if group_by else [dict.fromkeys(names, 0)]
    quote = connections[queryset.db].ops.quote_name
    table = quote(queryset.model._meta.db_table)
    key = (table, tuple(names), group_by)
    select = _SUM_SELECT.get(key)
    if select is None:
        select = _SUM_SELECT[key] = ", ".join(
            [*(quote(c) for c in group_by), *(f"SUM({quote(n)})" for n in names)]
        )
    sql = f"SELECT {select} FROM {table}"
    if where:
        sql += f" WHERE {where}"
    if group_by:
        sql += f" GROUP BY {', '.join(quote(c) for c in group_by)}"
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    columns = [*group_by, *names]
    rows = []
    for values in fetched:
        row = dict(zip(columns, values, strict=True))
        for name in names:
            row[name] = row[name] or 0
        rows.append(row)
    if not group_by and not rows:
        rows = [dict.fromkeys(names, 0)]
    return rows


_SUM_SELECT: dict[tuple, str] = {}


def _sum_fields(queryset, names: Iterable[str]) -> dict:
    return _sums(queryset, names)[0]


def _quantiles(
    *, scope: Scope, period: Period, histograms: dict[str, list[int]]
) -> dict[str, dict[str, timedelta | None]]:
    """Exact median and p90 of business time to stop per metric prefix (module docstring).

    Each wanted rank is located in its histogram bucket from the roll-ups; the values are
    then read from the facts of those buckets only, every bucket's slice in one statement."""
    wanted: dict[tuple[str, int], set[int]] = defaultdict(set)  # (prefix, bucket) → offsets
    located: dict[tuple[str, int], tuple[int, int] | None] = {}  # (prefix, rank) → place
    plans: dict[str, tuple[int, int, int] | None] = {}
    for prefix, histogram in histograms.items():
        n = sum(histogram)
        if not n:
            plans[prefix] = None
            continue
        # ⌈0.9·n⌉ in integer arithmetic (no float rounding at any n).
        plans[prefix] = ((n - 1) // 2, n // 2, -(-9 * n // 10) - 1)
        for rank in plans[prefix]:
            before = 0
            for index, count in enumerate(histogram):
                if rank < before + count:
                    if index == buckets.ZERO_BUCKET:
                        located[(prefix, rank)] = None  # exactly zero: nothing to read
                    else:
                        located[(prefix, rank)] = (index, rank - before)
                        wanted[(prefix, index)].add(rank - before)
                    break
                before += count
    values: dict[tuple[str, int], list[timedelta]] = {}
    if wanted:
        parts, params, keys = [], [], []
        for number, ((prefix, index), offsets) in enumerate(sorted(wanted.items())):
            first = min(offsets)
            sql, part_params = (
                TicketFact.objects.filter(
                    scope.q(dims=FACT_DIMS), _period_q(period), **{f"{prefix}_bucket": index}
                )
                # Equal values may come in any order: the value at a rank is the same.
                .order_by(f"{prefix}_elapsed")
                .values_list(f"{prefix}_elapsed", flat=True)[first : max(offsets) + 1]
                .query.sql_with_params()
            )
            parts.append(f"SELECT {number}, q{number}.* FROM ({sql}) q{number}")
            params += part_params
            keys.append(((prefix, index), first))
        # Durations come back as the backend stores them (SQLite: microseconds).
        column = TicketFact._meta.get_field("fr_elapsed").get_col(TicketFact._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        rows: dict[int, list] = defaultdict(list)
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            for number, value in cursor.fetchall():
                for converter in converters:
                    value = converter(value, column, connection)
                rows[number].append(value)
        for number, (bucket_key, first) in enumerate(keys):
            values[bucket_key] = (first, sorted(rows[number]))

    def value_at(prefix: str, rank: int) -> timedelta:
        place = located[(prefix, rank)]
        if place is None:
            return timedelta(0)
        index, offset = place
        first, slice_ = values[(prefix, index)]
        return slice_[offset - first]

    result = {}
    for prefix, plan in plans.items():
        if plan is None:
            result[prefix] = dict.fromkeys(QUANTILE_NAMES)
            continue
        low, high, p90 = plan
        median = (
            value_at(prefix, low)
            if low == high
            else (value_at(prefix, low) + value_at(prefix, high)) / 2
        )
        result[prefix] = {"median": median, "p90": value_at(prefix, p90)}
    return result


def _pairs_suffice(scope: Scope) -> bool:
    """Whether the narrow day × supplier × customer roll-up answers for `scope`."""
    return scope.service_id is None and not scope.priority


def _rollup_for(scope: Scope):
    if _pairs_suffice(scope):
        return PairRollup.objects.filter(scope.q(dims=PAIR_DIMS))
    return DailyRollup.objects.filter(scope.q(dims=DAILY_DIMS))


def _fact_histograms(*, scope: Scope, period: Period) -> dict[str, int]:
    counts = dict.fromkeys(HISTOGRAM_FIELDS["fr"] + HISTOGRAM_FIELDS["res"], 0)
    base = TicketFact.objects.filter(scope.q(dims=FACT_DIMS), _period_q(period))
    for prefix in ("fr", "res"):
        rows = (
            base.filter(**{f"{prefix}_bucket__isnull": False})
            .values(f"{prefix}_bucket")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            counts[f"{prefix}_h{row[f'{prefix}_bucket']}"] = row["n"]
    return counts


def sla_figures(
    *, scope: Scope, period: Period, now: datetime | None = None, overdue: list | None = None
) -> dict:
    """SPEC §3 compliance figures of `scope` in `period`; the one selector behind both the
    dashboards and `/api/v1/metrics/sla/`."""
    now = now or timezone.now()
    if _pairs_suffice(scope):
        histogram_names = HISTOGRAM_FIELDS["fr"] + HISTOGRAM_FIELDS["res"]
        totals = _sum_fields(
            PairRollup.objects.filter(scope.q(dims=PAIR_DIMS), _period_q(period)),
            [*COUNTERS, *RATING_FIELDS, *histogram_names],
        )
    else:
        # Filtered by service or priority (the API): counts from the five-dimension roll-up,
        # the histograms from the facts of the period.
        totals = _sum_fields(
            DailyRollup.objects.filter(scope.q(dims=DAILY_DIMS), _period_q(period)),
            [*COUNTERS, *RATING_FIELDS],
        )
        totals.update(_fact_histograms(scope=scope, period=period))
    overdue = _overdue(scope=scope, now=now, period=period, rows=overdue)
    tally = Tally()
    tally.add_row(totals)
    for row in overdue:
        tally.fr_breached += row["fr_breached"]
        tally.res_breached += row["res_breached"]
    figures: dict = {}
    histograms = {
        prefix: [totals[name] for name in HISTOGRAM_FIELDS[prefix]] for _, prefix in METRICS
    }
    all_quantiles = _quantiles(scope=scope, period=period, histograms=histograms)
    for metric, prefix in METRICS:
        histogram = histograms[prefix]
        quantiles = all_quantiles[prefix]
        figures[metric] = {
            "met": getattr(tally, f"{prefix}_met"),
            "breached": getattr(tally, f"{prefix}_breached"),
            "compliance": tally.compliance(prefix),
            "stopped": sum(histogram),
            "median": quantiles["median"],
            "p90": quantiles["p90"],
            "histogram": histogram,
        }
    figures["filed"] = tally.filed
    figures["cancelled"] = tally.cancelled
    figures["open"] = tally.open
    figures["satisfaction"] = {
        "count": tally.rating_count,
        "average": tally.rating_average,
        "distribution": list(tally.ratings),
    }
    return figures


def live_figures(
    *,
    scope: Scope,
    now: datetime | None = None,
    overdue: list | None = None,
    days: list[dict] | None = None,
) -> dict:
    """Open tickets now, how many are past a warning threshold, how many are breached now.

    `days` from `backlog_days` (same scope) saves the backlog query."""
    now = now or timezone.now()
    if days is None:
        backlog = _sum_fields(
            BacklogRollup.objects.filter(scope.q(dims=BACKLOG_DIMS)), ["open", "breached"]
        )
    else:
        backlog = {
            "open": sum(row["open_sum"] for row in days),
            "breached": sum(row["breached_sum"] for row in days),
        }
    fact_q = scope.q(dims=FACT_DIMS)
    # Overdue without a recorded breach: breached now, though the roll-ups hold it as open.
    newly_breached = sum(
        not row["breached_any"] for row in _overdue(scope=scope, now=now, rows=overdue)
    )
    at_risk = (
        TicketFact.objects.filter(fact_q, warn_at__lte=now).exclude(next_deadline__lt=now).count()
    )
    return {
        "open": backlog["open"],
        "breached_now": backlog["breached"] + newly_breached,
        "at_risk": at_risk,
    }


def backlog_days(*, scope: Scope) -> list[dict]:
    """Open tickets (and those with a breach recorded) per filing day, from the roll-up."""
    return list(
        BacklogRollup.objects.filter(scope.q(dims=BACKLOG_DIMS), open__gt=0)
        .values("day")
        .annotate(open_sum=Sum("open"), breached_sum=Sum("breached"))
    )


def backlog_by_age(
    *,
    scope: Scope,
    today: date,
    now: datetime | None = None,
    overdue: list | None = None,
    days: list[dict] | None = None,
) -> list[dict]:
    """Open tickets in age bands (days since filing): total and breached now per band."""
    now = now or timezone.now()
    rows = backlog_days(scope=scope) if days is None else days
    by_day: dict[date, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        by_day[row["day"]][0] += row["open_sum"]
        by_day[row["day"]][1] += row["breached_sum"]
    for row in _overdue(scope=scope, now=now, rows=overdue):
        if not row["breached_any"]:
            by_day[row["day"]][1] += 1
    bands = []
    for low, high in AGE_BANDS:
        newest = today - timedelta(days=low)  # filed on or before this day
        oldest = today - timedelta(days=high) if high is not None else None
        count = breached = 0
        for day, (open_count, breached_count) in by_day.items():
            if day <= newest and (oldest is None or day > oldest):
                count += open_count
                breached += breached_count
        bands.append(
            {
                "low": low,
                "high": high,
                "open": count,
                "breached": breached,
                # Filing days covered, for the link to the tickets behind the figure.
                "filed_from": oldest + timedelta(days=1) if oldest else None,
                "filed_before": newest + timedelta(days=1),
            }
        )
    return bands


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_trend(
    *,
    scope: Scope,
    period: Period,
    now: datetime | None = None,
    min_weeks: int = 8,
    overdue: list | None = None,
) -> list[dict]:
    """Per ISO week (Monday start): filed, compliance per metric. Covers the period, widened
    to at least `min_weeks` weeks ending with the period's last week."""
    now = now or timezone.now()
    last_week = _week_start(period.last_day)
    first_week = min(_week_start(period.start), last_week - timedelta(weeks=min_weeks - 1))
    span = Period(first_week, last_week + timedelta(days=7))
    rows = _sums(_rollup_for(scope).filter(_period_q(span)), (*COUNTERS, *RATING_FIELDS), ("day",))
    weeks: dict[date, Tally] = {}
    week = first_week
    while week <= last_week:
        weeks[week] = Tally()
        week += timedelta(days=7)
    for row in rows:
        weeks[_week_start(row["day"])].add_row(row)
    for row in _overdue(scope=scope, now=now, period=span, rows=overdue):
        tally = weeks[_week_start(row["day"])]
        tally.fr_breached += row["fr_breached"]
        tally.res_breached += row["res_breached"]
    return [
        {"week": start, "week_end": start + timedelta(days=7), "tally": tally}
        for start, tally in weeks.items()
    ]


def breakdown(
    *,
    scope: Scope,
    period: Period,
    by: str,
    now: datetime | None = None,
    overdue: list | None = None,
    labels: dict | None = None,
    rows: list[dict] | None = None,
) -> list[dict]:
    """Tallies of the period per service / priority / customer / supplier / agent.

    `labels` from `labels_from_rows` saves the name lookups; `rows` from
    `service_priority_rows` saves the query of the service and priority breakdowns."""
    now = now or timezone.now()
    column = {
        "service": "service_id",
        "priority": "priority",
        "customer": "customer_id",
        "supplier": "supplier_id",
        "agent": "assignee_id",
    }[by]
    if by == "agent":
        queryset = AgentRollup.objects.filter(scope.q(dims=AGENT_DIMS), _period_q(period))
    elif by in ("customer", "supplier"):
        queryset = _rollup_for(scope).filter(_period_q(period))
    else:
        queryset = DailyRollup.objects.filter(scope.q(dims=DAILY_DIMS), _period_q(period))
    if rows is None:
        rows = _sums(queryset, (*COUNTERS, *RATING_FIELDS), (column,))
    tallies: dict = defaultdict(Tally)
    for row in rows:
        tallies[row[column]].add_row(row)
    for row in _overdue(scope=scope, now=now, period=period, rows=overdue):
        tally = tallies[row[column]]
        tally.fr_breached += row["fr_breached"]
        tally.res_breached += row["res_breached"]
    names = _labels(by, tallies.keys()) if labels is None else _labels_from(labels, by)
    result = [
        {"key": key, "label": names.get(key, str(key)), "tally": tally}
        for key, tally in tallies.items()
        if tally.filed
    ]
    result.sort(key=lambda item: (-item["tally"].filed, item["label"]))
    if by == "priority":
        result.sort(key=lambda item: item["key"])
    return result


def service_priority_rows(*, scope: Scope, period: Period) -> list[dict]:
    """The period's sums per service × priority: both breakdowns from one query."""
    return _sums(
        DailyRollup.objects.filter(scope.q(dims=DAILY_DIMS), _period_q(period)),
        (*COUNTERS, *RATING_FIELDS),
        ("service_id", "priority"),
    )


def _labels(by: str, keys: Iterable) -> dict:
    keys = [k for k in keys if k]
    if by in ("customer", "supplier"):
        labels = dict(Department.objects.filter(pk__in=keys).values_list("pk", "name"))
        labels[0] = "—"
        return labels
    if by == "service":
        return dict(Service.objects.filter(pk__in=keys).values_list("pk", "name"))
    if by == "agent":
        labels = {
            user.pk: user.get_full_name() or user.username
            for user in User.objects.filter(pk__in=keys).only("first_name", "last_name", "username")
        }
        labels[0] = "—"
        return labels
    return {key: key for key in keys}


def labels_from_rows(rows: list[tuple]) -> dict:
    """Names (and department slugs) by id from `reports.cache.label_rows`."""
    labels: dict = {"department": {}, "slug": {}, "service": {}, "agent": {}}
    for kind, pk, name, second, third, _flags in rows:
        if kind == "d":
            labels["department"][pk] = name
            labels["slug"][pk] = second
        elif kind == "s":
            labels["service"][pk] = name
        else:
            labels["agent"][pk] = f"{second} {third}".strip() or name
    return labels


def _labels_from(labels: dict, by: str) -> dict:
    if by in ("customer", "supplier"):
        return {**labels.get("department", {}), 0: "—"}
    if by == "agent":
        return {**labels.get("agent", {}), 0: "—"}
    if by == "service":
        return labels.get("service", {})
    return {}


def next_change(
    *, scope: Scope, now: datetime, overdue: list[dict], period: Period | None = None
) -> datetime | None:
    """The next instant at which a figure of `scope` that depends on "now" changes by itself:
    a pending deadline or a warning instant passes (two index probes, plus the later
    deadlines of clocks already overdue). None: nothing pending."""
    base = TicketFact.objects.filter(scope.q(dims=FACT_DIMS))
    if period is not None:
        base = base.filter(_period_q(period))
    candidates = [
        base.filter(**{f"{column}__gt": now})
        .order_by(column)
        .values_list(column, flat=True)
        .first()
        for column in ("next_deadline", "warn_at")
    ]
    for row in overdue:
        candidates += [row["fr_deadline"], row["res_deadline"]]
    return min((c for c in candidates if c is not None and c > now), default=None)


def low_ratings(*, scope: Scope, period: Period, limit: int = 20) -> list[SatisfactionRating]:
    """The latest ratings of LOW_RATING or less, with comments, for tickets filed in `period`."""
    queryset = SatisfactionRating.objects.filter(
        rating__lte=LOW_RATING,
        ticket__created_at__gte=period.start_instant(),
        ticket__created_at__lt=period.end_instant(),
    ).exclude(comment="")
    # Issue 9: a comment is the content of a confidential request; its rating still counts in
    # the figures, but its words are not listed on a dashboard.
    queryset = queryset.exclude(ticket__confidential=True)
    if scope.supplier_ids is not None:
        queryset = queryset.filter(supplier_department_id__in=scope.supplier_ids)
    if scope.exclude_supplier_ids:
        queryset = queryset.exclude(supplier_department_id__in=scope.exclude_supplier_ids)
    if scope.customer_ids is not None:
        queryset = queryset.filter(customer_department_id__in=scope.customer_ids)
    return list(
        queryset.select_related("ticket", "supplier_department", "customer_department").order_by(
            "-created_at", "-pk"
        )[:limit]
    )


def organisation_pairs(
    *, period: Period, department_ids: set[int] | None, now: datetime | None = None
) -> list[dict]:
    """Supplier × customer pairs of the period with volume, compliance and satisfaction.

    `department_ids` None = the whole organisation; otherwise only the pairs where one of
    them is the supplier or the customer (a lead's own rows).
    """
    now = now or timezone.now()
    queryset = PairRollup.objects.filter(_period_q(period))
    overdue_q = Q(next_deadline__lt=now) & _period_q(period)
    if department_ids is not None:
        mine = Q(supplier_id__in=department_ids) | Q(customer_id__in=department_ids)
        queryset = queryset.filter(mine)
        overdue_q &= mine
    rows = _sums(queryset, (*COUNTERS, *RATING_FIELDS), ("supplier_id", "customer_id"))
    pairs: dict[tuple[int, int], Tally] = defaultdict(Tally)
    for row in rows:
        pairs[(row["supplier_id"], row["customer_id"])].add_row(row)
    for row in TicketFact.objects.filter(overdue_q).values(
        "supplier_id", "customer_id", "fr_deadline", "res_deadline"
    ):
        tally = pairs[(row["supplier_id"], row["customer_id"])]
        tally.fr_breached += int(row["fr_deadline"] is not None and row["fr_deadline"] < now)
        tally.res_breached += int(row["res_deadline"] is not None and row["res_deadline"] < now)
    return [
        {"supplier_id": s, "customer_id": c, "tally": tally}
        for (s, c), tally in pairs.items()
        if tally.filed
    ]


def weakest_links(pairs: list[dict], *, limit: int = 3, min_volume: int = 5) -> set[tuple]:
    """The pairs with the lowest resolution compliance (then first response, then rating)
    among those with enough volume to mean something."""

    def score(pair):
        tally = pair["tally"]
        values = [v for v in (tally.res_compliance, tally.fr_compliance) if v is not None]
        rating = tally.rating_average
        return (
            min(values) if values else 1.0,
            (rating / 5) if rating is not None else 1.0,
        )

    candidates = [
        p
        for p in pairs
        if p["tally"].filed >= min_volume and score(p) < (1.0, 1.0) and p["customer_id"]
    ]
    candidates.sort(key=score)
    return {(p["supplier_id"], p["customer_id"]) for p in candidates[:limit]}


# --- The tickets behind a figure ------------------------------------------------------------


def _state_q(state: str, now: datetime) -> Q:
    """Facts in a dashboard state; the same definitions as the figures above."""
    if state == "open":
        return Q(is_open=True)
    if state == "cancelled":
        return Q(is_cancelled=True)
    if state == "breached_now":
        return Q(is_open=True) & (Q(breached_any=True) | Q(next_deadline__lt=now))
    if state == "at_risk":
        return Q(warn_at__lte=now) & ~Q(next_deadline__lt=now)
    for prefix in ("fr", "res"):
        met = Q(**{f"{prefix}_outcome": "met"})
        breached = Q(**{f"{prefix}_outcome": "breached"}) | Q(**{f"{prefix}_deadline__lt": now})
        if state == f"{prefix}_met":
            return met
        if state == f"{prefix}_breached":
            return breached
        if state == f"{prefix}_counted":
            # The tickets a compliance figure counts: met / (met + breached).
            return met | breached
        if state == f"{prefix}_stopped":
            return Q(**{f"{prefix}_bucket__isnull": False})
    if state == "rated":
        return (
            Q(rating_1__gt=0)
            | Q(rating_2__gt=0)
            | Q(rating_3__gt=0)
            | Q(rating_4__gt=0)
            | Q(rating_5__gt=0)
        )
    if state == "low_rated":
        return Q(rating_1__gt=0) | Q(rating_2__gt=0)
    if state.startswith("rating_") and state[7:] in {"1", "2", "3", "4", "5"}:
        return Q(**{f"{state}__gt": 0})
    return Q()


def dashboard_tickets(*, user, filters: dict, now: datetime | None = None):
    """The tickets behind a dashboard figure that `user` may list, newest first.

    `filters` are TicketFilterForm's cleaned data. The figure and this list use the same
    per-ticket facts, so a count and its list agree.
    """
    from servicedesk import permissions
    from tickets.models import Ticket

    now = now or timezone.now()
    facts = TicketFact.objects.all()
    for name, column in (
        ("supplier_department", "supplier_id"),
        ("customer_department", "customer_id"),
    ):
        if filters.get(name) is not None:
            facts = facts.filter(**{column: filters[name].pk})
    if filters.get("either_department") is not None:
        pk = filters["either_department"].pk
        facts = facts.filter(Q(supplier_id=pk) | Q(customer_id=pk))
    if filters.get("not_supplier_department") is not None:
        facts = facts.exclude(supplier_id=filters["not_supplier_department"].pk)
    if filters.get("service"):
        facts = facts.filter(service_id=filters["service"])
    if filters.get("priority"):
        facts = facts.filter(priority=filters["priority"])
    if filters.get("assignee") is not None:
        facts = facts.filter(assignee_id=filters["assignee"])
    if filters.get("filed_from"):
        facts = facts.filter(day__gte=filters["filed_from"])
    if filters.get("filed_before"):
        facts = facts.filter(day__lt=filters["filed_before"])
    if filters.get("state"):
        facts = facts.filter(_state_q(filters["state"], now))
    if filters.get("bucket") is not None:
        # The form allows a bucket only with fr_stopped / res_stopped.
        prefix = filters["state"].split("_")[0]
        facts = facts.filter(**{f"{prefix}_bucket": filters["bucket"]})
    visible = permissions.visible_tickets_filter(user) or Q(pk__isnull=False)
    return (
        Ticket.objects.filter(pk__in=facts.values("ticket_id"))
        .filter(permissions.dashboard_tickets_filter(user))
        # Whether the list may link to the ticket page (can_view_ticket, as a column).
        .annotate(viewable=ExpressionWrapper(visible, output_field=BooleanField()))
        .select_related("supplier_department", "customer_department", "service", "assignee")
        .order_by("-created_at", "-pk")
    )
