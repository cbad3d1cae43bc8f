"""Dashboard pages: permissions per role, linked figures, query budgets, CSV exports."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html import unescape

import pytest
import time_machine

from reports import exports
from reports.models import Export
from tests.factories import MembershipFactory, UserFactory
from tests.test_reports_figures import NOW, history  # noqa: F401 (fixture)
from tickets import services as ticket_services
from tickets.models import Ticket

WEEK = "period=custom&start=2026-01-12&until=2026-01-18"


@pytest.fixture
def hr_lead(org):
    user = UserFactory(username="hrlead", home_department=org.hr)
    MembershipFactory(user=user, department=org.hr, role="lead")
    return user


def signed_in(client, user):
    client.force_login(user)
    return client


def links(html: str) -> dict[str, str]:
    """href → link text of every drill-down link on a page."""
    found = {}
    for href, text in re.findall(r'href="(/dashboards/tickets/[^"]*)"[^>]*>([^<]*)<', html):
        found[unescape(href)] = text.strip()
    return found


# --- Permissions ----------------------------------------------------------------------------


def test_a_lead_of_hr_cannot_open_it_dashboard(client, org, hr_lead):
    signed_in(client, hr_lead)
    assert client.get("/dashboards/it/supplier/").status_code == 404
    assert client.get("/dashboards/it/customer/").status_code == 404
    assert client.get("/dashboards/hr/supplier/").status_code == 200
    assert client.get("/dashboards/hr/customer/").status_code == 200


@pytest.mark.parametrize(
    "username, status",
    [("employee", 404), ("itagent", 404), ("itlead", 200), ("admin", 200), ("finlead", 404)],
)
def test_it_dashboard_per_role(client, org, username, status):
    people = (org.employee, org.it_agent, org.it_lead, org.admin, org.finance_lead)
    user = {person.username: person for person in people}[username]
    signed_in(client, user)
    assert client.get("/dashboards/it/supplier/").status_code == status


@pytest.mark.parametrize(
    "url",
    [
        "/dashboards/",
        "/dashboards/map/",
        "/dashboards/satisfaction/",
        "/dashboards/tickets/",
        "/dashboards/export/pairs.csv",
    ],
)
def test_dashboard_area_is_404_for_agents_and_employees(client, org, url):
    for user in (org.employee, org.it_agent):
        signed_in(client, user)
        assert client.get(url).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, org):
    response = client.get("/dashboards/it/supplier/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_unknown_department_or_side_is_404(client, org):
    signed_in(client, org.admin)
    assert client.get("/dashboards/nowhere/supplier/").status_code == 404
    assert client.get("/dashboards/it/sideways/").status_code == 404


def test_nav_shows_dashboards_to_leads_only(client, org):
    signed_in(client, org.it_lead)
    assert "/dashboards/" in client.get("/catalogue/").content.decode()
    signed_in(client, org.it_agent)
    assert 'href="/dashboards/"' not in client.get("/catalogue/").content.decode()


# --- The dashboard ----------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_dashboard_shows_the_hand_computed_figures(client, history):  # noqa: F811
    signed_in(client, history.it_lead)
    response = client.get(f"/dashboards/it/supplier/?{WEEK}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "80.0 %" in html  # both compliance figures
    assert "2 h" in html and "6 h" in html  # first response median and p90
    assert "4 h" in html and "15 h" in html  # resolution median and p90
    for chart in ("chart-trend", "chart-backlog", "chart-histogram", "chart-satisfaction"):
        assert f'id="{chart}"' in html and f'data-chart="{chart}"' in html
    assert "vendor/chart.js/chart.umd.min.js" in html
    assert "<script>" not in html  # no inline scripts: data travels in json_script blocks


@time_machine.travel(NOW, tick=False)
def test_every_figure_links_to_exactly_the_tickets_behind_it(client, history):  # noqa: F811
    signed_in(client, history.it_lead)
    html = client.get(f"/dashboards/it/supplier/?{WEEK}").content.decode()
    checked = 0
    for href, text in links(html).items():
        if not text.isdigit():
            continue
        listed = client.get(href)
        assert listed.status_code == 200, href
        count = re.search(r"<strong data-count>(\d+)</strong>", listed.content.decode())
        assert int(count.group(1)) == int(text), href
        checked += 1
    assert checked > 40


def test_every_compliance_figure_links_to_the_tickets_it_counts(client, history):  # noqa: F811
    """A "% met" counts met / (met + breached): its link lists the met and the breached."""
    signed_in(client, history.it_lead)
    html = client.get(f"/dashboards/it/supplier/?{WEEK}").content.decode()
    percentages = {href: text for href, text in links(html).items() if text.endswith("%")}
    assert any("state=fr_counted" in href for href in percentages)
    assert any("state=res_counted" in href for href in percentages)
    for href in percentages:
        counted = href.replace("_counted", "_met"), href.replace("_counted", "_breached")
        listed = [
            int(
                re.search(
                    r"<strong data-count>(\d+)</strong>", client.get(url).content.decode()
                ).group(1)
            )
            for url in (href, *counted)
        ]
        assert listed[0] == listed[1] + listed[2] > 0 or listed == [0, 0, 0], href


@time_machine.travel(NOW, tick=False)
def test_histogram_chart_spans_only_the_occupied_buckets(client, history):  # noqa: F811
    """Empty leading and trailing buckets are trimmed; empty ones inside the range stay, so
    the bars keep their place on the time axis. Each table row links to its bucket."""
    import json

    from reports import buckets

    signed_in(client, history.it_lead)
    response = client.get(f"/dashboards/it/supplier/?{WEEK}")
    chart = json.loads(
        re.search(r'id="chart-histogram"[^>]*>(.*?)</script>', response.content.decode()).group(1)
    )
    # Hand-computed (history fixture): first response 0.5 h … 6 h, resolution 3 h … 15 h.
    first, last = buckets.bucket_of(timedelta(minutes=30)), buckets.bucket_of(timedelta(hours=15))
    assert chart["labels"] == [buckets.bucket_label(i) for i in range(first, last + 1)]
    fr, res = (dataset["data"] for dataset in chart["datasets"])
    assert len(fr) == len(res) == last - first + 1
    assert fr[0] == 1 and res[-1] == 1 and 0 in fr  # an interior empty bucket is kept
    assert (sum(fr), sum(res)) == (5, 4)  # T5 still runs towards resolution
    html = response.content.decode()
    three_hours = buckets.bucket_of(timedelta(hours=3))
    href = f"state=res_stopped&amp;bucket={three_hours}"
    assert href in html
    listed = client.get(
        f"/dashboards/tickets/?supplier=it&filed_from=2026-01-12&filed_before=2026-01-19"
        f"&state=res_stopped&bucket={three_hours}"
    ).content.decode()
    assert re.search(r"<strong data-count>2</strong>", listed)  # T3 and T6: 3 h each
    assert buckets.bucket_label(three_hours) in listed
    bad = client.get("/dashboards/tickets/?supplier=it&bucket=3")
    assert bad.status_code == 400  # a bucket without a stopped-clock state


@time_machine.travel(NOW, tick=False)
def test_customer_side_lists_the_suppliers(client, history):  # noqa: F811
    signed_in(client, history.finance_lead)
    html = client.get(f"/dashboards/finance/customer/?{WEEK}").content.decode()
    assert "By supplier department" in html and ">IT<" in html
    assert "By agent" not in html


@time_machine.travel(NOW, tick=False)
def test_low_ratings_with_comments_are_shown_to_the_lead(client, history):  # noqa: F811
    ticket = Ticket.objects.get(title="T2")
    ticket_services.ticket_rate(
        ticket=ticket, actor=history.employee, rating=1, comment="Nobody answered", now=NOW
    )
    signed_in(client, history.it_lead)
    html = client.get(f"/dashboards/it/supplier/?{WEEK}").content.decode()
    assert "Nobody answered" in html


def test_invalid_custom_period_falls_back_with_a_message(client, org):
    signed_in(client, org.it_lead)
    response = client.get(
        "/dashboards/it/supplier/?period=custom&start=2026-02-01&until=2026-01-01"
    )
    assert response.status_code == 200
    assert "The last day cannot be before the first." in response.content.decode()
    response = client.get("/dashboards/it/supplier/?period=custom&start=notadate")
    assert response.status_code == 200


def test_far_away_custom_dates_are_refused_not_a_500(client, org):
    signed_in(client, org.it_lead)
    response = client.get(
        "/dashboards/it/supplier/?period=custom&start=9999-12-30&until=9999-12-31"
    )
    assert response.status_code == 200
    assert "between the years 1900 and 9000" in response.content.decode()
    assert client.get("/dashboards/export/weekly.csv?department=it&period=custom"
                      "&start=0001-01-01&until=0001-01-02").status_code == 400  # fmt: skip


def test_dashboard_query_budget_is_independent_of_volume(
    client,
    history,  # noqa: F811
    django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):
    signed_in(client, history.it_lead)
    url = f"/dashboards/it/supplier/?{WEEK}"
    with django_assert_max_num_queries(30) as captured:
        computed = client.get(url).content.decode()
    computing = len(captured)
    # Served again from the cache: the session, the user, the permission and the labels.
    with django_assert_max_num_queries(8):
        again = client.get(url).content.decode()
    assert _figures(again) == _figures(computed)
    # Committed (the test's own transaction holds the commit, so the hooks run here).
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(15):
            ticket_services.ticket_create(
                requester=history.employee,
                service=history.service,
                title=f"More {n}",
                now=NOW - timedelta(days=3),
            )
    # The new tickets made the cached copy stale: computed again, at the same cost.
    with django_assert_max_num_queries(computing):
        html = client.get(url).content.decode()
    assert links(html)["/dashboards/tickets/?supplier=it&state=open"] == "16"


def _figures(html: str) -> str:
    return html[html.index('<section aria-labelledby="h-now"') : html.index("</main>")]


def _breached_now(html: str) -> int:
    return int(links(html)["/dashboards/tickets/?supplier=it&state=breached_now"])


def test_cached_dashboard_follows_the_clock_without_any_write(
    client,
    history,  # noqa: F811
    django_assert_max_num_queries,
):
    """A deadline passing changes "breached now" with no write to bump a generation: the
    cached copy is valid only until the next pending deadline or warning instant."""
    from tests.test_reports_figures import berlin

    # Filed Friday 10:00: its 4 h first-response deadline is Friday 14:00.
    ticket_services.ticket_create(
        requester=history.employee, service=history.service, title="Fri", now=berlin(16, 10)
    )
    signed_in(client, history.it_lead)
    url = f"/dashboards/it/supplier/?{WEEK}"
    with time_machine.travel(berlin(16, 12), tick=False):
        before = _breached_now(client.get(url).content.decode())
    # Still valid half an hour later (its warning instant is 13:00): served from the cache.
    with time_machine.travel(berlin(16, 12.5), tick=False), django_assert_max_num_queries(8):
        assert _breached_now(client.get(url).content.decode()) == before
    with time_machine.travel(berlin(16, 15), tick=False):
        assert _breached_now(client.get(url).content.decode()) == before + 1


@time_machine.travel(NOW, tick=False)
def test_cached_dashboard_shows_renamed_labels(client, history):  # noqa: F811
    from departments.models import Department, Service

    signed_in(client, history.it_lead)
    url = f"/dashboards/it/supplier/?{WEEK}"
    assert "Laptop problem" in client.get(url).content.decode()
    Service.objects.filter(pk=history.service.pk).update(name="Notebook trouble")
    Department.objects.filter(pk=history.finance.pk).update(name="Accounts")
    html = client.get(url).content.decode()
    assert "Notebook trouble" in html and "Laptop problem" not in html
    assert "Accounts" in html


@time_machine.travel(NOW, tick=False)
def test_cached_dashboard_and_map_follow_a_rebuild(
    client,
    history,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    from reports import services as report_services

    signed_in(client, history.admin)
    url = f"/dashboards/it/supplier/?{WEEK}"
    assert "priority=P1" not in client.get(url).content.decode()
    map_before = client.get(f"/dashboards/map/?{WEEK}").content.decode()
    # Changed behind the services' back (a bulk load), then the roll-ups rebuilt from raw.
    Ticket.objects.filter(title="T1").update(priority="P1")
    Ticket.objects.filter(title="T2").update(customer_department=history.hr)
    with django_capture_on_commit_callbacks(execute=True):
        report_services.rollup_rebuild()
    assert "priority=P1" in client.get(url).content.decode()
    assert client.get(f"/dashboards/map/?{WEEK}").content.decode() != map_before


def test_organisation_map_admin_sees_all_lead_sees_own_rows(client, history, hr_lead):  # noqa: F811
    ticket_services.ticket_create(
        requester=history.it_agent,
        service=history.hr_service,
        title="Letter",
        now=NOW - timedelta(days=2),
    )
    signed_in(client, history.admin)
    html = client.get(f"/dashboards/map/?{WEEK}").content.decode()
    assert "Finance" in html and "HR" in html
    signed_in(client, history.finance_lead)
    html = client.get(f"/dashboards/map/?{WEEK}").content.decode()
    assert '<th scope="row">IT</th>' in html
    assert '<th scope="row">HR</th>' not in html  # HR serves IT, not Finance


def test_organisation_map_query_budget(
    client,
    history,  # noqa: F811
    django_assert_max_num_queries,
    django_capture_on_commit_callbacks,
):
    signed_in(client, history.admin)
    with django_assert_max_num_queries(15):
        assert client.get(f"/dashboards/map/?{WEEK}").status_code == 200
    with django_assert_max_num_queries(5):  # again: from the cache (session, user, labels)
        before = client.get(f"/dashboards/map/?{WEEK}").content.decode()
    assert '<th scope="row">HR</th>' not in before
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.ticket_create(
            requester=history.employee, service=history.hr_service, title="Letter", now=NOW
        )
    html = client.get(f"/dashboards/map/?{WEEK}").content.decode()
    assert '<th scope="row">HR</th>' in html  # the new pair: the cached map was invalidated


def test_satisfaction_page(client, history):  # noqa: F811
    ticket = Ticket.objects.get(title="T1")
    ticket_services.ticket_rate(ticket=ticket, actor=history.employee, rating=4, now=NOW)
    signed_in(client, history.it_lead)
    html = client.get(f"/dashboards/satisfaction/?{WEEK}").content.decode()
    assert "4.00" in html
    # Every figure links to its tickets: the average to the rated ones, each star's count to
    # the tickets rated that many stars.
    found = links(html)
    assert any(text == "4.00" and "state=rated" in href for href, text in found.items())
    fours = [href for href in found if "state=rating_4" in href and "supplier=it" in href]
    assert fours and found[fours[0]] == "1"
    listed = client.get(fours[0]).content.decode()
    assert re.search(r"<strong data-count>1</strong>", listed)


def test_ticket_list_bad_filters_answer_400(client, org):
    signed_in(client, org.admin)
    assert client.get("/dashboards/tickets/?supplier=nowhere").status_code == 400
    assert client.get("/dashboards/tickets/?filed_from=2026-99-01").status_code == 400
    assert client.get("/dashboards/tickets/?state=weird").status_code == 400


def test_ticket_list_of_a_lead_is_limited_to_its_departments(client, history, hr_lead):  # noqa: F811
    signed_in(client, hr_lead)
    html = client.get("/dashboards/tickets/?supplier=it").content.decode()
    assert "<strong data-count>0</strong>" in html


# --- CSV --------------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode("utf-8"))))


@time_machine.travel(NOW, tick=False)
def test_csv_of_the_service_breakdown(client, history):  # noqa: F811
    signed_in(client, history.it_lead)
    response = client.get(f"/dashboards/export/service.csv?department=it&side=supplier&{WEEK}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = read_csv(response)
    assert rows[0][:4] == ["service", "filed", "open", "cancelled"]
    assert rows[1] == [
        "Laptop problem", "6", "1", "1", "4", "1", "0.8000", "4", "1", "0.8000", "0", "",
    ]  # fmt: skip


@time_machine.travel(NOW, tick=False)
def test_csv_summary_has_medians_in_seconds(client, history):  # noqa: F811
    signed_in(client, history.it_lead)
    rows = dict(
        read_csv(client.get(f"/dashboards/export/summary.csv?department=it&side=supplier&{WEEK}"))
    )
    assert rows["first_response_median_seconds"] == "7200"
    assert rows["resolution_p90_seconds"] == "54000"
    assert rows["breached_now"] == "1"


def test_csv_of_another_department_is_404(client, org, hr_lead):
    signed_in(client, hr_lead)
    assert client.get("/dashboards/export/service.csv?department=it").status_code == 404
    assert client.get("/dashboards/export/nonsense.csv?department=hr").status_code == 404
    assert client.get("/dashboards/export/service.csv?department=hr&side=up").status_code == 400


@time_machine.travel(NOW, tick=False)
def test_csv_neutralises_formulas_in_user_text(client, history):  # noqa: F811
    ticket_services.ticket_create(
        requester=history.employee, service=history.service, title="=HYPERLINK(1)", now=NOW
    )
    signed_in(client, history.it_lead)
    rows = read_csv(client.get("/dashboards/export/tickets.csv?supplier=it"))
    assert ["'=HYPERLINK(1)"] == [r[1] for r in rows if "HYPERLINK" in r[1]]


@time_machine.travel(NOW, tick=False)
def test_large_export_runs_as_a_job_with_progress_and_download(
    client,
    history,  # noqa: F811
    settings,
    django_capture_on_commit_callbacks,
):
    settings.REPORTS_EXPORT_STREAM_LIMIT = 3
    signed_in(client, history.it_lead)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.get("/dashboards/export/tickets.csv?supplier=it")
    export = Export.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/dashboards/exports/{export.pk}/"
    assert len(callbacks) == 1  # the job is queued once the row is committed
    status = client.get(f"/dashboards/exports/{export.pk}/status/").json()
    assert (status["state"], status["download"]) == ("pending", None)
    page = client.get(f"/dashboards/exports/{export.pk}/").content.decode()
    assert "<progress" in page
    exports.export_run(export_id=export.pk)  # what the Celery task calls
    status = client.get(f"/dashboards/exports/{export.pk}/status/").json()
    assert (status["state"], status["percent"], status["done"]) == ("done", 100, 6)
    rows = read_csv(client.get(status["download"]))
    assert len(rows) == 7 and rows[0][0] == "reference"
    # Idempotent: running the job again changes nothing.
    exports.export_run(export_id=export.pk)
    export.refresh_from_db()
    assert export.attempt == 1
    # Someone else's export is 404.
    signed_in(client, history.admin)
    assert client.get(f"/dashboards/exports/{export.pk}/").status_code == 404
    assert client.get(status["download"]).status_code == 404


def test_a_superseded_export_run_stops_writing(history):  # noqa: F811
    export = Export.objects.create(
        requested_by=history.it_lead, table="tickets", params={"supplier": "it"}, created_at=NOW
    )
    first = exports.export_run(export_id=export.pk)
    assert first.state == "done" and first.attempt == 1
    Export.objects.filter(pk=export.pk).update(state="running")  # a redelivered job
    again = exports.export_run(export_id=export.pk)
    assert again.state == "done" and again.attempt == 2


class _UnreachableCache:
    """A cache server that is down: every call fails as redis-py does."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("cache unreachable")

        return fail


@time_machine.travel(NOW, tick=False)
def test_dashboards_and_writes_work_with_the_cache_down(client, history, monkeypatch):  # noqa: F811
    from reports import cache as report_cache

    signed_in(client, history.it_lead)
    url = f"/dashboards/it/supplier/?{WEEK}"
    expected = _figures(client.get(url).content.decode())
    monkeypatch.setattr(report_cache, "cache", _UnreachableCache())
    assert _figures(client.get(url).content.decode()) == expected  # computed, not cached
    ticket_services.ticket_create(
        requester=history.employee, service=history.service, title="Down", now=NOW
    )
    html = client.get(url).content.decode()
    assert links(html)["/dashboards/tickets/?supplier=it&state=open"] == "2"
