"""The whole journey in a real browser: an employee files a request, an agent works it in the
queue (assigns, replies publicly, adds an internal note, resolves), and the employee sees the
reply but never the note, and rates the resolution."""

from __future__ import annotations

import re

import pytest

from tests import factories
from tests.browser_helpers import browser, new_page, screenshots_dir, sign_in, sign_out
from tickets.models import Comment, SatisfactionRating, Status, Ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

__all__ = ["browser"]  # the module-scoped fixture, imported for pytest

REPLY = "We will replace the battery this afternoon."
NOTE = "Warranty expired; charge Finance cost centre 4711."


def test_employee_files_agent_works_employee_rates(browser, live_server, tmp_path):
    org = factories.build_org()
    base = live_server.url
    shots = screenshots_dir(tmp_path)

    # --- The employee files a request from the catalogue --------------------------------
    employee = new_page(browser)
    sign_in(employee, base, "employee")
    assert employee.get_by_role("heading", name=re.compile("what do you need")).is_visible()
    card = employee.locator("li.service", has_text=org.service.name)
    card.get_by_role("link", name=re.compile("Request this")).click()
    assert employee.get_by_label("Service").input_value() == str(org.service.pk)
    employee.get_by_label("Title").fill("Laptop does not start")
    employee.get_by_label("Description").fill("It **beeps** twice, then nothing.")
    employee.get_by_role("button", name="Preview").click()
    preview = employee.locator("#id_description_preview")
    preview.locator("strong", has_text="beeps").wait_for()
    employee.screenshot(path=str(shots / "new-request.png"), full_page=True)
    employee.get_by_role("button", name="File request").click()
    employee.wait_for_url(re.compile(r"/tickets/IT-1/$"))
    assert employee.get_by_text("Request IT-1 filed").is_visible()
    ticket = Ticket.objects.get()
    assert ticket.title == "Laptop does not start"
    employee.get_by_role("link", name="My requests", exact=True).first.click()
    assert employee.get_by_role("link", name=re.compile("IT-1 Laptop does not start")).is_visible()

    # --- The agent finds it in the queue, assigns it, replies and adds a note -----------
    agent = new_page(browser)
    sign_in(agent, base, "itagent")
    agent.wait_for_url(re.compile(r"/queue/$"))
    row = agent.locator("tbody tr", has_text="IT-1")
    assert row.is_visible()
    row.get_by_role("button", name=re.compile(r"Assign to me.*IT-1")).click()
    agent.wait_for_load_state("networkidle")
    assert agent.get_by_text("Updated 1 ticket(s): IT-1.").is_visible()
    ticket.refresh_from_db()
    assert ticket.assignee == org.it_agent
    agent.get_by_role("link", name=re.compile("IT-1 Laptop does not start")).click()
    agent.wait_for_url(re.compile(r"/tickets/IT-1/$"))

    agent.get_by_label("Message").fill(REPLY)
    agent.get_by_label("Public reply").check()
    agent.get_by_role("button", name="Send public reply").click()
    agent.wait_for_url(re.compile(r"/tickets/IT-1/"))
    assert agent.get_by_text("Reply sent.").is_visible()

    agent.get_by_label("Message").fill(NOTE)
    agent.get_by_label("Internal note").check()
    # The form itself turns amber and says what it will do.
    assert "is-internal" in agent.locator("#reply").get_attribute("class")
    agent.get_by_role("button", name="Add internal note").click()
    agent.wait_for_load_state("networkidle")
    assert agent.get_by_text("Internal note added.").is_visible()
    note = agent.locator("li.comment.internal", has_text=NOTE)
    assert note.is_visible()
    assert "not visible to the requester" in note.inner_text().lower()
    assert list(Comment.objects.order_by("pk").values_list("internal", flat=True)) == [
        False,
        True,
    ]
    agent.screenshot(path=str(shots / "ticket-agent.png"), full_page=True)

    agent.get_by_role("button", name="Resolve").click()
    agent.wait_for_load_state("networkidle")
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    sign_out(agent)

    # --- The employee sees the reply, never the note, and rates --------------------------
    employee.goto(f"{base}/tickets/IT-1/")
    assert employee.get_by_text(REPLY).is_visible()
    assert NOTE not in employee.content()
    assert employee.locator("li.comment.internal").count() == 0
    assert employee.get_by_role("heading", name=re.compile("How did it go")).is_visible()
    employee.get_by_label("5 – excellent").check()
    employee.get_by_label("Anything to add?").fill("Fast and friendly.")
    employee.screenshot(path=str(shots / "ticket-employee-rating.png"), full_page=True)
    employee.get_by_role("button", name="Send rating").click()
    employee.wait_for_load_state("networkidle")
    assert employee.get_by_text("Thank you for your rating.").is_visible()
    rating = SatisfactionRating.objects.get()
    assert (rating.rating, rating.comment) == (5, "Fast and friendly.")
    assert employee.console_errors == []
    assert agent.console_errors == []


