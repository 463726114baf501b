"""The Test call page in headless Chromium against the stack as `make run` starts it: run_local (web server,
worker and the local phone network, no Vonage credentials) on a throwaway database with the demo loaded.

Log in as the demo owner, call the demo number, choose Billing (both agents ring at once), decline as the first
agent, accept as the second, hang up: the incident is resolved and its timeline on the page shows each step.
"""
import os
import shutil
import tempfile
import threading

import pytest

from tests.browser import RECORD_VIOLATIONS, log_in
from tests.e2e_stack import LocalRun

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# A picture of the page mid-call, for a person to look at after the run.
SCREENSHOT = os.path.join(tempfile.gettempdir(), "callrouting-test-call.png")
SPEED = "0.3"  # the network's time factor: prompts take a third of their spoken length


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """`make run` in a temporary place (tests/e2e_stack.LocalRun); yields the base URL."""
    with LocalRun(tmp_path_factory.mktemp("make-run"), speed=SPEED) as run:
        yield run.url


def in_browser(scenario, *args):
    """Run SCENARIO(page, *args) in headless Chromium, in a thread of its own: Playwright's sync API refuses to
    run where an asyncio loop is running, and an earlier test in the session may have left one in this thread."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    failures = []

    def run():
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    headless=True,
                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                          "--disable-extensions", "--mute-audio", "--autoplay-policy=no-user-gesture-required"],
                )
                try:
                    context = browser.new_context(viewport={"width": 1280, "height": 1000})
                    context.set_default_timeout(20000)
                    context.add_init_script(RECORD_VIOLATIONS)
                    scenario(context.new_page(), *args)
                finally:
                    browser.close()
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run, name="browser")
    thread.start()
    thread.join(timeout=240)
    assert not thread.is_alive(), "the browser scenario did not finish"
    if failures:
        raise failures[0]


def test_a_test_call_from_the_browser_ends_with_a_resolved_incident(local_run):
    in_browser(call_answer_and_hang_up, local_run)


def call_answer_and_hang_up(page, local_run):
    from playwright.sync_api import expect

    log_in(page, local_run, "demo", "demo-password", next_path="/test-call/")
    expect(page.locator("h1")).to_have_text("Test call")

    page.select_option("#number", label="Demo Company support (+4930901820)")
    page.click("#call-button")
    expect(page.locator("#caller-prompt")).to_contain_text("Press 2 or say Billing for Billing")
    page.click("#keypad button[data-key='2']")

    cards = page.locator(".agent-card")
    expect(cards).to_have_count(2)
    first, second = cards.nth(0), cards.nth(1)
    first_name, second_name = first.get_attribute("data-name"), second.get_attribute("data-name")
    expect(first).to_have_attribute("data-state", "ringing")
    first.locator("[data-action=decline]").click()
    expect(first).to_have_attribute("data-state", "ended")
    expect(second).to_have_attribute("data-state", "ringing")
    second.locator("[data-action=accept]").click()

    expect(page.locator("#caller-state")).to_have_text("Connected")
    expect(second).to_have_attribute("data-state", "connected")
    expect(page.locator("#incident-status")).to_have_attribute("data-status", "accepted")
    page.screenshot(path=SCREENSHOT, full_page=True)

    page.click("#caller-hangup")
    expect(page.locator("#caller-state")).to_have_text("Ended")
    expect(page.locator("#incident-status")).to_have_attribute("data-status", "resolved")
    expect(page.locator("#call-state")).to_contain_text("Answered by an agent")
    timeline = page.locator("#timeline")
    for step in [
        "chose 2 “Billing” (digit). Calling agents all at once.",
        f"Calling {first_name}",
        f"Calling {second_name}",
        f"{first_name}: declined",
        f"{second_name} accepted the call and is connected to the caller.",
        "Call ended: answered by an agent.",
        "Resolved",
    ]:
        expect(timeline).to_contain_text(step)
    # All of it ran under the page's Content-Security-Policy without a violation.
    assert page.evaluate("window.__cspViolations") == []
