"""In a real browser: an admin edits a service standard, sees the what-if result, saves it; a
long replay shows its progress bar; the ladder editor adds a level."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from slas.jobs import replay_whatif
from slas.models import ReplayJob, StandardVersion
from tests import factories
from tests.browser_helpers import axe_violations, browser, new_page, screenshots_dir, sign_in
from tickets import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

__all__ = ["browser"]  # the module-scoped fixture, imported for pytest


def a_recent_monday_morning() -> datetime:
    """Monday 09:00 UTC two weeks ago (10:00 or 11:00 in Berlin: office hours)."""
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    return today - timedelta(days=today.weekday() + 14)


def answered_after(org, hours: float, title: str):
    filed = a_recent_monday_morning()
    ticket = services.ticket_create(
        requester=org.employee, service=org.service, title=title, now=filed
    )
    services.ticket_comment(
        ticket=ticket, author=org.it_agent, body="On it", now=filed + timedelta(hours=hours)
    )
    return ticket


def open_standard(page, base, org):
    page.goto(f"{base}/")
    page.get_by_role("link", name="Configuration").click()
    page.wait_for_url(re.compile(r"/config/$"))
    page.get_by_role("link", name=org.standard.name, exact=True).click()
    page.wait_for_url(re.compile(rf"/config/standards/{org.standard.pk}/$"))


def test_admin_edits_a_standard_and_sees_the_what_if_result(browser, live_server, tmp_path):
    org = factories.build_org()
    quick = answered_after(org, 0.25, "Quick answer")
    slow = answered_after(org, 3, "Answered in three hours")
    base = live_server.url
    page = new_page(browser)
    sign_in(page, base, "admin")
    open_standard(page, base, org)

    page.get_by_label("P3 first response").fill("1h")
    page.get_by_label("What changes (kept with the version)").fill("Answer P3 within the hour")
    page.get_by_role("button", name="Show what-if").click()
    page.wait_for_load_state("networkidle")

    result = page.locator("#whatif")
    assert "2 tickets of the last 90 days replayed." in result.inner_text()
    assert "1 ticket would have a different outcome." in result.inner_text()
    changed = result.locator("table.whatif-changed tbody tr")
    assert changed.count() == 1
    assert slow.reference in changed.inner_text() and quick.reference not in changed.inner_text()
    assert re.search(r"met\s*→\s*breached", changed.inner_text())
    p3 = result.locator("table.whatif-figures tbody tr", has_text="P3").first
    assert "2 / 0" in p3.inner_text() and "1 / 1" in p3.inner_text()
    # Nothing is saved by a what-if; the typed values are still in the form.
    assert StandardVersion.objects.filter(standard=org.standard).count() == 1
    assert page.get_by_label("P3 first response").input_value() == "1h"
    page.screenshot(path=str(screenshots_dir(tmp_path) / "config-whatif.png"), full_page=True)
    assert axe_violations(page, base) == []

    page.get_by_role("button", name="Save as new version").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text(f"Version 2 of “{org.standard.name}” published.").is_visible()
    versions = page.locator("section", has=page.get_by_role("heading", name="Versions"))
    assert "Answer P3 within the hour" in versions.inner_text()
    latest = StandardVersion.objects.get(standard=org.standard, number=2)
    assert latest.targets.get(priority="P3").first_response == timedelta(hours=1)
    assert latest.created_by == org.admin
    assert page.console_errors == []


def test_a_long_replay_shows_a_progress_bar_then_the_result(browser, live_server, settings):
    settings.SLA_REPLAY_SYNC_LIMIT = 0  # every replay is "long"
    org = factories.build_org()
    answered_after(org, 3, "Answered in three hours")
    base = live_server.url
    page = new_page(browser)
    sign_in(page, base, "admin")
    open_standard(page, base, org)
    page.get_by_label("P3 first response").fill("1h")
    page.get_by_role("button", name="Show what-if").click()
    page.wait_for_load_state("networkidle")
    job = ReplayJob.objects.get()
    bar = page.get_by_label("Replay progress")
    assert bar.get_attribute("value") == "0"
    page.get_by_role("link", name="Open the what-if result").click()
    page.wait_for_url(re.compile(rf"/config/replays/{job.pk}/$"))
    # A worker runs the job (here: the task function, as a worker would call it); the page
    # polls the status and shows the result when it is done.
    replay_whatif(job.pk)
    page.locator("#whatif").wait_for(timeout=15000)
    assert "1 ticket would have a different outcome." in page.locator("#whatif").inner_text()
    assert page.console_errors == []


def test_the_ladder_editor_adds_a_level(browser, live_server):
    org = factories.build_org()
    base = live_server.url
    page = new_page(browser)
    sign_in(page, base, "admin")
    page.goto(f"{base}/config/standards/{org.standard.pk}/")
    levels = page.locator("fieldset.ladder-level")
    before = levels.count()
    page.get_by_role("button", name="Add a level").click()
    assert levels.count() == before + 1
    new = levels.last
    new.get_by_label("Metric").select_option("resolution")
    new.get_by_label("Threshold (% of the target)").fill("150")
    new.get_by_label("notify the parent department's lead").check()
    page.get_by_role("button", name="Save as new version").click()
    page.wait_for_load_state("networkidle")
    latest = StandardVersion.objects.get(standard=org.standard, number=2)
    assert latest.levels.filter(metric="resolution", threshold="1.50").exists()
    assert page.console_errors == []


def test_admin_sets_up_a_calendar_by_keyboard_and_every_config_page_is_accessible(
    browser, live_server, tmp_path
):
    """Issue 7 §1 in a real browser, with the keyboard only for the actions: the calendar page
    (time zone, split shifts, a holiday preset shown as dates, a preview with "filed now → due
    at"), then the other configuration pages — each free of serious axe violations."""
    from slas.models import Calendar

    org = factories.build_org()
    base = live_server.url
    page = new_page(browser)
    sign_in(page, base, "admin")

    page.goto(f"{base}/config/")
    assert axe_violations(page, base) == [], "configuration home"
    page.get_by_role("link", name="New calendar").click()
    page.wait_for_url(re.compile(r"/config/calendars/new/$"))
    assert axe_violations(page, base) == [], "new calendar"
    page.get_by_label("Name").fill("Munich office")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Monday").fill("09:00-12:30, 13:30-17:30")
    page.get_by_label("Holiday preset: country").select_option("DE")
    page.get_by_label("Holiday preset: subdivision").fill("BY")
    page.get_by_role("button", name="Preview").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    preview = page.locator("section.preview")
    assert "Working time over the next seven days" in preview.inner_text()
    assert preview.locator(".holiday-list li").count() > 10  # this and next year's dates
    assert not Calendar.objects.filter(name="Munich office").exists()  # a preview saves nothing
    assert axe_violations(page, base) == [], "calendar preview"

    page.get_by_role("button", name="Save calendar").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    calendar = Calendar.objects.get(name="Munich office")
    assert page.get_by_text("Calendar “Munich office” saved.").is_visible()
    page.get_by_label("Duration").fill("2 business days")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "is due" in page.get_by_test_id("due-at").inner_text()
    page.screenshot(path=str(screenshots_dir(tmp_path) / "config-calendar.png"), full_page=True)
    assert axe_violations(page, base) == [], "calendar detail with a due time"

    # A form with errors keeps what was typed and stays accessible.
    page.goto(f"{base}/config/calendars/{calendar.pk}/edit/")
    page.get_by_label("Tuesday").fill("17:00-09:00")
    with page.expect_navigation():
        page.get_by_role("button", name="Save calendar").click()
    assert page.get_by_role("alert").first.is_visible()
    assert page.get_by_label("Tuesday").input_value() == "17:00-09:00"
    assert axe_violations(page, base) == [], "calendar form with errors"

    for label, path in [
        ("new standard", "/config/standards/new/"),
        ("standard version", f"/config/standards/{org.standard.pk}/versions/1/"),
        ("re-target open tickets", f"/config/standards/{org.standard.pk}/retarget/"),
    ]:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        assert axe_violations(page, base) == [], label
    console = [e for e in page.console_errors if "status of 400" not in e]
    assert console == []
