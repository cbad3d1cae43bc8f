"""A lead opens the dashboard in a real browser and sees the charts drawn (Chart.js from
static/, data from json_script, no inline script), follows a figure to its tickets, and reads
the organisation map."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.browser_helpers import axe_violations, browser, new_page, screenshots_dir, sign_in
from tickets import services as ticket_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

__all__ = ["browser"]  # the module-scoped fixture, imported for pytest

CHARTS = ("chart-trend", "chart-backlog", "chart-histogram", "chart-satisfaction")


def _history(org) -> None:
    """A few weeks of requests to IT from Finance: answered, resolved, rated, some open."""
    now = timezone.now()
    for n in range(12):
        filed = now - timedelta(days=2 + 2 * n, hours=n % 3)
        ticket = ticket_services.ticket_create(
            requester=org.employee, service=org.service, title=f"Request {n}", now=filed
        )
        ticket_services.ticket_comment(
            ticket=ticket, author=org.it_agent, body="On it", now=filed + timedelta(hours=n % 5)
        )
        if n % 4 == 3:
            continue  # stays open
        ticket_services.ticket_transition(
            ticket=ticket,
            actor=org.it_agent,
            to_status="resolved",
            now=filed + timedelta(hours=2 + 3 * (n % 6)),
        )
        ticket_services.ticket_rate(
            ticket=ticket,
            actor=org.employee,
            rating=1 + n % 5,
            comment="Slow and nobody called back" if n % 5 == 0 else "",
            now=filed + timedelta(days=1),
        )


def _painted_pixels(page, canvas_id: str) -> int:
    """Non-transparent pixels on the chart's canvas: proof it was drawn, not just placed."""
    return page.evaluate(
        """(id) => {
            const canvas = document.querySelector(`canvas[data-chart="${id}"]`);
            const ctx = canvas.getContext("2d");
            const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) painted++;
            return painted;
        }""",
        canvas_id,
    )


def test_lead_opens_the_dashboard_and_sees_the_charts(browser, live_server, tmp_path):
    org = factories.build_org()
    _history(org)
    base = live_server.url
    shots = screenshots_dir(tmp_path)

    page = new_page(browser)
    sign_in(page, base, "itlead")
    page.get_by_role("link", name="Dashboards").click()
    page.wait_for_url(re.compile(r"/dashboards/$"))
    page.locator("li", has_text="IT").get_by_role("link", name="as supplier").first.click()
    page.wait_for_url(re.compile(r"/dashboards/it/supplier/$"))
    assert page.get_by_role("heading", name="IT as a supplier").is_visible()

    for chart in CHARTS:
        canvas = page.locator(f'canvas[data-chart="{chart}"]')
        canvas.wait_for()
        page.wait_for_function(
            '(id) => document.querySelector(`canvas[data-chart="${id}"]`)'
            ".getAttribute('data-rendered') === 'true'",
            arg=chart,
        )
        assert page.evaluate(
            '(id) => !!Chart.getChart(document.querySelector(`canvas[data-chart="${id}"]`))',
            chart,
        )
        assert _painted_pixels(page, chart) > 500, chart
        box = canvas.bounding_box()
        assert box["width"] > 200 and box["height"] > 150
    # The trend chart carries the filed counts it was given.
    filed = page.evaluate(
        "() => Chart.getChart(document.querySelector('canvas[data-chart=\"chart-trend\"]'))"
        ".data.datasets[0].data.reduce((a, b) => a + b, 0)"
    )
    assert filed == 12
    assert page.console_errors == []
    page.screenshot(path=str(shots / "dashboard-supplier.png"), full_page=True)

    # The data table alternative opens from the keyboard.
    summary = page.locator("details summary", has_text="Data table").first
    summary.focus()
    page.keyboard.press("Enter")
    assert page.locator("details[open] table").first.is_visible()

    assert axe_violations(page, base) == []

    # A figure leads to the tickets behind it.
    page.locator(".kpi", has_text="Open tickets").get_by_role("link").click()
    page.wait_for_url(re.compile(r"/dashboards/tickets/\?"))
    assert page.locator("[data-count]").inner_text() == "3"
    assert page.locator("tbody tr").count() == 3

    # The organisation map: heatmap and dependency graph.
    page.goto(f"{base}/dashboards/map/")
    assert page.locator("table.heatmap tbody tr").count() == 1
    assert page.locator("svg.graph line.edge").count() == 1
    page.screenshot(path=str(shots / "organisation-map.png"), full_page=True)
    assert axe_violations(page, base) == []
    assert page.console_errors == []
