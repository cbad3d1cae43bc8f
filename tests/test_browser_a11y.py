"""Accessibility and CSP-readiness of the main pages in a real browser.

axe-core (vendored in static/vendor/axe-core, loaded from our own origin) runs on every main
page, for each role, at desktop and phone widths; any serious or critical violation fails.
The same pages must need nothing a Content-Security-Policy without 'unsafe-inline' blocks.
Screenshots of these pages are what the README shows (see tests/browser_helpers.py).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from departments.models import Department, Service
from slas import services as sla_services
from tests import factories
from tests.browser_helpers import (
    axe_violations,
    browser,
    csp_ready,
    new_page,
    screenshots_dir,
    sign_in,
)
from tickets import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

__all__ = ["browser"]  # the module-scoped fixture, imported for pytest


def lively_desk():
    """A small desk on a 24×7 standard so that, whatever the hour the tests run, the queue
    shows every SLA state: on track, at risk, breached, paused, met."""
    org = factories.build_org()
    always = sla_services.calendar_save(
        name="Around the clock", timezone_name="Europe/Berlin", always_open=True
    )
    standard = factories.standard(name="IT 24×7", calendar=always)
    Department.objects.filter(pk=org.it.pk).update(default_standard=standard)
    org.it = Department.objects.get(pk=org.it.pk)
    org.service = Service.objects.select_related("department").get(pk=org.service.pk)
    printer = factories.ServiceFactory(
        department=org.it, name="Printer or scanner", description="Paper jams, toner, scanning."
    )
    now = timezone.now()

    def file(title, minutes_ago, *, service=None, priority="P3", requester=None):
        return services.ticket_create(
            requester=requester or org.employee,
            service=service or org.service,
            title=title,
            description="Reported by phone; details below.\n\n- since this morning\n- urgent",
            priority=priority,
            now=now - timedelta(minutes=minutes_ago),
        )

    at_risk = file("Laptop fan is very loud", 200)
    services.ticket_assign(ticket=at_risk, actor=org.it_agent, assignee=org.it_agent)
    breached = file("Cannot connect to VPN", 300, priority="P2", requester=org.finance_lead)
    on_track = file("New mouse, please", 10, service=printer, priority="P4")
    waiting = file("Scanner sends empty pages", 60, service=printer)
    services.ticket_comment(
        ticket=waiting,
        author=org.it_agent,
        body="Which scanner model is it? There is a sticker on the back.",
        now=now - timedelta(minutes=50),
    )
    services.ticket_transition(
        ticket=waiting,
        actor=org.it_agent,
        to_status="waiting_on_customer",
        now=now - timedelta(minutes=49),
    )
    conversation = file("Laptop does not start", 90, priority="P2")
    services.ticket_assign(ticket=conversation, actor=org.it_agent, assignee=org.it_agent)
    services.ticket_comment(
        ticket=conversation,
        author=org.it_agent,
        body="Thanks! Does it show **any** light when you press the power button?",
        now=now - timedelta(minutes=80),
    )
    services.ticket_comment(
        ticket=conversation,
        author=org.employee,
        body="Only a blinking orange light.",
        now=now - timedelta(minutes=70),
    )
    services.ticket_comment(
        ticket=conversation,
        author=org.it_agent,
        body="Orange blink = battery fault. Spare in cupboard B; warranty ended in March.",
        internal=True,
        now=now - timedelta(minutes=65),
    )
    services.ticket_set_watcher(
        ticket=conversation, actor=org.it_agent, user=org.finance_lead, now=now
    )
    services.ticket_link_request(
        ticket=conversation,
        actor=org.it_agent,
        service=org.hr_service,
        title="Confirm the laptop belongs to the employee",
        now=now - timedelta(minutes=60),
    )
    return org, {
        "at_risk": at_risk,
        "breached": breached,
        "on_track": on_track,
        "waiting": waiting,
        "conversation": conversation,
    }


def check(page, base, label: str, *, status: int = 200) -> None:
    page.wait_for_load_state("networkidle")
    violations = axe_violations(page, base)
    assert violations == [], f"{label}: serious/critical axe violations: {violations}"
    assert csp_ready(page) == {
        "inlineScripts": 0,
        "styleAttributes": 0,
        "handlerAttributes": 0,
    }, label
    # A form shown again with its errors answers 400; Chromium logs that status, nothing else.
    expected = [f"status of {status} (Bad Request)"] if status == 400 else []
    errors = [e for e in page.console_errors if not any(x in e for x in expected)]
    page.console_errors.clear()
    assert errors == [], f"{label}: {errors}"


def test_main_pages_have_no_serious_accessibility_violations(browser, live_server, tmp_path):
    org, tickets = lively_desk()
    base = live_server.url
    shots = screenshots_dir(tmp_path)

    anonymous = new_page(browser)
    anonymous.goto(f"{base}/accounts/login/")
    check(anonymous, base, "login")
    anonymous.screenshot(path=str(shots / "login.png"))

    employee = new_page(browser)
    sign_in(employee, base, "employee")
    for name, path in [
        ("home", "/"),
        ("catalogue", "/catalogue/"),
        ("my-requests", "/requests/?status=all"),
        ("new-request-form", f"/tickets/new/?service={org.service.pk}"),
        ("ticket-employee", f"/tickets/{tickets['conversation'].reference}/"),
    ]:
        employee.goto(base + path)
        check(employee, base, f"employee {name}")
        if name in ("home", "catalogue", "my-requests", "ticket-employee"):
            employee.screenshot(path=str(shots / f"{name}.png"), full_page=name != "catalogue")
    # A form with errors is a main page too.
    employee.goto(f"{base}/tickets/new/?service={org.service.pk}")
    employee.get_by_role("button", name="File request").click()
    check(employee, base, "employee new request with errors", status=400)
    employee.screenshot(path=str(shots / "new-request-errors.png"), full_page=True)

    agent = new_page(browser)
    sign_in(agent, base, "itagent")
    for name, path in [
        ("queue", "/queue/"),
        ("queue-at-risk", "/queue/?sla=at_risk"),
        ("ticket-agent-notes", f"/tickets/{tickets['conversation'].reference}/"),
        ("ticket-waiting", f"/tickets/{tickets['waiting'].reference}/"),
    ]:
        agent.goto(base + path)
        check(agent, base, f"agent {name}")
        if name != "ticket-waiting":
            agent.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    # The danger zone opened, and the "Ask another department" page, must stay accessible.
    agent.goto(f"{base}/tickets/{tickets['at_risk'].reference}/")
    agent.locator(".danger-zone summary").click()
    check(agent, base, "agent ticket with the danger zone open")
    agent.get_by_role("link", name="Ask another department").click()
    agent.wait_for_url(f"**/tickets/{tickets['at_risk'].reference}/link/")
    check(agent, base, "agent ask another department")


def test_pages_work_at_phone_width(browser, live_server, tmp_path):
    org, tickets = lively_desk()
    base = live_server.url
    shots = screenshots_dir(tmp_path)
    agent = new_page(browser, width=390, height=844)
    sign_in(agent, base, "itagent")
    agent.goto(f"{base}/queue/")
    check(agent, base, "phone queue")
    agent.screenshot(path=str(shots / "queue-phone.png"), full_page=True)
    agent.goto(f"{base}/tickets/{tickets['conversation'].reference}/")
    check(agent, base, "phone ticket")
    # Nothing overflows sideways on a phone.
    assert agent.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_keyboard_reaches_content_first_through_the_skip_link(browser, live_server):
    factories.build_org()
    page = new_page(browser)
    sign_in(page, live_server.url, "employee")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
