"""Shared pieces of the Playwright browser tests (Debian's Chromium, pytest-django live_server).

Screenshots go to $SD_SCREENSHOTS_DIR when set (docs/screenshots/ is refreshed that way:
`SD_SCREENSHOTS_DIR=docs/screenshots make test PYTEST_ARGS="-m browser"`), otherwise to the
test's tmp_path so a normal run leaves the tree untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE_PATH = "/static/vendor/axe-core/axe.min.js"
BLOCKING_IMPACTS = {"serious", "critical"}


@pytest.fixture(scope="module")
def browser():
    # The sync API runs an event loop in this thread; Django's ORM calls made by the test
    # itself (fixtures, assertions) are safe here because the test is synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_page(browser, *, width: int = 1280, height: int = 900):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-GB")
    page = context.new_page()
    page.console_errors = []
    page.on(
        "console",
        lambda message: (
            page.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    return page


def sign_in(page, base_url: str, username: str, password: str = "pw") -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state("networkidle")


def screenshots_dir(tmp_path: Path) -> Path:
    target = Path(os.environ.get("SD_SCREENSHOTS_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def axe_violations(page, base_url: str) -> list[dict]:
    """Run the vendored axe-core on the current page; return serious/critical violations."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Loaded from our own origin, as a page script would be (works under a strict CSP).
        page.add_script_tag(url=f"{base_url}{AXE_PATH}")
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)
            }));
        }"""
    )
    return [v for v in result if v["impact"] in BLOCKING_IMPACTS]


def csp_ready(page) -> dict:
    """What a Content-Security-Policy without 'unsafe-inline' would block on this page."""
    return page.evaluate(
        """() => ({
            inlineScripts: document.querySelectorAll('script:not([src])').length,
            styleAttributes: document.querySelectorAll('[style]').length,
            handlerAttributes: Array.from(document.querySelectorAll('*')).filter(
                el => Array.from(el.attributes).some(a => a.name.startsWith('on'))).length,
        })"""
    )