def test_filing_errors_keep_what_was_typed(browser, live_server):
    org = factories.build_org()
    page = new_page(browser)
    sign_in(page, live_server.url, "employee")
    page.goto(f"{live_server.url}/tickets/new/?service={org.service.pk}")
    page.get_by_label("Description").fill("A long story I do not want to type again.")
    page.get_by_role("button", name="File request").click()
    page.wait_for_load_state("networkidle")
    summary = page.get_by_role("alert").first
    assert "Please fix 1 problem" in summary.inner_text()
    # The summary takes focus and links to the field.
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert page.get_by_label("Description").input_value() == (
        "A long story I do not want to type again."
    )
    assert page.get_by_label("Title").get_attribute("aria-invalid") == "true"
    assert Ticket.objects.count() == 0


def test_the_countdown_is_kept_live_by_the_script(browser, live_server):
    from playwright.sync_api import expect

    from tickets import services

    org = factories.build_org()
    page = new_page(browser)
    sign_in(page, live_server.url, "employee")
    ticket = services.ticket_create(requester=org.employee, service=org.service, title="Tick")
    page.clock.install()
    page.goto(f"{live_server.url}/tickets/{ticket.reference}/")
    countdown = page.locator(".ticket-head [data-countdown]")
    assert re.match(r"(due in|overdue by) ", countdown.locator("time").inner_text())
    # Move the deadline into the past in the page: the script rewrites the words and turns
    # the badge to "Breached" at its next tick.
    countdown.evaluate(
        "el => el.setAttribute('data-countdown', new Date(Date.now() - 125 * 60000).toISOString())"
    )
    page.clock.run_for(16000)
    expect(countdown.locator("time")).to_have_text(re.compile(r"^overdue by 2 h 5 min"))
    expect(page.locator(".ticket-head .badge.sla")).to_have_text(re.compile(r"Breached$"))
    assert "overdue" in countdown.get_attribute("class")
    assert page.console_errors == []


def test_what_happens_next_follows_the_chosen_service(browser, live_server):
    org = factories.build_org()
    page = new_page(browser)
    sign_in(page, live_server.url, "employee")
    page.goto(f"{live_server.url}/tickets/new/?service={org.service.pk}")
    panel = page.locator("[data-promise-panel]")
    assert "IT receives your request" in panel.inner_text()
    page.get_by_label("Service").select_option(str(org.hr_service.pk))
    assert "HR receives your request" in panel.inner_text()
    assert "First response within 4 business hours" in panel.inner_text()
    assert page.console_errors == []


def test_core_flows_work_with_javascript_switched_off(browser, live_server):
    """Issue 5 §7: filing, preview, assigning, replying, the internal note and resolving are
    plain forms; nothing needs the script."""
    org = factories.build_org()
    base = live_server.url

    def no_script_page():
        context = browser.new_context(java_script_enabled=False, locale="en-GB")
        return context.new_page()

    employee = no_script_page()
    sign_in(employee, base, "employee")
    employee.goto(f"{base}/tickets/new/?service={org.service.pk}")
    employee.get_by_label("Title").fill("Printer offline")
    employee.get_by_label("Description").fill("It says **offline**.")
    with employee.expect_navigation():
        employee.get_by_role("button", name="Preview").click()
    assert employee.locator("strong", has_text="offline").first.is_visible()
    assert employee.get_by_label("Title").input_value() == "Printer offline"
    with employee.expect_navigation():
        employee.get_by_role("button", name="File request").click()
    assert re.search(r"/tickets/IT-1/$", employee.url)
    ticket = Ticket.objects.get()

    agent = no_script_page()
    sign_in(agent, base, "itagent")
    row = agent.locator("tbody tr", has_text="IT-1")
    with agent.expect_navigation():
        row.get_by_role("button", name=re.compile(r"Assign to me.*IT-1")).click()
    ticket.refresh_from_db()
    assert ticket.assignee == org.it_agent
    agent.goto(f"{base}/tickets/IT-1/")
    agent.get_by_label("Message").fill(REPLY)
    agent.get_by_label("Public reply").check()
    with agent.expect_navigation():
        agent.get_by_role("button", name=re.compile("Send public reply|Add internal note")).click()
    agent.get_by_label("Message").fill(NOTE)
    agent.get_by_label("Internal note").check()
    with agent.expect_navigation():
        agent.get_by_role("button", name=re.compile("Send public reply|Add internal note")).click()
    assert list(Comment.objects.order_by("pk").values_list("internal", flat=True)) == [
        False,
        True,
    ]
    with agent.expect_navigation():
        agent.get_by_role("button", name="Resolve").click()
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED

    employee.goto(f"{base}/tickets/IT-1/")
    assert employee.get_by_text(REPLY).is_visible()
    assert NOTE not in employee.content()
    employee.get_by_label("4 – good").check()
    with employee.expect_navigation():
        employee.get_by_role("button", name="Send rating").click()
    assert SatisfactionRating.objects.get().rating == 4
